"""Kafka consumers: take commands in batches, hand them to the engine, commit once done.

Each subscriber takes up to `batch_size` records at a time (FastStream batch subscriber,
aiokafka `getmany`). Records with the same key stay in order (the key names a trigger or
an execution: what must not be reordered); different keys run concurrently. An
activation batch reads the stored outcomes of all its activations in one statement,
looks a trigger up only once when nobody waits there, and stores the new outcomes in
one. The offsets are committed after the batch is handled.

A record that keeps failing (after `attempts` tries with back-off) stops its key for this
batch; its partition is rewound to it, so it and the records after it are delivered
again while every other partition moves on (redelivered records that were applied
already cost one read per batch, and their outcome is published again only when this
process did not publish it itself). A record that is not a valid command can never
succeed: it is logged and skipped.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import Consumer, KafkaMessage
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from engine.metrics import Metrics
from engine.service import Engine
from schemas.events import ActivateTrigger, ActivationOutcome, StartExecution
from schemas.topics import Topics

logger = logging.getLogger(__name__)

Command = TypeVar("Command", bound=BaseModel)


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    batch_size: int = 500
    batch_timeout_ms: int = 20
    concurrency: int = 16  # keys handled at once within a batch
    attempts: int = 3  # tries of one record within a batch before its partition rewinds
    backoff_seconds: float = 1.0


def register(
    broker: KafkaBroker, engine: Engine, topics: Topics, config: ConsumerConfig, metrics: Metrics
) -> None:
    """Subscribe the engine to execution starts and activations, in batches."""
    router = KafkaRouter()
    batches = Batches(config, metrics)
    # outcomes this process stored and published: records delivered again after a rewind
    # (a partition waiting on a record that keeps failing) are not answered again
    answered = _Recent(10_000)

    def batches_of(
        topic: str, title: str, description: str
    ) -> Callable[[Callable[..., Awaitable[None]]], Any]:
        return router.subscriber(
            topic,
            batch=True,
            max_records=config.batch_size,
            batch_timeout_ms=config.batch_timeout_ms,
            title=title,
            description=description,
            group_id=config.group,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_records_only,
        )

    @batches_of(
        topics.execution_starts,
        "engine:execution-starts",
        "Start requests from the gateway or any service; one execution each.",
    )
    async def on_starts(
        payload: list[StartExecution], message: KafkaMessage, consumer: Consumer
    ) -> None:
        commands = batches.parsed(message.raw_message, StartExecution)

        async def start(command: StartExecution) -> None:
            await engine.start(command)
            metrics.starts.inc()

        await batches.run(commands, start, consumer)

    @batches_of(
        topics.activations,
        "engine:activations",
        "Trigger activations: from the gateway, or published straight to Kafka.",
    )
    async def on_activations(
        payload: list[ActivateTrigger], message: KafkaMessage, consumer: Consumer
    ) -> None:
        commands = batches.parsed(message.raw_message, ActivateTrigger)
        ids = list(dict.fromkeys(c.activationId for _, c in commands))
        found = await engine.read_activations(ids)
        handled: set[str] = set()  # a record repeated in the batch is decided once
        fresh: list[ActivationOutcome] = []
        nobody_waits: set[str] = set()

        async def activate(command: ActivateTrigger) -> None:
            if command.activationId in handled:
                return
            decision, new = await engine.decide(
                command, found.get(command.activationId), nobody_waits
            )
            handled.add(command.activationId)  # only once decided: a failure is tried again
            if new:
                fresh.append(decision)
            elif not answered.seen(decision.activationId):
                # decided before, maybe by an engine that died before publishing: answer again
                await engine.republish(decision)
                metrics.republished.inc()
                answered.add(decision.activationId)

        try:
            await batches.run(commands, activate, consumer)
        finally:
            await engine.record(fresh)
            received = {c.activationId: c.receivedAt for _, c in commands}
            for decision in fresh:
                answered.add(decision.activationId)
                metrics.decisions.labels(decision.outcome.value).inc()
                waited = decision.decidedAt - received[decision.activationId]
                metrics.decision_seconds.observe(max(0.0, waited / 1000))

    broker.include_router(router)


async def _records_only(message: StreamMessage[Any]) -> list[Any]:
    """Skip FastStream's decoding: each record is validated on its own in the handler, so
    that one invalid record cannot fail its batch. The handler's first parameter is then
    always empty; its type is what the AsyncAPI document shows as the payload."""
    return []


class _Recent:
    """The last `size` ids added, to ask whether one was."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: dict[str, None] = {}

    def add(self, key: str) -> None:
        self._ids[key] = None
        if len(self._ids) > self._size:
            del self._ids[next(iter(self._ids))]

    def seen(self, key: str) -> bool:
        return key in self._ids


