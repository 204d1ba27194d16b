"""Kafka consumers: take commands in batches, hand them to the engine, commit once done.

Each subscriber takes up to `batch_size` records at a time (FastStream batch subscriber,
aiokafka `getmany`), and takes the next while up to `depth` are in flight. Records with
the same key stay in order (the key names a trigger or an execution: what must not be
reordered), across batches too; different keys run concurrently. An activation batch
reads the stored outcomes of its activations and the executions they name
(`execution=<id>`) in two statements at once, looks a trigger up only once when nobody
waits there, and stores the new outcomes in one. The offsets are committed (by
`Batches`) once a batch and the batches before it are handled.

No record can hold its partition back for good, whatever its bytes: how records are
run, retried, dead-lettered or skipped is in `batches.py`. Records delivered again after
a rewind that were applied already cost one read per batch, and their outcome is
published again only when this process did not publish it itself.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import Consumer, KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind

from engine.batches import Batch, Batches, ConsumerConfig
from engine.dead_letters import DeadLetters, Received
from engine.faults import chain, describe
from engine.metrics import Metrics
from engine.records import Item
from engine.usecases import Engine, ExecutionFault
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    ActivationRefused,
    DeadLetterKind,
    StartExecution,
)
from schemas.topics import Topics
from schemas.tracing import Tracing

logger = logging.getLogger(__name__)


def register(
    broker: KafkaBroker,
    engine: Engine,
    letters: DeadLetters,
    topics: Topics,
    config: ConsumerConfig,
    metrics: Metrics,
    tracing: Tracing | None = None,
) -> Callable[[], Awaitable[None]]:
    """Subscribe the engine to execution starts and activations, in batches (with
    `tracing` on, each activation's decision is a span in the trace its record carries).
    Returns what to await before the broker stops: the batches in flight finish."""
    tracing = tracing or Tracing(None, "engine")
    router = KafkaRouter()
    # outcomes this process stored and published: records delivered again after a rewind
    # (a partition waiting for the store to come back) are not answered again
    answered = _Recent(10_000)

    def batches_of(
        topic: str,
        title: str,
        description: str,
        batches: Batches,
        timeout_ms: int | None = None,
    ) -> Callable[[Callable[..., Awaitable[None]]], Any]:
        subscriber = router.subscriber(
            topic,
            batch=True,
            max_records=config.batch_size,
            batch_timeout_ms=timeout_ms or config.batch_timeout_ms,
            title=title,
            description=description,
            group_id=config.group,
            auto_offset_reset="earliest",
            # `Batches` commits: once a batch and the batches before it are done
            ack_policy=AckPolicy.MANUAL,
            listener=_Drained(batches),
            decoder=_records_only,
            max_partition_fetch_bytes=config.fetch_bytes,
        )
        subscriber.__class__ = _Prompt  # the same object, taking what arrives at once
        return subscriber

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
        if not isinstance(command, ActivateTrigger | StartExecution):
            command = None  # a refusal report: its letter keeps the record as it came
        fault = next((e for e in chain(error) if isinstance(e, ExecutionFault)), None)
        await letters.park(
            record,
            DeadLetterKind.INVALID if error is None else DeadLetterKind.FAILED,
            describe(error) if error is not None else item.invalid or "invalid",
            1 if error is None else config.attempts,
            command,
            fault.execution_id if fault is not None else None,
        )
        kind = "invalid" if error is None else "failed"
        metrics.dead_letters.labels(record.topic, kind).inc()

    starts = Batches(config, metrics, letters.skip)

    @batches_of(
        topics.execution_starts,
        "engine:execution-starts",
        "Start requests from the gateway or any service; one execution each.",
        starts,
    )
    async def on_starts(
        payload: list[StartExecution], message: KafkaMessage, consumer: Consumer
    ) -> None:
        batch = starts.open(message.raw_message, StartExecution)

        async def start(command: StartExecution) -> None:
            await engine.start(command)
            metrics.starts.inc()

        await starts.submit(batch, lambda: starts.run(batch, start, park, consumer), consumer)

    activations = Batches(config, metrics, letters.skip)

    @batches_of(
        topics.activations,
        "engine:activations",
        "Trigger activations: from the gateway, or published straight to Kafka.",
        activations,
    )
    async def on_activations(
        payload: list[ActivateTrigger], message: KafkaMessage, consumer: Consumer
    ) -> None:
        batch = activations.open(message.raw_message, ActivateTrigger)
        await activations.submit(batch, lambda: decide_batch(batch, consumer), consumer)

    async def decide_batch(batch: Batch[ActivateTrigger], consumer: Any) -> None:
        items = batch.items
        commands = [item.command for item in items if item.command is not None]
        # records of keys an earlier batch in flight still holds (a burst to one trigger,
        # a record delivered twice): read what the store holds once that batch is done
        await batch.after_earlier()
        ids = list(dict.fromkeys(c.activationId for c in commands))
        # the outcomes and the executions named (`execution=<id>`) read at once
        found, read_ahead = await asyncio.gather(
            engine.read_activations(ids), engine.read_ahead(commands)
        )
        handled: set[str] = set()  # a record repeated in the batch is decided once
        fresh: list[ActivationOutcome] = []
        nobody_waits: set[str] = set()

        headers = (
            {i.command.activationId: i.record.headers for i in items if i.command}
            if tracing.enabled
            else {}
        )

        async def decide(command: ActivateTrigger) -> tuple[ActivationOutcome, bool]:
            if not tracing.enabled:
                return await engine.decide(
                    command, found.get(command.activationId), nobody_waits, read_ahead
                )
            parent = Tracing.from_kafka(headers.get(command.activationId))
            attributes = {
                "hookflow.activation_id": command.activationId,
                "hookflow.trigger_id": command.triggerId,
            }
            with tracing.start("decide", parent, SpanKind.CONSUMER, attributes) as span:
                decision, new = await engine.decide(
                    command, found.get(command.activationId), nobody_waits, read_ahead
                )
                span.set_attribute("hookflow.outcome", decision.outcome.value)
                if new:  # the log names the trace it was decided in
                    decision = decision.model_copy(update={"traceId": Tracing.trace_id()})
                return decision, new

        async def activate(command: ActivateTrigger) -> None:
            if command.activationId in handled:
                return
            decision, new = await decide(command)
            handled.add(command.activationId)  # only once decided: a failure is tried again
            if new:
                fresh.append(decision)
            elif not answered.seen(decision.activationId):
                # decided before, maybe by an engine that died before publishing: answer again
                await engine.republish(decision)
                metrics.republished.inc()
                answered.add(decision.activationId)

        try:
            await activations.run(batch, activate, park, consumer)
        finally:
            fresh = await engine.record(fresh)
            received = {c.activationId: c.receivedAt for c in commands}
            for decision in fresh:
                answered.add(decision.activationId)
                metrics.decisions.labels(decision.outcome.value).inc()
                waited = decision.decidedAt - received[decision.activationId]
                metrics.decision_seconds.observe(max(0.0, waited / 1000))

    refusals = Batches(config, metrics, letters.skip)

    @batches_of(
        topics.activation_refusals,
        "engine:activation-refusals",
        "Callbacks a gateway refused or dropped under an IGNORE policy, with the reason: "
        "written into the activation log.",
        refusals,
        # a log, not a decision: polled 4 times a second while idle, not 50
        timeout_ms=250,
    )
    async def on_refusals(
        payload: list[ActivationRefused], message: KafkaMessage, consumer: Consumer
    ) -> None:
        batch = refusals.open(message.raw_message, ActivationRefused)
        await refusals.submit(
            batch, lambda: refusals.run(batch, engine.log_refused, park, consumer), consumer
        )

    broker.include_router(router)

    async def close() -> None:
        await asyncio.gather(starts.close(), activations.close(), refusals.close())

    return close


async def _records_only(message: StreamMessage[Any]) -> list[Any]:
    """Skip FastStream's decoding: each record is validated on its own in the handler, so
    that one invalid record cannot fail its batch. The handler's first parameter is then
    always empty; its type is what the AsyncAPI document shows as the payload."""
    return []


class _Prompt(BatchSubscriber):
    """FastStream's batch subscriber, without its pause after an empty poll. The poll
    (`getmany`) already waits up to `batch_timeout_ms` and returns as soon as a record
    arrives; the pause after it (as long again) left a record arriving then unread for up
    to 20 ms, the latency of a quiet engine. An empty poll that returned early (nothing
    assigned yet) still waits out its time: the loop never spins."""

    __slots__ = ()

    async def get_msg(self, consumer: Any) -> tuple[Any, ...]:
        started = time.monotonic()
        fetched = await consumer.getmany(
            timeout_ms=self.batch_timeout_ms, max_records=self.max_records
        )
        if fetched:
            return tuple(record for records in fetched.values() for record in records)
        left = self.batch_timeout_ms / 1000 - (time.monotonic() - started)
        if left > 0:
            await asyncio.sleep(left)
        return ()


class _Drained(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions go to another consumer, the batches in flight finish and commit
    (their records are then not decided twice)."""

    def __init__(self, batches: Batches) -> None:
        self._batches = batches

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._batches.drain()
        self._batches.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._batches.forget(assigned)


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
