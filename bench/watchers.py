"""Background watchers of a run: topics followed, lag sampled, decision gaps measured."""

import asyncio
import contextlib
import itertools
import json
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from harness import http

if TYPE_CHECKING:
    from suite import Suite


class Follower:
    """Reads a topic from its end in a thread; `seen` gets every message as JSON."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._stop = False

    def seen(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        import threading

        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._follow()), daemon=True)
        self._thread.start()
        self._ready.wait(30)
        return self

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        await consumer.start()
        await consumer.seek_to_end()
        for tp in consumer.assignment():
            await consumer.position(tp)
        self._ready.set()
        try:
            while not self._stop:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        self.seen(json.loads(record.value))
        finally:
            await consumer.stop()

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(10)


class CompletionWatcher(Follower):
    """Records when each execution completed."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(bootstrap, topic)
        self.completed: dict[str, int] = {}

    def seen(self, message: dict[str, Any]) -> None:
        if message.get("kind") == "completed":
            self.completed[message["executionId"]] = message["at"]

    def wait_for(self, expected: set[str], timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not expected <= set(self.completed):
            time.sleep(0.05)
        return {e: self.completed[e] for e in expected if e in self.completed}


class LagSampler:
    """Reads the engine's consumer lag from its /metrics twice a second, in a thread."""

    def __init__(self, engine: str, topic: str) -> None:
        self.engine, self.topic = engine, topic
        self.samples: list[tuple[float, float]] = []
        self._stop = False

    def __enter__(self) -> "LagSampler":
        import threading

        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        prefix = 'hookflow_engine_consumer_lag{partition="'
        while not self._stop:
            try:
                with urllib.request.urlopen(f"{self.engine}/metrics", timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            lag = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith(prefix) and f'topic="{self.topic}"' in line
            )
            self.samples.append((time.time(), lag))
            time.sleep(0.5)

    def wait_drained(self, timeout: float) -> float | None:
        """When the lag was back to 0 after the load, or None."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.samples and self.samples[-1][1] == 0:
                return self.samples[-1][0]
            time.sleep(0.2)
        return None

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(10)


class DecisionGaps:
    """A steady trickle of callbacks nobody waits for; the gaps between their decisions."""

    def __init__(self, suite: "Suite", rate: float) -> None:
        self.suite, self.rate = suite, rate

    def __enter__(self) -> "DecisionGaps":
        import threading

        suite = self.suite
        self.counter = OutcomeCounter(
            suite.s.kafka,
            f"{suite.s.prefix}.activation-outcomes",
            suite.nowaiter_flow["flowId"],
            keep_times=True,
        )
        self.counter.__enter__()
        self._stop = False
        url = suite.callback(suite.nowaiter_flow)

        def send() -> None:
            while not self._stop:
                with contextlib.suppress(OSError):
                    http("POST", url, {})
                time.sleep(1 / self.rate)

        self._thread = threading.Thread(target=send, daemon=True)
        self._thread.start()
        time.sleep(1.0)
        return self

    def longest_gap_after(self, since: float, settle: float) -> float:
        """The longest stretch without a decision from `since` until `settle` s later."""
        time.sleep(settle)
        times = sorted(t / 1000 for t in self.counter.times if t / 1000 >= since - 1)
        points = [since, *(t for t in times if t >= since), time.time()]
        return max(b - a for a, b in itertools.pairwise(points))

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(10)
        self.counter.__exit__(*exc)


class OutcomeCounter(Follower):
    """Counts one flow's activation outcomes; remembers the last decision time."""

    def __init__(self, bootstrap: str, topic: str, flow_id: str, keep_times: bool = False) -> None:
        super().__init__(bootstrap, topic)
        self.flow_id = flow_id
        self.count, self.last = 0, 0
        self.keep_times = keep_times
        self.times: list[int] = []

    def seen(self, message: dict[str, Any]) -> None:
        if message.get("flowId") == self.flow_id:
            self.count += 1
            self.last = max(self.last, int(message["decidedAt"]))
            if self.keep_times:
                self.times.append(int(message["decidedAt"]))

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.count < count:
            time.sleep(0.05)
        return self.last
