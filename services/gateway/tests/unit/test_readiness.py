"""A gateway becomes ready once it has read the flow registry, whatever the broker did
while it started: a failed offsets request or a registry slow to load delays readiness,
never prevents it."""

import asyncio

import httpx
from aiokafka.errors import KafkaTimeoutError

from schemas.events import FlowVersionRegistered

from ..harness import TOPICS, gateway


async def _ready(http: httpx.AsyncClient, seconds: float = 10) -> bool:
    async with asyncio.timeout(seconds):
        while (await http.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.05)
    return True


async def test_offsets_the_broker_failed_to_give_are_asked_again() -> None:
    failures = [KafkaTimeoutError(), ConnectionError("leader not available")]

    async def offsets(topic: str) -> dict[int, int]:
        if failures:
            raise failures.pop()
        return {0: 0}

    async with gateway(offsets=offsets) as harness:
        assert await _ready(harness.http)
        assert failures == []


async def test_a_registry_loaded_after_the_timeout_still_makes_the_gateway_ready() -> None:
    async def offsets(topic: str) -> dict[int, int]:
        return {0: 1, 1: 1}  # partition 1 holds a record the harness does not publish

    async with gateway(offsets=offsets, registry_timeout_seconds=0.2) as harness:
        await asyncio.sleep(0.5)  # past the timeout: not ready, the registry is behind
        assert (await harness.http.get("/readyz")).status_code == 503
        late = FlowVersionRegistered(flowId="late", name="Late", version=1, live=True)
        await harness.broker.publish(
            late.model_dump(mode="json"), TOPICS.flow_registry, key=b"late", partition=1
        )
        assert await _ready(harness.http)
