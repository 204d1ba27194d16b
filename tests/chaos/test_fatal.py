"""A producer that librdkafka declares failed for good is made anew, without a restart.

An idempotent producer's fatal error (here the real one: the cluster refuses it the right
to write idempotently, so it gets no producer id) leaves that client unable to send
again. The services' producer answers the sends meanwhile with errors (the gateway's 503,
the engine's retry), makes a new client, and sends again once the cluster lets it.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # exported, not declared
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from schemas.producer import Producer

from .chaos import Infra

ANONYMOUS = "User:ANONYMOUS"  # every client of a plaintext listener
CLUSTER = (ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL)
EVERY_TOPIC = (ResourceType.TOPIC, "*", ResourcePatternType.LITERAL)
# the cluster's own work (a KRaft node's, through the same listeners) stays allowed; no
# idempotent write, and no topic written (which would grant one)
DENIED = [
    (*CLUSTER, ANONYMOUS, "*", AclOperation.ALL, AclPermissionType.ALLOW),
    (*CLUSTER, ANONYMOUS, "*", AclOperation.IDEMPOTENT_WRITE, AclPermissionType.DENY),
    (*EVERY_TOPIC, ANONYMOUS, "*", AclOperation.WRITE, AclPermissionType.DENY),
]


@pytest.fixture
def kafka(tmp_path: Path) -> Iterator[str]:
    """A broker of the test's own with ACLs on (the denial must not reach other tests)."""
    infra = Infra(tmp_path, authorizer=True)
    infra.script("kafka", "start")
    try:
        yield infra.kafka
    finally:
        infra.script("kafka", "stop")


def test_a_producer_failed_for_good_sends_again_once_the_cluster_lets_it(
    kafka: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="schemas.producer")
    topic = f"fatal-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": kafka})
    for created in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        created.result(timeout=30)
    for denied in admin.create_acls([AclBinding(*acl) for acl in DENIED]).values():
        denied.result(timeout=30)

    async def scenario() -> None:
        producer = Producer(
            kafka,
            linger_ms=1,
            batch_bytes=16384,
            client_id="fatal-test",
            on_renewed=lambda: renewed.append(time.monotonic()),
        )
        await producer.start()
        try:
            # denied: every send the failed client held fails (none waits for ever, none
            # succeeds)
            denied = [producer.send(topic, b"denied", b"k%d" % n, {}) for n in range(50)]
            answers = await asyncio.wait_for(
                asyncio.gather(*denied, return_exceptions=True), timeout=20
            )
            assert all(isinstance(a, KafkaException) for a in answers), answers
            await asyncio.sleep(2)  # the client has failed for good by now
            for deleted in admin.delete_acls([AclBindingFilter(*acl) for acl in DENIED]).values():
                deleted.result(timeout=30)
            allowed = time.monotonic()
            errors: list[str] = []
            while time.monotonic() - allowed < 60:
                try:
                    await asyncio.wait_for(producer.send(topic, b"allowed", b"k", {}), timeout=20)
                except (KafkaException, TimeoutError) as exc:
                    errors.append(type(exc).__name__)
                    await asyncio.sleep(0.5)
                else:
                    return
            raise AssertionError(f"no send succeeded within 60 s of the right back: {errors}")
        finally:
            await producer.stop()

    renewed: list[float] = []
    asyncio.run(scenario())
    # counted (the services' kafka_producer_renewals metrics)
    assert renewed
    # the acknowledged record is in the topic, the denied one is not
    written = _read(kafka, topic)
    assert b"allowed" in written
    assert b"denied" not in written
    # and the operator was told why the producer was made anew
    assert any(
        "made anew" in record.getMessage() and "authorization" in str(record.__dict__)
        for record in caplog.records
    ), [r.getMessage() for r in caplog.records]


def _read(kafka: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": kafka, "group.id": f"read-{topic}", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[bytes] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
            elif message is None and values:
                break
        return values
    finally:
        consumer.close()
