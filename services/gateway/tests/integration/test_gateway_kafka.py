"""The gateway against the real broker, with the real auth service behind its token cache."""

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from pymongo import AsyncMongoClient

from auth.app import create_app as create_auth
from auth.settings import Settings as AuthSettings
from gateway.app import create_app
from gateway.settings import Settings
from gateway.tokens import AuthClient
from schemas.events import FlowVersionRegistered, TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy
from schemas.topics import Topics

ADMIN = "integration-admin-key"
INTERNAL = "integration-internal-key"  # auth's /internal/... routes
PASSWORD = "payment gateway password"


@dataclass
class Stack:
    gateway: httpx.AsyncClient
    auth: httpx.AsyncClient
    topics: Topics
    bootstrap: str
    flow_id: str
    open_trigger: str
    pay_trigger: str

    def url(self, trigger_id: str, query: str = "") -> str:
        return f"/api/automation/flow/{self.flow_id}/trigger/{trigger_id}/activate{query}"

    async def token(self, email: str, roles: list[str]) -> str:
        user = (
            await self.auth.post("/api/users/register", json={"email": email, "password": PASSWORD})
        ).json()
        await self.auth.put(
            f"/api/users/{user['objectId']}/roles",
            json={"roles": roles},
            headers={"x-admin-key": ADMIN},
        )
        login = await self.auth.post(
            "/api/users/login", json={"login": email, "password": PASSWORD}
        )
        return str(login.json()["user-token"])

    async def activations(self, count: int) -> list[tuple[bytes, dict[str, Any]]]:
        consumer = AIOKafkaConsumer(
            self.topics.activations,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[tuple[bytes, dict[str, Any]]] = []
        try:
            async with asyncio.timeout(30):
                while len(found) < count:
                    batch = await consumer.getmany(timeout_ms=500)
                    found += [(r.key, json.loads(r.value)) for rs in batch.values() for r in rs]
        finally:
            await consumer.stop()
        return found


async def publish_registry(
    bootstrap: str, topics: Topics, flow_id: str, triggers: dict[str, TriggerRegistered]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        record = FlowVersionRegistered(flowId=flow_id, name="Orders", version=1, live=True)
        await producer.send_and_wait(
            topics.flow_registry, record.model_dump_json().encode(), key=flow_id.encode()
        )
        for trigger_id, trigger in triggers.items():
            await producer.send_and_wait(
                topics.flow_registry,
                trigger.model_dump_json().encode(),
                key=f"{flow_id}/{trigger_id}".encode(),
            )
    finally:
        await producer.stop()


@pytest.fixture
async def stack(kafka_bootstrap: str, mongodb_url: str, unique_name: str) -> AsyncIterator[Stack]:
    topics = Topics(unique_name)
    flow_id, open_trigger, pay_trigger = (str(uuid.uuid4()) for _ in range(3))
    triggers = {
        open_trigger: TriggerRegistered(
            flowId=flow_id,
            triggerId=open_trigger,
            name="Open",
            authenticationType=AuthenticationType.NONE,
            requiredRoles=[],
            onFailPolicy=OnFailPolicy.ERROR,
            entry=False,
        ),
        pay_trigger: TriggerRegistered(
            flowId=flow_id,
            triggerId=pay_trigger,
            name="Pay",
            authenticationType=AuthenticationType.USER,
            requiredRoles=["PaymentGateway"],
            onFailPolicy=OnFailPolicy.ERROR,
            entry=False,
        ),
    }
    await publish_registry(kafka_bootstrap, topics, flow_id, triggers)

    auth_app = create_auth(
        AuthSettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            mongodb_url=mongodb_url,
            database=unique_name,
            topic_prefix=unique_name,
            admin_key=ADMIN,
            internal_key=INTERNAL,
        ),
        configure_logging=False,
    )
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(auth_app.router.lifespan_context(auth_app))
        auth = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=auth_app), base_url="http://auth")
        )
        settings = Settings(
            kafka_bootstrap_servers=kafka_bootstrap,
            topic_prefix=unique_name,
            admin_key=ADMIN,
            activation_key="integration-activation-key",
        )
        app = create_app(
            settings,
            introspect=AuthClient(auth, "http://auth", 5.0, INTERNAL),
            configure_logging=False,
        )
        await stack.enter_async_context(app.router.lifespan_context(app))
        gateway = await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://gateway",
                headers={"X-Admin-Key": ADMIN},
            )
        )
        async with asyncio.timeout(30):
            while (await gateway.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.05)
        yield Stack(gateway, auth, topics, kafka_bootstrap, flow_id, open_trigger, pay_trigger)
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    await mongo.drop_database(unique_name)
    await mongo.close()


async def test_the_gateway_is_ready_only_with_the_registry_loaded(stack: Stack) -> None:
    assert (await stack.gateway.get("/readyz")).json()["flows"] == 1
    unknown = await stack.gateway.post(stack.url(str(uuid.uuid4())), json={})
    assert (unknown.status_code, unknown.json()["code"]) == (404, 4042)