class Batches:
    """Runs the commands of a batch: in order per key, keys concurrently."""

    def __init__(self, config: ConsumerConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics

    def parsed(
        self, raw: Any, model: type[Command]
    ) -> list[tuple[ConsumerRecord[Any, Any], Command]]:
        """The records of a batch with their commands; invalid ones are logged and skipped."""
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        self._metrics.batch_size.observe(len(records))
        parsed = []
        for record in records:
            try:
                parsed.append((record, model.model_validate_json(record.value or b"")))
            except ValidationError as exc:
                self._metrics.invalid.labels(record.topic).inc()
                logger.error(
                    "invalid message skipped",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": str(exc)[:500],
                    },
                )
        return parsed

    async def run(
        self,
        commands: list[tuple[ConsumerRecord[Any, Any], Command]],
        handle: Callable[[Command], Awaitable[None]],
        consumer: Any,
    ) -> None:
        """Handle every command; rewind each partition to its first record that failed."""
        by_key: dict[tuple[str, int, bytes | None], list[tuple[Any, Command]]] = {}
        for record, command in commands:
            by_key.setdefault((record.topic, record.partition, record.key), []).append(
                (record, command)
            )
        failed: dict[TopicPartition, int] = {}
        slots = asyncio.Semaphore(self._config.concurrency)

        async def in_order(items: list[tuple[Any, Command]]) -> None:
            async with slots:
                for record, command in items:
                    if not await self._tried(handle, command, record):
                        partition = TopicPartition(record.topic, record.partition)
                        failed[partition] = min(failed.get(partition, record.offset), record.offset)
                        return

        await asyncio.gather(*(in_order(items) for items in by_key.values()))
        if consumer is None:  # FastStream's test broker has no consumer
            return
        for partition, offset in failed.items():
            consumer.seek(partition, offset)  # the commit after this batch stops there
            self._metrics.rewinds.labels(partition.topic).inc()
        self._note_lag(commands, failed, consumer)

    def _note_lag(
        self,
        commands: list[tuple[ConsumerRecord[Any, Any], Command]],
        failed: dict[TopicPartition, int],
        consumer: Any,
    ) -> None:
        handled: dict[TopicPartition, int] = {}
        for record, _ in commands:
            partition = TopicPartition(record.topic, record.partition)
            handled[partition] = max(handled.get(partition, -1), record.offset + 1)
        for partition, next_offset in handled.items():
            end = consumer.highwater(partition)
            if isinstance(end, int):
                behind = end - failed.get(partition, next_offset)
                self._metrics.lag.labels(partition.topic, str(partition.partition)).set(behind)

    async def _tried(
        self, handle: Callable[[Command], Awaitable[None]], command: Command, record: Any
    ) -> bool:
        for attempt in range(1, self._config.attempts + 1):
            try:
                await handle(command)
            except Exception:
                self._metrics.retries.labels(record.topic).inc()
                logger.exception(
                    "handling failed",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "attempt": attempt,
                    },
                )
                await asyncio.sleep(self._config.backoff_seconds * attempt)
            else:
                return True
        return False
