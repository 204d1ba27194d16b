"""Kafka consumers: decode a command, hand it to the engine, commit only once it is done.

Offsets are committed after the outcome is persisted (`NACK_ON_ERROR`: a failure seeks
back and the message is delivered again). A message that is not a valid command can
never succeed, so it is logged and skipped instead of blocking its partition.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError

from engine.service import Engine
from schemas.events import ActivateTrigger, StartExecution
from schemas.topics import Topics

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def register(
    broker: KafkaBroker,
    engine: Engine,
    topics: Topics,
    group: str,
    workers: int,
    backoff_seconds: float,
) -> None:
    """Subscribe the engine to execution starts and activations."""

    # max_workers > 1 handles partitions concurrently, each one still in order
    @broker.subscriber(
        topics.execution_starts,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=workers,
    )
    async def on_start(message: KafkaMessage) -> None:
        command = _decode(StartExecution, message.body)
        if command is not None:
            await _retrying(
                lambda: engine.start(command), backoff_seconds, execution_id=command.executionId
            )

    @broker.subscriber(
        topics.activations,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=workers,
    )
    async def on_activation(message: KafkaMessage) -> None:
        command = _decode(ActivateTrigger, message.body)
        if command is not None:
            await _retrying(
                lambda: engine.activate(command),
                backoff_seconds,
                activation_id=command.activationId,
            )


def _decode(model: type[M], body: bytes) -> M | None:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        logger.error("invalid %s skipped: %s", model.__name__, exc.errors(include_url=False))
        return None


async def _retrying(work: Callable[[], Awaitable[object]], backoff: float, **context: str) -> None:
    """Run `work`; on failure wait before the message is delivered again."""
    try:
        await work()
    except Exception:
        logger.exception("handling failed; the message will be delivered again", extra=context)
        await asyncio.sleep(backoff)
        raise
