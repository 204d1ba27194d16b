"""The engine's Kafka consumers over FastStream's test broker."""

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from engine.app import create_app
from engine.settings import Settings
from schemas.events import ActivateTrigger, StartExecution
from schemas.topics import Topics

from ..fakes import InMemoryStore
from ..flows import ENTRY_TRIGGER_FLOW

TOPICS = Topics("unit")


@pytest.fixture
async def engine() -> AsyncIterator[tuple[KafkaBroker, httpx.AsyncClient, InMemoryStore]]:
    broker, store = KafkaBroker(), InMemoryStore()
    app = create_app(
        Settings(topic_prefix="unit"), store=store, broker=broker, configure_logging=False
    )
    async with TestKafkaBroker(broker) as test_broker, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as http:
            yield test_broker, http, store


@pytest.mark.parametrize("garbage", [b"not json", b"[]", b'{"activationId": 1}'])
async def test_an_invalid_message_is_skipped_not_retried(engine: Any, garbage: bytes) -> None:
    broker, _, store = engine
    await broker.publish(garbage, TOPICS.activations)
    await broker.publish(garbage, TOPICS.execution_starts)
    assert store.outcomes == {}
    assert store.executions == {}


async def test_commands_on_kafka_drive_the_engine(engine: Any) -> None:
    broker, http, store = engine
    deployed = (await http.post("/api/automation/flows", json=ENTRY_TRIGGER_FLOW)).json()
    activation = ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=deployed["flowId"],
        triggerId=deployed["triggers"][0]["triggerId"],
        data={"event": "x"},
        receivedAt=1,
    )
    await broker.publish(activation.model_dump(mode="json"), TOPICS.activations)
    outcome = (await http.get(f"/api/automation/activations/{activation.activationId}")).json()
    assert outcome["outcome"] == "ACTIVATED"
    start = StartExecution(
        executionId=str(uuid.uuid4()), flowId=deployed["flowId"], input={}, requestedAt=1
    )
    await broker.publish(start.model_dump(mode="json"), TOPICS.execution_starts)
    assert start.executionId in store.executions


async def test_metrics_count_decisions_by_outcome_and_skipped_records(engine: Any) -> None:
    broker, http, _ = engine
    deployed = (await http.post("/api/automation/flows", json=ENTRY_TRIGGER_FLOW)).json()
    for _ in range(2):
        activation = ActivateTrigger(
            activationId=str(uuid.uuid4()),
            flowId=deployed["flowId"],
            triggerId=deployed["triggers"][0]["triggerId"],
            data={},
            receivedAt=1,
        )
        await broker.publish(activation.model_dump(mode="json"), TOPICS.activations)
    await broker.publish(b"not json", TOPICS.activations)
    text = (await http.get("/metrics")).text
    assert 'hookflow_engine_decisions_total{outcome="ACTIVATED"} 2.0' in text
    assert 'hookflow_engine_invalid_records_total{topic="unit.activations"} 1.0' in text
    assert "hookflow_engine_decision_seconds_count 2.0" in text
