"""Kafka consumers: take commands in batches, hand them to the engine, commit once done.

Each subscriber takes up to `batch_size` records at a time (FastStream batch subscriber,
aiokafka `getmany`). Records with the same key stay in order (the key names a trigger or
an execution: what must not be reordered); different keys run concurrently. An
activation batch reads the stored outcomes of all its activations in one statement, and
the executions they name (`execution=<id>`) in another, looks a trigger up only once
when nobody waits there, and stores the new outcomes in one. The offsets are committed
after the batch is handled.

No record can hold its partition back for good:
- a record that is not a valid command is dead-lettered at once (`dead_letters.py`);
- a record whose handling fails is tried `attempts` times with a doubling back-off; if
  the last error is one the record causes, it is dead-lettered and its partition moves on;
- if the error is the infrastructure's (the store, Kafka or the auth service away), the
  partition is rewound to the record: it and the records after it are delivered again
  once the batch is committed, while every other partition moves on (redelivered records
  that were applied already cost one read per batch, and their outcome is published
  again only when this process did not publish it itself).
"""

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import Consumer, KafkaMessage
from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError
from pymongo.errors import ConnectionFailure, PyMongoError

from engine.dead_letters import DeadLetters, Received
from engine.metrics import Metrics
from engine.service import Engine, ExecutionFault
from schemas.events import ActivateTrigger, ActivationOutcome, DeadLetterKind, StartExecution
from schemas.topics import Topics

logger = logging.getLogger(__name__)

Command = TypeVar("Command", bound=BaseModel)


@dataclass(frozen=True)
class ConsumerConfig:
    group: str
    batch_size: int = 500
    batch_timeout_ms: int = 20
    # bytes fetched per partition at a time: the consumer fetches a partition again only
    # once what it fetched is handled, and each fetch stalls the partition (100-250 ms
    # on the local machine); at the client's 1 MB (2,000 callbacks) that capped one
    # partition at 3,500 decisions/s
    fetch_bytes: int = 8 * 1024 * 1024
    # keys handled at once within a batch; their compare-and-sets go to the store
    # together (`store._GroupedSaves`), so more at once is cheaper per resume for the
    # engine and the server alike: 128 resumed 20% more a second than 16 on 2 cores
    concurrency: int = 128
    attempts: int = 5  # tries of one record before it is dead-lettered (or its partition rewinds)
    backoff_seconds: float = 0.2  # after the first failed try; doubled after each, at most 5 s


@dataclass(frozen=True)
class Item(Generic[Command]):
    """A record of a batch: its command, or why it is not one."""

    record: ConsumerRecord[Any, Any]
    command: Command | None
    invalid: str | None = None


Park = Callable[[Item[Command], BaseException | None], Awaitable[None]]


