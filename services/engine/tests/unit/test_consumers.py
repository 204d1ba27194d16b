"""The engine's Kafka consumers over FastStream's test broker."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaTimeoutError
from faststream.kafka import KafkaBroker, TestKafkaBroker
from pymongo.errors import AutoReconnect

from engine.app import create_app
from engine.settings import Settings
from schemas.events import ActivateTrigger, StartExecution
from schemas.signing import sign_user
from schemas.topics import Topics
from schemas.users import User

from ..fakes import InMemoryStore
from ..flows import ENTRY_TRIGGER_FLOW, ORDER_FLOW

KEY = "unit-admin-key"
ADMIN = {"X-Admin-Key": KEY}

GATEWAY = User(
    objectId="u1", ownerId="u1", email="gw@pay.example", created=1, roles=["PaymentGateway"]
)

TOPICS = Topics("unit")


@pytest.fixture
async def engine() -> AsyncIterator[tuple[KafkaBroker, httpx.AsyncClient, InMemoryStore]]:
    broker, store = KafkaBroker(), InMemoryStore()
    settings = Settings(
        topic_prefix="unit", retry_backoff_seconds=0.001, admin_key=KEY, activation_key=KEY
    )
    app = create_app(settings, store=store, broker=broker, configure_logging=False)
    async with TestKafkaBroker(broker) as test_broker, app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://engine", headers=ADMIN
        ) as http:
            yield test_broker, http, store


@pytest.mark.parametrize("garbage", [b"not json", b"[]", b'{"activationId": 1}', b"\xff\xfe"])
async def test_an_invalid_message_is_dead_lettered_at_once(engine: Any, garbage: bytes) -> None:
    broker, http, store = engine
    await broker.publish(garbage, TOPICS.activations, key=b"k")
    await broker.publish(garbage, TOPICS.execution_starts)
    assert store.outcomes == {}
    assert store.executions == {}
    listed = (await http.get("/api/automation/dead-letters")).json()
    assert [(d["topic"], d["kind"], d["attempts"]) for d in listed["deadLetters"]] == [
        (TOPICS.activations, "invalid", 1),
        (TOPICS.execution_starts, "invalid", 1),
    ]
    first = listed["deadLetters"][0]
    assert first["key"] == "k"
    assert first["value"] == garbage.decode(errors="replace")
    assert "not a valid ActivateTrigger" in first["error"]


async def test_an_activation_from_kafka_with_a_broken_user_is_invalid_with_the_reason(
    engine: Any,
) -> None:
    broker, http, _ = engine
    deployed = (await http.post("/api/automation/flows", json=ENTRY_TRIGGER_FLOW)).json()
    message = {
        "activationId": "a-broken-user",
        "flowId": deployed["flowId"],
        "triggerId": deployed["triggers"][0]["triggerId"],
        "user": {"email": "x@y"},  # no objectId, ownerId, created
        "receivedAt": 1,
    }
    await broker.publish(message, TOPICS.activations)
    outcome = (await http.get("/api/automation/activations/a-broken-user")).json()
    assert outcome["outcome"] == "INVALID"
    assert "user.objectId" in outcome["detail"]
    (letter,) = (await http.get("/api/automation/dead-letters")).json()["deadLetters"]
    assert letter["activationId"] == "a-broken-user"
    assert json.loads(letter["value"]) == message


async def test_a_message_that_keeps_failing_is_dead_lettered_and_fails_its_execution(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker, http, store = engine
    deployed = (await http.post("/api/automation/flows", json=ORDER_FLOW)).json()
    trigger_id = next(
        t["triggerId"] for t in deployed["triggers"] if t["name"] == "Payment Confirmed"
    )
    execution_id = str(uuid.uuid4())
    start = StartExecution(
        executionId=execution_id,
        flowId=deployed["flowId"],
        input={"order": {"id": "o-1", "total": 5}},
        requestedAt=1,
    )
    await broker.publish(start.model_dump(mode="json"), TOPICS.execution_starts)
    activation_id = str(uuid.uuid4())
    activation = ActivateTrigger(
        activationId=activation_id,
        flowId=deployed["flowId"],
        triggerId=trigger_id,
        execution=execution_id,
        data={"orderId": "o-1"},
        user=GATEWAY,
        userSignature=sign_user(KEY, activation_id, GATEWAY.as_context()),
        receivedAt=1,
    )
    saving = store.save_execution
    tries = []

    async def broken(state: Any) -> bool:  # a defect that only this resume's save meets
        if state.execution_id == execution_id and activation.activationId in state.applied:
            tries.append(state)
            raise ValueError("cannot store this execution")
        return bool(await saving(state))

    monkeypatch.setattr(store, "save_execution", broken)
    await broker.publish(activation.model_dump(mode="json"), TOPICS.activations)
    assert len(tries) == 5
    (letter,) = (await http.get("/api/automation/dead-letters")).json()["deadLetters"]
    assert (letter["kind"], letter["attempts"]) == ("failed", 5)
    assert "cannot store this execution" in letter["error"]
    assert letter["executionId"] == execution_id
    execution = (await http.get(f"/api/automation/executions/{execution_id}")).json()
    assert execution["status"] == "failed"
    assert letter["deadLetterId"] in execution["error"]
    assert execution["history"][-1]["event"] == "failed"
    outcome = (await http.get(f"/api/automation/activations/{activation.activationId}")).json()
    assert outcome["outcome"] == "DEAD_LETTERED"

    # replayed: decided as if new (the execution failed meanwhile, so nobody waits)
    monkeypatch.setattr(store, "save_execution", saving)
    replay = await http.post(f"/api/automation/dead-letters/{letter['deadLetterId']}/replay")
    assert replay.status_code == 202
    assert replay.json()["replayedAt"] is not None
    outcome = (await http.get(f"/api/automation/activations/{activation.activationId}")).json()
    assert outcome["outcome"] == "NO_WAITER"


async def test_dead_letters_page_and_unknown_ones_are_404(engine: Any) -> None:
    broker, http, _ = engine
    for n in range(3):
        await broker.publish(f"garbage {n}".encode(), TOPICS.activations)
    first = (await http.get("/api/automation/dead-letters?limit=2")).json()
    assert len(first["deadLetters"]) == 2
    page = {"limit": 2, "cursor": first["next"]}
    second = (await http.get("/api/automation/dead-letters", params=page)).json()
    values = [d["value"] for d in first["deadLetters"] + second["deadLetters"]]
    assert sorted(values) == ["garbage 0", "garbage 1", "garbage 2"]
    assert second["next"] is None
    for path in ("/api/automation/dead-letters/nope", "/api/automation/dead-letters/nope/replay"):
        method = "POST" if path.endswith("replay") else "GET"
        missing = await http.request(method, path)
        assert (missing.status_code, missing.json()["code"]) == (404, 4046)
    bad = await http.get("/api/automation/dead-letters?limit=x")
    assert (bad.status_code, bad.json()["code"]) == (400, 2002)


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
    assert 'hookflow_engine_dead_letters_total{kind="invalid",topic="unit.activations"} 1.0' in text
    assert "hookflow_engine_decision_seconds_count 2.0" in text


@pytest.mark.parametrize(
    "outage",
    [
        AutoReconnect("store away"),
        KafkaTimeoutError(),
        httpx.ConnectError("auth away"),
        TimeoutError(),
    ],
)
async def test_an_outage_of_the_infrastructure_never_dead_letters(
    engine: Any, monkeypatch: pytest.MonkeyPatch, outage: Exception
) -> None:
    broker, http, store = engine
    deployed = (await http.post("/api/automation/flows", json=ENTRY_TRIGGER_FLOW)).json()

    async def away(execution_id: Any) -> Any:
        raise outage

    monkeypatch.setattr(store, "get_execution", away)  # the store fails under the start
    activation = ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=deployed["flowId"],
        triggerId=deployed["triggers"][0]["triggerId"],
        receivedAt=1,
    )
    await broker.publish(activation.model_dump(mode="json"), TOPICS.activations)
    assert store.letters == {}  # left to be delivered again (its partition rewinds)
    assert store.outcomes == {}
    assert store.executions == {}


async def test_the_engine_answers_health_checks_while_an_expression_runs(engine: Any) -> None:
    broker, http, store = engine
    flow = {
        "name": "Heavy",
        "blocks": [
            {"name": "s", "type": "start", "next": "cb"},
            {
                "name": "cb",
                "type": "external_callback",
                "condition": "data.items.map(a, data.items.map(b, a + b)).size() > 0",
            },
        ],
    }
    deployed = (await http.post("/api/automation/flows", json=flow)).json()
    execution_id = str(uuid.uuid4())
    start = StartExecution(
        executionId=execution_id, flowId=deployed["flowId"], input={}, requestedAt=1
    )
    await broker.publish(start.model_dump(mode="json"), TOPICS.execution_starts)
    activation = ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=deployed["flowId"],
        triggerId=deployed["triggers"][0]["triggerId"],
        data={"items": list(range(1000))},  # about a minute in place
        receivedAt=1,
    )
    deciding = asyncio.create_task(
        broker.publish(activation.model_dump(mode="json"), TOPICS.activations)
    )
    answered = 0
    while not deciding.done():
        assert (await http.get("/healthz")).status_code == 200
        answered += 1
        await asyncio.sleep(0.01)
    await deciding
    assert answered >= 20  # it kept answering through the second the expression had
    outcome = (await http.get(f"/api/automation/activations/{activation.activationId}")).json()
    assert outcome["outcome"] == "FILTERED"
    assert "cut off" in store.executions[execution_id].history[-1]["detail"]
