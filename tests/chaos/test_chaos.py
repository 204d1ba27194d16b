"""The fault suite in its short mode (`make chaos` runs the full one)."""

import json

from .chaos import run


def test_no_acknowledged_callback_is_lost_and_none_resumes_twice_while_parts_die() -> None:
    result = run(count=40, pause=2.0, concurrency=4, slow_clients=50, slow_seconds=15.0)
    print(json.dumps(result, indent=2))
    assert result["lost_acknowledged"] == []
    assert result["not_resumed_exactly_once"] == []
    assert result["2xx_while_kafka_down"] == 0
    # a real broker outage, and only that, is answered 503 with code 5030
    assert "503/5030" in result["answers_while_kafka_down"]
    assert result["not_503_5030_while_kafka_down"] == []
    assert result["in_groups"] == 10
    assert result["groups_without_both_members"] == []
    assert (result["acknowledged"], result["completed"]) == (result["calls"], 40)
    assert all(f["recovered_seconds"] is not None for f in result["faults"])
    # every hostile record the broker took is a dead letter; none held a partition back
    assert result["hostile_records_acknowledged"] > 0
    assert result["hostile_records_dead_lettered"] >= result["hostile_records_acknowledged"]
    # slow clients are closed within the contract's 10 s, callbacks go on meanwhile
    slow = result["slowloris"]
    assert slow["closed_by_the_server"] >= slow["clients"]
    assert slow["longest_held_seconds"] < 15
    assert slow["callbacks_accepted_meanwhile"] == slow["callbacks_tried_meanwhile"] > 0
