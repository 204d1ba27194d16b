"""Callbacks the gateway does not publish, reported for the activation log.

Once a callback's flow is known, whatever stops it here (a bad signature, a body that
is not JSON or too large, a failed auth check, a spent rate limit, a trigger its flow
lacks, a drop by the trigger's IGNORE policy) is reported on the `activation-refusals`
topic, which the engine writes into the log with the reason. A report never delays the
answer: it is queued and sent by one task. At most `per_second` are reported (a burst
of as many), and at most `queue_size` wait: a flood of bad requests costs the log and
the broker no more than that; what is left out is counted
(`hookflow_gateway_refusal_reports_total{result="dropped"}`).

Not reported: a callback for a flow that does not exist (a scan of the URL space would
write the log full of made-up ids), one refused by the per-address limit (the same), and
one whose publish failed (503: its activation may still reach the engine, whose outcome
the log must show).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from gateway.limits import TokenBuckets
from schemas.events import ActivationRefused

logger = logging.getLogger(__name__)

# the report's bytes and its key (the trigger id: a trigger's reports stay in order)
Send = Callable[[bytes, bytes], Awaitable[None]]


class Refusals:
    """Queues refusal reports within the rate and sends them from one task (`run`)."""

    def __init__(
        self, send: Send, per_second: float, counts: dict[str, int], queue_size: int = 1000
    ) -> None:
        self._send = send
        # one bucket: a second's rate, at least one report
        self._bucket = TokenBuckets(per_second, max(1, int(per_second))) if per_second else None
        self._queue: deque[ActivationRefused] = deque()
        self._queue_size = queue_size
        self._ready = asyncio.Event()  # reports wait
        self._idle = asyncio.Event()  # none waits, none is being sent
        self._idle.set()
        self._counts = counts  # result (sent, dropped, failed) -> reports
        for result in ("sent", "dropped", "failed"):
            counts.setdefault(result, 0)

    @property
    def enabled(self) -> bool:
        return self._bucket is not None

    def report(self, refused: ActivationRefused) -> None:
        """Queue a report, or count it dropped when over the rate or the queue is full."""
        if self._bucket is None:
            return
        if len(self._queue) >= self._queue_size or self._bucket.take("", time.monotonic()):
            self._counts["dropped"] += 1
            return
        self._queue.append(refused)
        self._ready.set()
        self._idle.clear()

    async def run(self) -> None:
        """Send the queued reports, oldest first, for as long as the gateway runs."""
        while True:
            await self._ready.wait()
            while self._queue:
                refused = self._queue.popleft()
                try:
                    await self._send(refused.model_dump_json().encode(), refused.triggerId.encode())
                except Exception as exc:  # the log misses it; the caller has its answer
                    self._counts["failed"] += 1
                    logger.warning(
                        "refusal not reported",
                        extra={"activation_id": refused.activationId, "error": repr(exc)},
                    )
                else:
                    self._counts["sent"] += 1
            self._ready.clear()
            self._idle.set()

    async def flush(self, seconds: float) -> None:
        """Wait up to `seconds` for the queue to empty (on shutdown)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._idle.wait()