async def test_accepted_callbacks_are_on_kafka_with_their_key(stack: Stack) -> None:
    execution_id = str(uuid.uuid4())
    first = await stack.gateway.post(
        stack.url(stack.open_trigger), json={"n": 1}, headers={"Idempotency-Key": "k-1"}
    )
    second = await stack.gateway.post(
        stack.url(stack.open_trigger, f"?execution={execution_id}"), content=b""
    )
    assert (first.status_code, first.content) == (200, b"")
    assert second.status_code == 200
    (key1, event1), (key2, event2) = sorted(
        await stack.activations(2), key=lambda pair: pair[1]["receivedAt"]
    )
    assert event1["activationId"] == first.headers["x-activation-id"]
    assert (key1, event1["data"], event1["idempotencyKey"]) == (
        stack.open_trigger.encode(),
        {"n": 1},
        "k-1",
    )
    assert (key2, event2["data"], event2["execution"]) == (execution_id.encode(), {}, execution_id)


async def test_a_key_lands_where_kafkas_default_partitioner_puts_it(stack: Stack) -> None:
    # a service publishing activations straight to Kafka (the contract's way) keys them
    # as the gateway does; one execution's records must share a partition to keep order
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(stack.topics.activations, num_partitions=6, replication_factor=1)]
        )
    finally:
        await admin.close()
    executions = [str(uuid.uuid4()) for _ in range(24)]
    for execution_id in executions:
        answer = await stack.gateway.post(
            stack.url(stack.open_trigger, f"?execution={execution_id}"), json={}
        )
        assert answer.status_code == 200
    consumer = AIOKafkaConsumer(
        stack.topics.activations, bootstrap_servers=stack.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    placed: dict[bytes, int] = {}
    try:
        async with asyncio.timeout(30):
            while len(placed) < len(executions):
                batch = await consumer.getmany(timeout_ms=500)
                placed |= {r.key: r.partition for rs in batch.values() for r in rs if r.key}
    finally:
        await consumer.stop()
    kafka_default = DefaultPartitioner()
    expected = {
        e.encode(): kafka_default(e.encode(), list(range(6)), list(range(6))) for e in executions
    }
    assert placed == expected
    assert len(set(placed.values())) > 1  # spread, not all on one partition


async def test_user_triggers_check_real_tokens_and_roles(stack: Stack) -> None:
    payer = await stack.token("payer@psp.example", ["PaymentGateway"])
    clerk = await stack.token("clerk@shop.example", ["Clerk"])
    anonymous = await stack.gateway.post(stack.url(stack.pay_trigger), json={})
    forged = await stack.gateway.post(
        stack.url(stack.pay_trigger), json={}, headers={"user-token": "forged"}
    )
    lacking = await stack.gateway.post(
        stack.url(stack.pay_trigger), json={}, headers={"user-token": clerk}
    )
    allowed = await stack.gateway.post(
        stack.url(stack.pay_trigger), json={"orderId": "o"}, headers={"user-token": payer}
    )
    assert [r.status_code for r in (anonymous, forged, lacking, allowed)] == [401, 401, 403, 200]
    assert {r.json()["code"] for r in (anonymous, forged, lacking)} == {1000}
    ((_, event),) = await stack.activations(1)
    assert event["user"]["email"] == "payer@psp.example"
    assert event["user"]["roles"] == ["PaymentGateway"]

    await stack.auth.get("/api/users/logout", headers={"user-token": payer})
    async with asyncio.timeout(30):  # the TokenRevoked event reaches the gateway's cache
        while (
            await stack.gateway.post(
                stack.url(stack.pay_trigger), json={}, headers={"user-token": payer}
            )
        ).status_code != 401:
            await asyncio.sleep(0.1)


async def test_a_body_the_broker_cannot_take_is_413_and_the_next_call_goes_through(
    stack: Stack,
) -> None:
    # under the 1 MiB body limit, but the event around it is over the broker's message size
    body = b'{"a": "' + b"x" * (1024 * 1024 - 10) + b'"}'
    assert len(body) == 1024 * 1024 - 1
    big = await stack.gateway.post(stack.url(stack.open_trigger), content=body)
    assert (big.status_code, big.json()["code"]) == (413, 4130)
    small = await stack.gateway.post(stack.url(stack.open_trigger), json={"n": 2})
    assert small.status_code == 200
    ((_, event),) = await stack.activations(1)
    assert event["data"] == {"n": 2}


async def test_a_flow_is_callable_the_moment_its_registry_records_are_acknowledged(
    stack: Stack,
) -> None:
    # what the engine does before a deploy answers; the very next calls must find the flow
    for _ in range(5):
        flow_id, trigger_id = str(uuid.uuid4()), str(uuid.uuid4())
        trigger = TriggerRegistered(
            flowId=flow_id,
            triggerId=trigger_id,
            name="New",
            authenticationType=AuthenticationType.NONE,
            requiredRoles=[],
            onFailPolicy=OnFailPolicy.ERROR,
            entry=False,
        )
        await publish_registry(stack.bootstrap, stack.topics, flow_id, {trigger_id: trigger})
        calls = await asyncio.gather(
            *(
                stack.gateway.post(
                    f"/api/automation/flow/{flow_id}/trigger/{trigger_id}/activate", json={}
                )
                for _ in range(3)
            ),
            stack.gateway.post(f"/api/automation/flow/{flow_id}/execute", json={}),
        )
        assert [c.status_code for c in calls] == [200, 200, 200, 202]
