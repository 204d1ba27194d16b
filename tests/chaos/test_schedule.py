"""Faults on a seeded schedule, short (`make chaos` runs 20 events in five minutes)."""

import json

from .schedule import REPORT, run


def test_every_acknowledged_callback_is_decided_once_whatever_dies_when() -> None:
    result = run(events=8, minutes=1.5, count=60, concurrency=4)
    print(json.dumps(result, indent=2))
    assert len(result["events"]) == 8
    assert [e["error"] for e in result["events"]] == [None] * 8  # each process came back
    assert result["acknowledged_never_decided"] == []
    assert result["acknowledged_decided_otherwise"] == []
    assert result["not_resumed_exactly_once"] == []
    assert result["resumes_without_their_activation"] == []
    assert result["executions_activated_twice"] == []
    assert result["lost_acknowledged"] == []
    assert (result["acknowledged"], result["completed"]) == (result["calls"], 60)
    assert (REPORT / "timeline.png").stat().st_size > 10_000
    assert result["passed"], f"replay with --seed {result['seed']}"
