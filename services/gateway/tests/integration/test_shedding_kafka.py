"""Load shedding on the real broker: a trigger's rateLimit counted across two gateways,
and the lag guard reading the engine group's committed position."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from gateway.app import create_app
from gateway.settings import Settings
from schemas.events import TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy, RateLimit
from schemas.offsets import EndOffsets
from schemas.topics import Topics

from .test_gateway_kafka import publish_registry

LIMIT = RateLimit(perSecond=4, burst=4)


@dataclass
class Gateways:
    clients: list[httpx.AsyncClient]
    topics: Topics
    bootstrap: str
    flow_id: str
    limited: str  # rateLimit LIMIT
    warm: str  # a high rateLimit: shows the reports flow before a test counts
    unlimited: str

    def url(self, trigger_id: str) -> str:
        return f"/api/automation/flow/{self.flow_id}/trigger/{trigger_id}/activate"


def _trigger(
    flow_id: str, trigger_id: str, name: str, limit: RateLimit | None
) -> TriggerRegistered:
    return TriggerRegistered(
        flowId=flow_id,
        triggerId=trigger_id,
        name=name,
        authenticationType=AuthenticationType.NONE,
        requiredRoles=[],
        onFailPolicy=OnFailPolicy.ERROR,
        entry=False,
        rateLimit=limit,
    )


async def _metric(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


@contextlib.asynccontextmanager
async def _gateways(
    bootstrap: str, prefix: str, count: int, **overrides: Any
) -> AsyncIterator[Gateways]:
    topics = Topics(prefix)
    flow_id, limited, warm, unlimited = (str(uuid.uuid4()) for _ in range(4))
    await publish_registry(
        bootstrap,
        topics,
        flow_id,
        {
            limited: _trigger(flow_id, limited, "Limited", LIMIT),
            warm: _trigger(flow_id, warm, "Warm", RateLimit(perSecond=1000)),
            unlimited: _trigger(flow_id, unlimited, "Open", None),
        },
    )
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            app = create_app(
                Settings(kafka_bootstrap_servers=bootstrap, topic_prefix=prefix, **overrides),
                configure_logging=False,
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
            )
            async with asyncio.timeout(30):
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.05)
            clients.append(client)
        yield Gateways(clients, topics, bootstrap, flow_id, limited, warm, unlimited)


async def _hear_each_other(gateways: Gateways) -> None:
    """Until every gateway has received another's report (their consumers start at the
    topic's end, so a report sent before that is not read)."""
    async with asyncio.timeout(30):
        while True:
            for client in gateways.clients:
                assert (await client.post(gateways.url(gateways.warm), json={})).status_code == 200
            await asyncio.sleep(0.2)
            received = [
                await _metric(c, "hookflow_gateway_quota_reports_total", direction="received")
                for c in gateways.clients
            ]
            if all(received):
                return


async def _published(gateways: Gateways, trigger_id: str) -> int:
    consumer = AIOKafkaConsumer(
        gateways.topics.activations,
        bootstrap_servers=gateways.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    count = 0
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            count += sum(
                trigger_id.encode() in record.value
                for records in batch.values()
                for record in records
            )
    finally:
        await consumer.stop()
    return count


@pytest.mark.integration
async def test_a_triggers_rate_limit_is_counted_across_gateways(
    kafka_bootstrap: str, unique_name: str
) -> None:
    async with _gateways(kafka_bootstrap, unique_name, 2, quota_report_seconds=0.05) as gateways:
        await _hear_each_other(gateways)
        a, b = gateways.clients
        statuses, refused = [], []
        started = time.monotonic()
        for n in range(24):  # alternately, every 0.1 s: each gateway alone would admit all
            response = await (a, b)[n % 2].post(gateways.url(gateways.limited), json={"n": n})
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused.append(response)
                other = await (b, a)[n % 2].post(gateways.url(gateways.unlimited), json={})
                assert other.status_code == 200  # other triggers are not held back
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started

        admitted = statuses.count(200)
        assert set(statuses) == {200, 429}
        # a burst and the rate over the run, plus what one report interval may let through
        assert LIMIT.capacity <= admitted <= LIMIT.capacity + LIMIT.perSecond * elapsed + 2
        assert {r.json()["code"] for r in refused} == {4291}
        assert all(1 <= int(r.headers["retry-after"]) <= 2 for r in refused)
        assert all(statuses[n] == 200 for n in range(LIMIT.capacity))  # the burst first
        # refused callbacks never reach Kafka
        assert await _published(gateways, gateways.limited) == admitted
        shed = [await _metric(c, "hookflow_gateway_shed_total", limit="trigger") for c in (a, b)]
        assert sum(shed) == len(refused)


async def _commit_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit `group`'s position at `topic`'s end, as an engine that caught up would."""
    offsets = EndOffsets(bootstrap)
    try:
        ends = await offsets(topic)
    finally:
        await offsets.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in ends])
        await consumer.commit({TopicPartition(topic, p): end for p, end in ends.items()})
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_the_lag_guard_sheds_callbacks_while_the_engine_is_behind(
    kafka_bootstrap: str, unique_name: str
) -> None:
    group = f"{unique_name}-engine"
    async with _gateways(
        kafka_bootstrap,
        unique_name,
        1,
        lag_guard_seconds=1.0,
        lag_guard_interval_seconds=0.1,
        engine_consumer_group=group,
    ) as gateways:
        (gateway,) = gateways.clients
        url = gateways.url(gateways.unlimited)
        assert (await gateway.post(url, json={})).status_code == 200  # makes the topic
        await _commit_at_end(kafka_bootstrap, group, gateways.topics.activations)

        first = time.monotonic()
        assert (await gateway.post(url, json={"n": 1})).status_code == 200
        async with asyncio.timeout(30):  # the engine commits nothing more: it falls behind
            while (response := await gateway.post(url, json={})).status_code == 200:
                await asyncio.sleep(0.1)
        assert time.monotonic() - first >= 1.0  # not before the limit
        assert (response.status_code, response.json()["code"]) == (429, 4292)
        assert 1 <= int(response.headers["retry-after"]) <= 30
        lag = await _metric(gateway, "hookflow_gateway_engine_lag_seconds")
        assert lag >= 1.0

        await _commit_at_end(kafka_bootstrap, group, gateways.topics.activations)
        async with asyncio.timeout(30):  # caught up: admitted again
            while (await gateway.post(url, json={})).status_code != 200:
                await asyncio.sleep(0.1)
        assert await _metric(gateway, "hookflow_gateway_shed_total", limit="lag") >= 1
