"""The three-broker fault suite in its short mode (`make chaos` runs the full one)."""

import json

from .brokers import run


def test_brokers_die_under_load_and_nothing_acknowledged_is_lost() -> None:
    result = run(count=40, pause=6.0, concurrency=4)
    print(json.dumps(result, indent=2))
    assert result["lost_acknowledged"] == []
    assert result["not_resumed_exactly_once"] == []
    assert (result["acknowledged"], result["completed"]) == (result["calls"], 40)
    leader, follower, two = result["faults"]
    # the leader's partitions move within the gateway's publish timeout or answer 503
    assert set(leader["answers"]) <= {"503/5030"}
    # a follower that dies holds nothing back
    assert follower["partitions_it_led"] == 0
    assert result["follower_5xx"] == []
    # two down: clean 503s only, never a 2xx; then everything comes back
    assert two["answers"] == ["503/5030"]
    assert result["answers_with_two_brokers_down_other_than_503_5030"] == []
    assert two["recovered_after_restart_seconds"] is not None
    assert result["passed"]
