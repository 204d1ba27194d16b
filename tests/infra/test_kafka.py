"""Kafka does what the services rely on: durable produce, commit only after handling."""

import asyncio

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream import AckPolicy
from faststream.kafka import KafkaBroker


async def _create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _committed(bootstrap: str, group: str, topic: str) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(TopicPartition(topic, 0))
    return None if meta is None or meta.offset < 0 else meta.offset


async def _eventually(check, within: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


def _broker(bootstrap: str) -> KafkaBroker:
    return KafkaBroker(bootstrap, acks="all", enable_idempotence=True, log_level=30)


async def test_offset_is_committed_only_after_the_handler_finishes(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.smoke", unique_name
    await _create_topic(kafka_bootstrap, topic)
    broker = _broker(kafka_bootstrap)
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[dict[str, str]] = []

    @broker.subscriber(
        topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
    )
    async def handle(body: dict[str, str]) -> None:
        seen.append(body)
        entered.set()
        await release.wait()

    async with broker:
        await broker.start()
        await broker.publish({"order": "42"}, topic)
        await asyncio.wait_for(entered.wait(), 30)
        assert await _committed(kafka_bootstrap, group, topic) is None
        release.set()
        assert await _eventually(lambda: _committed(kafka_bootstrap, group, topic)) == 1
    assert seen == [{"order": "42"}]


async def test_a_failed_handler_sees_the_message_again(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic, group = f"{unique_name}.smoke", unique_name
    await _create_topic(kafka_bootstrap, topic)
    broker = _broker(kafka_bootstrap)
    attempts: list[str] = []
    done = asyncio.Event()

    @broker.subscriber(
        topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
    )
    async def handle(body: str) -> None:
        attempts.append(body)
        if len(attempts) == 1:
            raise RuntimeError("simulated crash before the outcome is persisted")
        done.set()

    async with broker:
        await broker.start()
        await broker.publish("activation-1", topic)
        await asyncio.wait_for(done.wait(), 30)
        assert await _eventually(lambda: _committed(kafka_bootstrap, group, topic)) == 1
    assert attempts == ["activation-1", "activation-1"]
