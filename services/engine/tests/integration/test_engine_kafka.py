"""The engine against the real broker and MongoDB-wire server, driven over Kafka and HTTP."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from engine.app import create_app
from engine.settings import Settings
from schemas.events import ActivateTrigger, StartExecution
from schemas.signing import sign_user
from schemas.topics import Topics
from schemas.users import User

from ..flows import ENTRY_TRIGGER_FLOW, ORDER_FLOW
from .conftest import ACTIVATION_KEY

GATEWAY = User(
    objectId="u1", ownerId="u1", email="gw@pay.example", created=1, roles=["PaymentGateway"]
)


@contextlib.asynccontextmanager
async def running_engine(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, configure_logging=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://engine",
            headers={"X-Admin-Key": "integration-key"},
        ) as client:
            yield client


async def store_broken_flow(settings: Settings) -> None:
    """Store a flow `broken` the engine cannot load: every activation of it fails, every
    time (a defect of the record's own, never the infrastructure's)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    await client[settings.database]["flows"].insert_one(
        {
            "_id": "broken",
            "name": "broken",
            "version": 1,
            "created": 1,
            "definition": "{}",
            "triggers": [],
        }
    )
    await client.close()


async def eventually(probe: Callable[[], Awaitable[Any]], within: float = 30.0) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


async def execution_in(client: httpx.AsyncClient, execution_id: str, status: str) -> Any:
    async def probe() -> Any:
        response = await client.get(f"/api/automation/executions/{execution_id}")
        body = response.json() if response.status_code == 200 else None
        return body if body and body["status"] == status else None

    return await eventually(probe)


async def outcome_of(client: httpx.AsyncClient, activation_id: str) -> Any:
    async def probe() -> Any:
        response = await client.get(f"/api/automation/activations/{activation_id}")
        return response.json() if response.status_code == 200 else None

    return await eventually(probe)


def activation(flow_id: str, trigger_id: str, order_id: str, **extra: Any) -> ActivateTrigger:
    activation_id = extra.pop("activationId", str(uuid.uuid4()))
    return ActivateTrigger(
        activationId=activation_id,
        flowId=flow_id,
        triggerId=trigger_id,
        data={"orderId": order_id, "amount": 12.5},
        user=GATEWAY,  # as the gateway sends it: signed
        userSignature=sign_user(ACTIVATION_KEY, activation_id, GATEWAY.as_context()),
        receivedAt=1,
        **extra,
    )


@pytest.mark.usefixtures("drop_database")
async def test_a_started_execution_completes_after_its_callback(
    settings: Settings,
    publisher: Callable[[str, Any, str], Awaitable[None]],
) -> None:
    topics = Topics(settings.topic_prefix)
    async with running_engine(settings) as engine:
        deployed = (await engine.post("/api/automation/flows", json=ORDER_FLOW)).json()
        flow_id, trigger_id = deployed["flowId"], deployed["triggers"][0]["triggerId"]
        started = await engine.post(
            f"/api/automation/flow/{flow_id}/execute", json={"order": {"id": "o-1", "total": 12.5}}
        )
        assert started.status_code == 202
        execution_id = started.json()["executionId"]
        assert await execution_in(engine, execution_id, "waiting")

        miss = activation(flow_id, trigger_id, "other-order")
        await publisher(topics.activations, miss, trigger_id)
        assert (await outcome_of(engine, miss.activationId))["outcome"] == "FILTERED"

        hit = activation(flow_id, trigger_id, "o-1")
        await publisher(topics.activations, hit, trigger_id)
        outcome = await outcome_of(engine, hit.activationId)
        assert outcome["outcome"] == "ACTIVATED"
        assert outcome["executionIds"] == [execution_id]
        done = await execution_in(engine, execution_id, "completed")
        assert done["vars"]["paidBy"] == "gw@pay.example"
        assert done["vars"]["amount"] == 12.5


@pytest.mark.usefixtures("drop_database")
async def test_redelivered_and_concurrent_activations_resume_each_execution_once(
    settings: Settings,
    publisher: Callable[[str, Any, str], Awaitable[None]],
) -> None:
    topics = Topics(settings.topic_prefix)
    async with running_engine(settings) as first, running_engine(settings) as second:
        deployed = (await first.post("/api/automation/flows", json=ORDER_FLOW)).json()
        flow_id, trigger_id = deployed["flowId"], deployed["triggers"][0]["triggerId"]
        executions = [str(uuid.uuid4()) for _ in range(12)]
        for i, execution_id in enumerate(executions):
            command = StartExecution(
                executionId=execution_id,
                flowId=flow_id,
                input={"order": {"id": f"o-{i}", "total": 1}},
                requestedAt=1,
            )
            await publisher(topics.execution_starts, command, execution_id)
        for execution_id in executions:
            assert await execution_in(second, execution_id, "waiting")

        activations = []
        for i, execution_id in enumerate(executions):
            # the same activation twice (a producer retry), plus a second one for the same
            # execution with another id, keyed differently so both engines see some of them
            again = activation(flow_id, trigger_id, f"o-{i}", execution=execution_id)
            rival = activation(flow_id, trigger_id, f"o-{i}", execution=execution_id)
            await publisher(topics.activations, again, execution_id)
            await publisher(topics.activations, again, execution_id)
            await publisher(topics.activations, rival, trigger_id)
            activations.append((execution_id, again.activationId, rival.activationId))

        for execution_id, again_id, rival_id in activations:
            done = await execution_in(first, execution_id, "completed")
            assert [h["event"] for h in done["history"]].count("resumed") == 1
            outcomes = {
                (await outcome_of(first, again_id))["outcome"],
                (await outcome_of(first, rival_id))["outcome"],
            }
            assert outcomes == {"ACTIVATED", "NO_WAITER"}


