"""The deployment's figures over the last hour, sampled from Kafka's offsets: where each
topic ends (what the gateways and other publishers wrote) and where the engines' group
has committed (what they decided). Any engine answers the same, whichever gateways and
engines run: the per-process `/metrics` count one process each."""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from schemas.system import SystemFigures, SystemSample
from schemas.topics import Topics

logger = logging.getLogger(__name__)

Ends = Callable[[str], Awaitable[dict[int, int]]]  # a topic -> its partitions' end offsets
Committed = Callable[[str, str], Awaitable[dict[int, int]]]  # (group, topic) ->


class SystemSampler:
    """Keeps a sample every `interval` seconds for the last `keep` samples."""

    def __init__(
        self,
        ends: Ends,
        committed: Committed,
        topics: Topics,
        group: str,
        interval: float = 5.0,
        keep: int = 720,
    ) -> None:
        self._ends = ends
        self._committed = committed
        self._topics = topics
        self._group = group
        self._interval = interval
        self._samples: deque[SystemSample] = deque(maxlen=keep)

    async def sample(self) -> SystemSample:
        """Read the positions now, and keep them."""
        topics = self._topics
        accepted = await self._ends(topics.activations)
        requested = await self._ends(topics.execution_starts)
        sample = SystemSample(
            at=time.time_ns() // 1_000_000,
            accepted=sum(accepted.values()),
            # a partition the group never committed on has decided nothing of it
            decided=sum((await self._committed(self._group, topics.activations)).values()),
            refused=sum((await self._ends(topics.activation_refusals)).values()),
            startsRequested=sum(requested.values()),
            started=sum((await self._committed(self._group, topics.execution_starts)).values()),
            deadLetters=sum((await self._ends(topics.dead_letters)).values()),
        )
        self._samples.append(sample)
        return sample

    async def run(self) -> None:
        """Sample for as long as the engine runs; a failed read skips one sample."""
        while True:
            try:
                await self.sample()
            except Exception as exc:
                logger.warning("system figures not sampled", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)

    def figures(self) -> SystemFigures:
        return SystemFigures(intervalSeconds=self._interval, samples=list(self._samples))
