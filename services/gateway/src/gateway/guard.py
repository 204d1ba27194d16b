"""The lag guard (opt-in): callbacks get 429 while the engine is behind by more than a
configured number of seconds of arrivals.

The engine's lag in seconds is the age of the oldest callback it has not committed: every
`interval` the guard reads the activations topic's end offsets and the engine group's
committed offsets, and keeps when each end offset was first seen, so a committed offset
maps to the time its next record arrived (as Kafka lag exporters estimate time lag).
Callers are told to come back after the lag beyond the limit: the least the engine needs
to get under it, draining at the pace the callbacks arrived.
"""

import asyncio
import bisect
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from gateway.limits import RateLimited
from schemas.errors import ErrorCode

logger = logging.getLogger(__name__)

# (end offsets, committed offsets) of the activations topic, by partition; a partition
# the engine never committed is missing from the second
ReadPositions = Callable[[], Awaitable[tuple[dict[int, int], dict[int, int]]]]

MAX_RETRY_AFTER = 300


class LagGuard:
    """Knows how far behind the engine is, in seconds of arrivals, and sheds above it."""

    def __init__(self, max_seconds: float, window_seconds: float = 900.0) -> None:
        self.max_seconds = max_seconds
        self._window = window_seconds
        # per partition: the times at which its end offset was first seen, and those offsets
        self._seen: dict[int, deque[tuple[int, float]]] = {}
        self.lag_seconds = 0.0
        self.known = False  # whether the engine's position was read at all

    def observe(self, now: float, ends: dict[int, int], committed: dict[int, int]) -> None:
        """Take one reading of the topic's end and the engine's position, made at `now`."""
        lag = 0.0
        for partition, end in ends.items():
            seen = self._seen.setdefault(partition, deque())
            if not seen or seen[-1][0] != end:
                seen.append((end, now))
            while len(seen) > 1 and seen[1][1] < now - self._window:
                seen.popleft()
            position = committed.get(partition)
            if position is None or position >= end:
                continue
            lag = max(lag, now - self._arrived(seen, position))
        self.known = bool(committed)
        self.lag_seconds = lag if self.known else 0.0

    @staticmethod
    def _arrived(seen: deque[tuple[int, float]], offset: int) -> float:
        """When the record at `offset` arrived, as well as the readings tell: the first
        reading whose end offset was past it (the oldest reading when it is older)."""
        index = bisect.bisect_right([end for end, _ in seen], offset)
        return seen[min(index, len(seen) - 1)][1]

    def check(self) -> None:
        """Raise the 429 while the lag is over the limit."""
        over = self.lag_seconds - self.max_seconds
        if over > 0:
            raise RateLimited(
                min(over, MAX_RETRY_AFTER),
                ErrorCode.OVERLOADED,
                f"the engine is {self.lag_seconds:.0f} s behind; retry later",
            )

    async def run(self, read: ReadPositions, interval: float) -> None:
        """Read the positions every `interval` seconds until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                ends, committed = await read()
            except Exception as exc:  # the broker is away: keep the last reading
                logger.warning("engine lag not read", extra={"error": repr(exc)})
            else:
                self.observe(loop.time(), ends, committed)
            await asyncio.sleep(interval)