@pytest.mark.usefixtures("drop_database")
async def test_a_partition_flooded_with_poison_still_decides_the_good_messages_after_it(
    settings: Settings,
    publisher: Callable[[str, Any, str], Awaitable[None]],
) -> None:
    settings = settings.model_copy(
        update={"topic_partitions": 1, "consumer_attempts": 2, "retry_backoff_seconds": 0.01}
    )
    topics = Topics(settings.topic_prefix)
    async with running_engine(settings) as engine:
        await store_broken_flow(settings)
        deployed = (await engine.post("/api/automation/flows", json=ENTRY_TRIGGER_FLOW)).json()
        flow_id, trigger_id = deployed["flowId"], deployed["triggers"][0]["triggerId"]
        raw = KafkaBroker(settings.kafka_bootstrap_servers, acks="all")
        await raw.connect()
        # one key, one partition: every good message is behind every poison one
        failing = [activation("broken", str(uuid.uuid4()), "x") for _ in range(10)]
        for command in failing:
            await publisher(topics.activations, command, "one-key")
        garbage = [b"not json", b"[]", b"\xff", b'{"activationId": "a-bad", "flowId": 1}']
        for n in range(40):
            await raw.publish(garbage[n % len(garbage)], topics.activations, key=b"one-key")
        later = [activation(flow_id, trigger_id, f"o-{i}") for i in range(5)]
        for command in later:
            await publisher(topics.activations, command, "one-key")
        await raw.stop()
        for command in later:
            assert (await outcome_of(engine, command.activationId))["outcome"] == "ACTIVATED"
        for command in failing:
            decided = await outcome_of(engine, command.activationId)
            assert decided["outcome"] == "DEAD_LETTERED"
        assert (await outcome_of(engine, "a-bad"))["outcome"] == "INVALID"
        listed = (await engine.get("/api/automation/dead-letters", params={"limit": 100})).json()
        kinds = [d["kind"] for d in listed["deadLetters"]]
        assert (kinds.count("failed"), kinds.count("invalid")) == (10, 40)
        metrics = (await engine.get("/metrics")).text
        assert "hookflow_engine_rewinds_total{" not in metrics  # no partition waited on them


async def test_a_second_engine_takes_over_half_the_partitions(settings: Settings) -> None:
    settings = settings.model_copy(update={"topic_partitions": 6})
    topics = Topics(settings.topic_prefix)

    def held(app: Any) -> set[int]:
        return {
            tp.partition
            for subscriber in app.state.broker.subscribers
            if subscriber.consumer is not None
            for tp in subscriber.consumer.assignment()
            if tp.topic == topics.activations
        }

    first_app = create_app(settings, configure_logging=False)
    second_app = create_app(settings, configure_logging=False)
    async with first_app.router.lifespan_context(first_app):
        async with asyncio.timeout(60):
            while len(held(first_app)) < 6:
                await asyncio.sleep(0.1)
        joined = asyncio.get_running_loop().time()
        async with second_app.router.lifespan_context(second_app):
            async with asyncio.timeout(60):
                while len(held(second_app)) != 3 or len(held(first_app)) != 3:
                    await asyncio.sleep(0.1)
            taken = asyncio.get_running_loop().time() - joined
            assert held(first_app) | held(second_app) == set(range(6))
    print(f"the second engine held half the partitions after {taken:.1f} s")


async def test_a_timeout_due_while_no_engine_runs_fires_once_after_the_restart(
    settings: Settings,
    publisher: Callable[[str, Any, str], Awaitable[None]],
) -> None:
    settings = settings.model_copy(update={"timer_interval_ms": 100})
    topics = Topics(settings.topic_prefix)
    timed = {
        "name": "Timed",
        "blocks": [
            {"name": "s", "type": "start", "next": "pay"},
            {"name": "pay", "type": "external_callback", "timeoutSeconds": 2, "onTimeout": "late"},
            {"name": "late", "type": "assign", "assign": {"late": "true"}},
        ],
    }
    execution_id = str(uuid.uuid4())
    async with running_engine(settings) as engine:
        deployed = (await engine.post("/api/automation/flows", json=timed)).json()
        start = StartExecution(
            executionId=execution_id, flowId=deployed["flowId"], input={}, requestedAt=1
        )
        await publisher(topics.execution_starts, start, execution_id)
        waiting = await execution_in(engine, execution_id, "waiting")
        assert waiting["deadline"] is not None
    await asyncio.sleep(2.5)  # the deadline passes while no engine runs
    async with running_engine(settings) as engine, running_engine(settings) as other:
        done = await execution_in(engine, execution_id, "completed")
        assert done["vars"] == {"late": True}
        assert done["results"]["pay"] == {"data": None, "user": None, "timedOut": True}
        await asyncio.sleep(0.5)  # both engines' timer loops have run again
        again = (await other.get(f"/api/automation/executions/{execution_id}")).json()
        assert [e["event"] for e in again["history"]].count("timedOut") == 1