def register(
    broker: KafkaBroker,
    engine: Engine,
    letters: DeadLetters,
    topics: Topics,
    config: ConsumerConfig,
    metrics: Metrics,
) -> None:
    """Subscribe the engine to execution starts and activations, in batches."""
    router = KafkaRouter()
    batches = Batches(config, metrics)
    # outcomes this process stored and published: records delivered again after a rewind
    # (a partition waiting for the store to come back) are not answered again
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
            max_partition_fetch_bytes=config.fetch_bytes,
        )

    async def park(item: Item[Any], error: BaseException | None) -> None:
        """Make a dead letter of an item: invalid (`error` None) or failed every attempt."""
        record = Received(
            item.record.topic,
            item.record.partition,
            item.record.offset,
            item.record.key,
            item.record.value,
        )
        command = item.command
        assert command is None or isinstance(command, ActivateTrigger | StartExecution)
        fault = next((e for e in _chain(error) if isinstance(e, ExecutionFault)), None)
        await letters.park(
            record,
            DeadLetterKind.INVALID if error is None else DeadLetterKind.FAILED,
            _describe(error) if error is not None else item.invalid or "invalid",
            1 if error is None else config.attempts,
            command,
            fault.execution_id if fault is not None else None,
        )
        kind = "invalid" if error is None else "failed"
        metrics.dead_letters.labels(record.topic, kind).inc()

    @batches_of(
        topics.execution_starts,
        "engine:execution-starts",
        "Start requests from the gateway or any service; one execution each.",
    )
    async def on_starts(
        payload: list[StartExecution], message: KafkaMessage, consumer: Consumer
    ) -> None:
        items = batches.parsed(message.raw_message, StartExecution)

        async def start(command: StartExecution) -> None:
            await engine.start(command)
            metrics.starts.inc()

        await batches.run(items, start, park, consumer)

    @batches_of(
        topics.activations,
        "engine:activations",
        "Trigger activations: from the gateway, or published straight to Kafka.",
    )
    async def on_activations(
        payload: list[ActivateTrigger], message: KafkaMessage, consumer: Consumer
    ) -> None:
        items = batches.parsed(message.raw_message, ActivateTrigger)
        commands = [item.command for item in items if item.command is not None]
        ids = list(dict.fromkeys(c.activationId for c in commands))
        found = await engine.read_activations(ids)
        read_ahead = await engine.read_ahead(commands, found)
        handled: set[str] = set()  # a record repeated in the batch is decided once
        fresh: list[ActivationOutcome] = []
        nobody_waits: set[str] = set()

        async def activate(command: ActivateTrigger) -> None:
            if command.activationId in handled:
                return
            decision, new = await engine.decide(
                command, found.get(command.activationId), nobody_waits, read_ahead
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
            await batches.run(items, activate, park, consumer)
        finally:
            fresh = await engine.record(fresh)
            received = {c.activationId: c.receivedAt for c in commands}
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


# Errors of the infrastructure, not of a record: waiting for it helps, dead-lettering would not
_INFRASTRUCTURE = (
    ConnectionFailure,
    KafkaError,
    httpx.TransportError,
    httpx.HTTPStatusError,
    OSError,
)


def infrastructure_error(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the infrastructure's: the store, Kafka or the
    auth service unreachable, failing or timing out."""
    return any(
        isinstance(seen, _INFRASTRUCTURE)
        or (
            isinstance(seen, PyMongoError)
            and (
                seen.has_error_label("RetryableWriteError")
                or seen.has_error_label("TransientTransactionError")
            )
        )
        for seen in _chain(error)
    )


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """`error` and what caused it, outermost first."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _describe(error: BaseException) -> str:
    """The error and its causes, innermost last: what a user reads in the dead letter."""
    parts = [f"{type(e).__name__}: {e}" for e in itertools.islice(_chain(error), 5)]
    return " <- ".join(reversed(parts))


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
    """Runs the items of a batch: in order per key, keys concurrently."""

    def __init__(self, config: ConsumerConfig, metrics: Metrics) -> None:
        self._config = config
        self._metrics = metrics

    def parsed(self, raw: Any, model: type[Command]) -> list[Item[Command]]:
        """The records of a batch with their commands, or why each is not one."""
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        self._metrics.batch_size.observe(len(records))
        items: list[Item[Command]] = []
        for record in records:
            try:
                items.append(Item(record, model.model_validate_json(record.value or b"")))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}"
                    for e in exc.errors()[:10]
                )
                items.append(Item(record, None, f"not a valid {model.__name__}: {problems}"))
        return items

    async def run(
        self,
        items: list[Item[Command]],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
        consumer: Any,
    ) -> None:
        """Handle every item; rewind each partition to its first record left undone."""
        by_key: dict[tuple[str, int, bytes | None], list[Item[Command]]] = {}
        for item in items:
            record = item.record
            by_key.setdefault((record.topic, record.partition, record.key), []).append(item)
        failed: dict[TopicPartition, int] = {}
        slots = asyncio.Semaphore(self._config.concurrency)

        async def in_order(keyed: list[Item[Command]]) -> None:
            async with slots:
                for item in keyed:
                    if not await self._settle(item, handle, park):
                        record = item.record
                        partition = TopicPartition(record.topic, record.partition)
                        failed[partition] = min(failed.get(partition, record.offset), record.offset)
                        return

        await asyncio.gather(*(in_order(keyed) for keyed in by_key.values()))
        if consumer is None:  # FastStream's test broker has no consumer
            return
        for partition, offset in failed.items():
            consumer.seek(partition, offset)  # the commit after this batch stops there
            self._metrics.rewinds.labels(partition.topic).inc()
        self._note_lag(items, failed, consumer)

    async def _settle(
        self,
        item: Item[Command],
        handle: Callable[[Command], Awaitable[None]],
        park: Park[Command],
    ) -> bool:
        """Handle an item, or park it; False leaves it to be delivered again."""
        error: BaseException | None = None
        if item.command is not None:
            command = item.command
            error = await self._tried(lambda: handle(command), item.record)
            if error is None:
                return True
            if infrastructure_error(error):
                return False
        # invalid, or failed by its own doing: parked, unless parking fails too
        parked = await self._tried(lambda: park(item, error), item.record)
        return parked is None

    async def _tried(
        self, attempt: Callable[[], Awaitable[None]], record: ConsumerRecord[Any, Any]
    ) -> BaseException | None:
        """Run `attempt` until it succeeds, at most `attempts` times; the last error, if any."""
        delay = self._config.backoff_seconds
        error: BaseException | None = None
        for tried in range(1, self._config.attempts + 1):
            try:
                await attempt()
            except Exception as exc:
                error = exc
                self._metrics.retries.labels(record.topic).inc()
                logger.warning(
                    "handling failed",
                    exc_info=True,
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "attempt": tried,
                    },
                )
                if tried < self._config.attempts:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            else:
                return None
        return error

    def _note_lag(
        self,
        items: list[Item[Command]],
        failed: dict[TopicPartition, int],
        consumer: Any,
    ) -> None:
        handled: dict[TopicPartition, int] = {}
        for item in items:
            partition = TopicPartition(item.record.topic, item.record.partition)
            handled[partition] = max(handled.get(partition, -1), item.record.offset + 1)
        for partition, next_offset in handled.items():
            end = consumer.highwater(partition)
            if isinstance(end, int):
                behind = end - failed.get(partition, next_offset)
                self._metrics.lag.labels(partition.topic, str(partition.partition)).set(behind)
