"""Figure bookkeeping and measuring helpers: a figure with its runs and its peer's, py-spy
profiles, percentiles."""

import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import PY


@dataclass
class Figure:
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    goal: str = ""
    better: str = "higher"  # or "lower"
    id: str | None = None  # the name for a figure with a goal (P3, P4, P7)

    def summary(self) -> dict[str, Any]:
        value = statistics.median(self.values) if self.values else float("nan")
        peer = statistics.median(self.peer) if self.peer else None
        return {
            "id": self.id,
            "name": self.name,
            "value": round(value, 3),
            "unit": self.unit,
            "min": round(min(self.values), 3) if self.values else None,
            "max": round(max(self.values), 3) if self.values else None,
            "runs": len(self.values),
            "peer_value": round(peer, 3) if peer is not None else None,
            "ratio": round(value / peer, 3) if peer else None,
            "goal": self.goal,
            "better": self.better,
        }


PACKAGES = (
    "faststream",
    "aiokafka",
    "pymongo",
    "bson",
    "pydantic",
    "starlette",
    "uvicorn",
    "httptools",
    "cel",
    "prometheus_client",
    "httpx",
    "engine/",
    "gateway/",
    "auth/",
    "schemas/",
    "asyncio",
    "json",
    "uuid",
)


@contextmanager
def profiled(pid: int, seconds: float, into: dict[str, Any], label: str) -> Iterator[None]:
    """Sample a process with py-spy while the body runs; summarise where its time went."""
    raw = Path(tempfile.mkdtemp(prefix="hookflow-profile-")) / "raw.txt"
    spy = subprocess.Popen(
        [
            str(Path(PY).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        try:
            spy.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
        into[label] = _summarise(raw) if raw.exists() else {"error": "py-spy gave no profile"}
        raw.unlink(missing_ok=True)


def _summarise(raw: Path) -> dict[str, Any]:
    by_package: dict[str, int] = {}
    by_function: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        package = next((p.rstrip("/") for p in PACKAGES if p in leaf), "other")
        by_package[package] = by_package.get(package, 0) + n
        by_function[leaf] = by_function.get(leaf, 0) + n
        for frame in {f.split(" (")[0] for f in frames}:
            inclusive[frame] = inclusive.get(frame, 0) + n
    top = sorted(
        (
            (n, f)
            for f, n in inclusive.items()
            if any(
                k in f
                for k in (
                    "Engine.",
                    "Gateway.",
                    "MongoStore.",
                    "Publisher",
                    "publish",
                    "commit",
                    "model_validate",
                    "_resume",
                )
            )
        ),
        reverse=True,
    )[:12]
    return {
        "samples": total,
        "self_by_package": {
            k: round(v / total, 3) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])
        }
        if total
        else {},
        "inclusive": {f: round(n / total, 3) for n, f in top} if total else {},
        "self_by_function": {
            f: round(n / total, 3)
            for f, n in sorted(by_function.items(), key=lambda kv: -kv[1])[:25]
        }
        if total
        else {},
    }


HEAVY = "data.items.map(a, data.items.map(b, a + b)).size() > 0"


def in_place_stall(items: list[int]) -> float:
    """How late a 10 ms ticker on an event loop gets while that loop evaluates HEAVY in
    place over `items` (milliseconds): what /healthz waited before the budget."""
    import cel  # the engine's expression library

    async def measure() -> float:
        late: list[float] = []

        async def ticker() -> None:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                late.append((time.perf_counter() - before - 0.01) * 1000)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        cel.compile(HEAVY).execute({"data": {"items": items}})
        await asyncio.sleep(0.05)
        task.cancel()
        return max(late)

    return asyncio.run(measure())


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")
