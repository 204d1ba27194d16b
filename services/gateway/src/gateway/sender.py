"""Publish an accepted request to Kafka within its deadline: acknowledged (acks=all), or
the contract's error (413 when the broker refuses its size, 503 otherwise)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka.errors import MessageSizeTooLargeError

from gateway.call import Deadline
from gateway.metrics import Metrics
from schemas.errors import ErrorCode
from schemas.producer import TooLarge
from schemas.requests import RequestError
from schemas.topics import Topics

logger = logging.getLogger(__name__)

# topic, message, key, correlation id (the activation or execution id), extra headers
Publish = Callable[[str, bytes, bytes, str, dict[str, str] | None], Awaitable[None]]


class Sender:
    """Sends a message and waits for Kafka's acknowledgement, at most `seconds`."""

    def __init__(self, publish: Publish, topics: Topics, metrics: Metrics, seconds: float) -> None:
        self._publish = publish
        self._seconds = seconds
        # histogram children bound once: a label lookup per request costs more than the count
        self._latency = {
            topic: metrics.timing(metrics.publish_latency, topic)
            for topic in (topics.activations, topics.execution_starts)
        }

    async def send(
        self,
        topic: str,
        body: bytes,
        key: bytes,
        correlation_id: str,
        deadline: Deadline,
        headers: dict[str, str] | None = None,
    ) -> None:
        """`headers`: what the message carries besides its content type (a trace's context)."""
        started = time.perf_counter()
        deadline.arm(self._seconds)
        try:
            await self._publish(topic, body, key, correlation_id, headers)
        except (TooLarge, MessageSizeTooLargeError):
            # the client's doing, not the broker's: retrying the same body cannot help
            raise RequestError(
                413,
                ErrorCode.BODY_TOO_LARGE,
                f"the request is too large for the broker ({len(body)} bytes as an event)",
            ) from None
        except Exception as exc:
            raise _unavailable(topic, exc) from exc
        except asyncio.CancelledError as exc:
            if not deadline.timed_out():
                raise
            raise _unavailable(topic, exc) from None
        finally:
            deadline.disarm()
        self._latency[topic].observe(time.perf_counter() - started)


def _unavailable(topic: str, exc: BaseException) -> RequestError:
    logger.warning("publish failed", extra={"topic": topic, "error": repr(exc)})
    return RequestError(
        503,
        ErrorCode.BROKER_UNAVAILABLE,
        "the request was not accepted: the broker is unavailable; "
        "retry later (with the same Idempotency-Key)",
    )
