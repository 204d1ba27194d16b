"""Kafka consumers: hand each command to the engine, commit only once it is done.

Offsets are committed after the outcome is persisted (`NACK_ON_ERROR`: a failure seeks
back and the message is delivered again). A message that is not a valid command can
never succeed, so `SkipInvalid` logs and acknowledges it instead of blocking its partition.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fast_depends.exceptions import ValidationError as ArgumentsError
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.message import StreamMessage
from pydantic import ValidationError

from engine.service import Engine
from schemas.events import ActivateTrigger, StartExecution
from schemas.topics import Topics

logger = logging.getLogger(__name__)


class SkipInvalid(BaseMiddleware):
    """Acknowledge and log a message whose body is not the command its topic carries."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        try:
            return await call_next(msg)
        except (ValidationError, ArgumentsError) as exc:
            logger.error(
                "invalid message skipped",
                extra={
                    "topic": getattr(msg.raw_message, "topic", None),
                    "offset": getattr(msg.raw_message, "offset", None),
                    "error": str(exc)[:500],
                },
            )
            return None


def register(
    broker: KafkaBroker,
    engine: Engine,
    topics: Topics,
    group: str,
    workers: int,
    backoff_seconds: float,
) -> None:
    """Subscribe the engine to execution starts and activations.

    `workers` > 1 handles partitions concurrently, each partition still in order.
    """
    router = KafkaRouter(middlewares=[SkipInvalid])

    @router.subscriber(
        topics.execution_starts,
        title="engine:execution-starts",
        description="Start requests from the gateway or any service; one execution each.",
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=workers,
    )
    async def on_start(command: StartExecution) -> None:
        await _retrying(
            lambda: engine.start(command), backoff_seconds, execution_id=command.executionId
        )

    @router.subscriber(
        topics.activations,
        title="engine:activations",
        description="Trigger activations: from the gateway, or published straight to Kafka.",
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        max_workers=workers,
    )
    async def on_activation(command: ActivateTrigger) -> None:
        await _retrying(
            lambda: engine.activate(command), backoff_seconds, activation_id=command.activationId
        )

    broker.include_router(router)


async def _retrying(work: Callable[[], Awaitable[object]], backoff: float, **context: str) -> None:
    """Run `work`; on failure wait before the message is delivered again."""
    try:
        await work()
    except Exception:
        logger.exception("handling failed; the message will be delivered again", extra=context)
        await asyncio.sleep(backoff)
        raise
