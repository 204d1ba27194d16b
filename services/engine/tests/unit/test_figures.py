"""What the console's charts read: the log counted per trigger and outcome over time,
and the deployment's totals sampled from Kafka's offsets."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from engine.app import create_app
from engine.settings import Settings
from engine.system import SystemSampler
from engine.usecases import queries
from schemas.events import ActivationOutcome, ActivationSource, Outcome
from schemas.topics import Topics

from ..fakes import InMemoryStore

ADMIN = {"X-Admin-Key": "unit-admin-key"}
SETTINGS = Settings(topic_prefix="unit", admin_key="unit-admin-key")
MINUTE = 60_000


def received(n: int, at: int, outcome: Outcome, trigger: str = "t-1") -> ActivationOutcome:
    return ActivationOutcome(
        activationId=f"a-{n}",
        flowId="f-1",
        triggerId=trigger,
        outcome=outcome,
        decidedAt=at,
        receivedAt=at,
        source=ActivationSource.HTTP,
    )


@pytest.fixture
async def engine() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryStore]]:
    store = InMemoryStore()
    broker = KafkaBroker()
    app = create_app(SETTINGS, store=store, broker=broker, configure_logging=False)
    async with TestKafkaBroker(broker), app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engine", headers=ADMIN
        ) as http:
            yield http, store


async def test_a_summary_counts_each_trigger_and_outcome_per_bucket(engine: Any) -> None:
    http, store = engine
    start = 10 * MINUTE
    await store.save_outcomes(
        [
            received(1, start, Outcome.ACTIVATED),
            received(2, start + 59_999, Outcome.ACTIVATED),
            received(3, start + MINUTE, Outcome.ACTIVATED),
            received(4, start + 2 * MINUTE + 1, Outcome.REFUSED),
            received(5, start + 2 * MINUTE, Outcome.NO_WAITER, trigger="t-2"),
            received(6, start + 3 * MINUTE, Outcome.ACTIVATED),  # at `until`: not counted
            received(7, start - 1, Outcome.ACTIVATED),  # before `since`
        ]
    )
    window = {"flowId": "f-1", "since": start, "until": start + 3 * MINUTE}
    summary = (await http.get("/api/automation/activations/summary", params=window)).json()
    assert summary["bucketSeconds"] == 60
    assert (summary["counted"], summary["truncated"]) == (5, False)
    assert [(s["triggerId"], s["outcome"], s["counts"]) for s in summary["series"]] == [
        ("t-1", "ACTIVATED", [2, 1, 0]),
        ("t-1", "REFUSED", [0, 0, 1]),
        ("t-2", "NO_WAITER", [0, 0, 1]),
    ]
    wide = {**window, "bucketSeconds": 180}
    (activated, *_) = (await http.get("/api/automation/activations/summary", params=wide)).json()[
        "series"
    ]
    assert activated["counts"] == [3]


async def test_a_summary_over_its_limit_counts_the_newest_and_says_so(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, store = engine
    monkeypatch.setattr(queries, "SUMMARY_LIMIT", 3)
    await store.save_outcomes([received(n, n * MINUTE, Outcome.ACTIVATED) for n in range(5)])
    window = {"since": 0, "until": 5 * MINUTE}
    summary = (await http.get("/api/automation/activations/summary", params=window)).json()
    assert (summary["counted"], summary["truncated"]) == (3, True)
    assert summary["series"][0]["counts"] == [0, 0, 1, 1, 1]


@pytest.mark.parametrize(
    "params",
    [
        {"bucketSeconds": "0"},
        {"bucketSeconds": "soon"},
        {"since": "2000", "until": "1000"},
        {"since": "0", "until": str(1441 * MINUTE)},  # more than 1,440 buckets
        {"outcome": "LOST"},
    ],
)
async def test_a_summary_refuses_what_it_cannot_count(engine: Any, params: dict[str, str]) -> None:
    http, _ = engine
    response = await http.get("/api/automation/activations/summary", params=params)
    assert (response.status_code, response.json()["code"]) == (400, 2002)


async def test_the_summary_and_the_system_figures_need_a_credential(engine: Any) -> None:
    http, _ = engine
    for path in ("/api/automation/activations/summary", "/api/automation/system"):
        response = await http.get(path, headers={"X-Admin-Key": "wrong"})
        assert response.status_code == 401


async def test_the_system_sampler_sums_every_partition_and_keeps_the_last_hour() -> None:
    topics = Topics("unit")
    ends = {topics.activations: {0: 10, 1: 5}, topics.dead_letters: {0: 2}}
    committed = {topics.activations: {0: 9}}  # partition 1 never committed: nothing decided

    async def end_offsets(topic: str) -> dict[int, int]:
        return ends.get(topic, {})

    async def committed_offsets(group: str, topic: str) -> dict[int, int]:
        assert group == "engine"
        return committed.get(topic, {})

    sampler = SystemSampler(end_offsets, committed_offsets, topics, "engine", 5.0, keep=2)
    first = await sampler.sample()
    assert (first.accepted, first.decided, first.deadLetters, first.refused) == (15, 9, 2, 0)
    ends[topics.activations] = {0: 20, 1: 5}
    await sampler.sample()
    await sampler.sample()
    figures = sampler.figures()
    assert figures.intervalSeconds == 5.0
    assert [s.accepted for s in figures.samples] == [25, 25]  # the oldest forgotten
