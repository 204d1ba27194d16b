"""The Publisher port on Kafka: events, outcomes, dead letters, replays, the flow registry."""

import asyncio
from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    RegistryRecord,
    TriggerRegistered,
)
from schemas.producer import Producer
from schemas.topics import Topics

_JSON = {"content-type": "application/json"}  # what the messages are


class KafkaPublisher:
    """Publishes engine events; each waits for the broker's acknowledgement (acks=all).
    With `producer` (librdkafka), execution events and outcomes, a batch's sends, go
    through it; the rest, and everything when a test gives FastStream's in-memory broker,
    through the broker's publishers (declared for the AsyncAPI document either way)."""

    def __init__(
        self, broker: KafkaBroker, topics: Topics, producer: Producer | None = None
    ) -> None:
        self._broker = broker
        self._producer = producer
        self._events_topic = topics.execution_events
        self._outcomes_topic = topics.activation_outcomes
        self._inputs = frozenset({topics.activations, topics.execution_starts})
        self._activations = topics.activations
        self._letters = broker.publisher(
            topics.dead_letters,
            title="engine:dead-letters",
            schema=DeadLetter,
            description="Messages the engine gave up on: invalid ones at once, others after "
            "every attempt failed; key: the original key. Listed and replayed through "
            "/api/automation/dead-letters.",
        )
        self._events = broker.publisher(
            topics.execution_events,
            title="engine:execution-events",
            schema=ExecutionEvent,
            description="Executions started, waiting, resumed, completed and failed; "
            "key: execution id.",
        )
        self._outcomes = broker.publisher(
            topics.activation_outcomes,
            title="engine:activation-outcomes",
            schema=ActivationOutcome,
            description="What became of each activation; key: activation id.",
        )
        self._registry = broker.publisher(
            topics.flow_registry,
            title="engine:flow-registry",
            schema=RegistryRecord,
            description="Compacted: one record per flow version (key flowId) and per trigger "
            "(key flowId/triggerId); re-published at every engine start.",
        )

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None:
        messages = [(e, e.executionId) for e in events]
        if self._producer is not None:
            await _sent(self._producer, self._events_topic, messages)
        else:
            await _acknowledged(self._events, messages)

    async def outcomes(self, outcomes: Sequence[ActivationOutcome]) -> None:
        messages = [(o, o.activationId) for o in outcomes]
        if self._producer is not None:
            await _sent(self._producer, self._outcomes_topic, messages)
        else:
            await _acknowledged(self._outcomes, messages)

    async def dead_letter(self, letter: DeadLetter) -> None:
        key = letter.key.encode() if letter.key is not None else None
        await self._letters.publish(letter.model_dump(mode="json"), key=key)

    async def replay(self, letter: DeadLetter) -> None:
        if letter.topic not in self._inputs:
            raise ValueError(f"dead letter {letter.deadLetterId} is from topic {letter.topic}")
        key = letter.key.encode() if letter.key is not None else None
        await self._broker.publish(
            letter.value.encode(),
            topic=letter.topic,
            key=key,
            headers={"content-type": "application/json"},
        )

    async def activation(self, command: ActivateTrigger, key: str) -> None:
        await self._broker.publish(
            command.model_dump_json(exclude_none=True).encode(),
            topic=self._activations,
            key=key.encode(),
            headers=_JSON,
        )

    async def registry(self, records: Sequence[RegistryRecord]) -> None:
        for record in records:
            key = (
                f"{record.flowId}/{record.triggerId}"
                if isinstance(record, TriggerRegistered)
                else record.flowId
            )
            await self._registry.publish(record.model_dump(mode="json"), key=key.encode())


async def _sent(producer: Producer, topic: str, messages: Sequence[tuple[BaseModel, str]]) -> None:
    """Send (message, key) pairs through librdkafka: enqueued one after the other (their
    order on a partition), acknowledged together. A send refused at once (buffer full,
    too large) fails the batch then; the records already enqueued go on, unwatched (the
    batch is tried again), their errors retrieved rather than logged as never retrieved."""
    pending: list[asyncio.Future[None]] = []
    try:
        for message, key in messages:
            pending.append(
                producer.send(topic, message.model_dump_json().encode(), key.encode(), _JSON)
            )
    except BaseException:
        for future in pending:
            future.add_done_callback(_settled)
        raise
    await asyncio.gather(*pending)


def _settled(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


async def _acknowledged(publisher: Any, messages: Sequence[tuple[BaseModel, str]]) -> None:
    """Publish (message, key) pairs: enqueued one after the other (their order on a
    partition), acknowledged together; each written as JSON bytes by pydantic (FastStream
    would dump the model to a dict and that to text again)."""
    pending = []
    for message, key in messages:
        sent = await publisher.publish(
            message.model_dump_json().encode(), key=key.encode(), headers=_JSON, no_confirm=True
        )
        if isinstance(sent, asyncio.Future):
            pending.append(sent)
    await asyncio.gather(*pending)
