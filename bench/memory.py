"""Memory under a steady load: each service's resident memory, sampled while callbacks
nobody waits for arrive at a fixed rate for `minutes` (M3 to M5: the RSS at the end;
M3g to M5g: the growth over the load's second half, in MB per 10 minutes, where a
leak would show; the first half is the caches and the allocator's arenas filling)."""

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness import PY, ROOT

if TYPE_CHECKING:
    from suite import Suite

SERVICES = {"gateway": "M3", "engine": "M4", "auth": "M5"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def growth_per_10_minutes(samples: list[tuple[float, float]]) -> float:
    """The least-squares slope of the second half of (seconds, MB) samples, per 600 s."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return float("nan")
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_m = sum(m for _, m in half) / n
    spread = sum((t - mean_t) ** 2 for t, _ in half)
    if spread == 0:
        return float("nan")
    slope = sum((t - mean_t) * (m - mean_m) for t, m in half) / spread
    return slope * 600


def memory(suite: "Suite", minutes: float, rate: float) -> None:
    """RSS of every service over `minutes` of `rate` callbacks a second nobody waits for
    (each accepted, decided NO_WAITER and written to the activation log)."""
    url = suite.callback(suite.nowaiter_flow)
    seconds = minutes * 60
    load = subprocess.Popen(  # our own load generator
        [
            PY,
            str(ROOT / "bench" / "loadgen.py"),
            "--url",
            url,
            "--mode",
            "open",
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.DEVNULL,
    )
    pids = {name: suite.s.processes[name].pid for name in SERVICES if name in suite.s.processes}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
    started = time.monotonic()
    try:
        while load.poll() is None:
            at = time.monotonic() - started
            for name, pid in pids.items():
                samples[name].append((at, rss_mb(pid)))
            time.sleep(min(5.0, max(0.5, seconds / 60)))
    finally:
        load.wait(timeout=seconds + 120)
    for name, id in SERVICES.items():
        series = samples.get(name)
        if not series:
            continue
        suite.fig(
            f"RSS at the end of {minutes:g} min at {rate:.0f} callbacks/s, {name}",
            "MB",
            better="lower",
            id=id,
        ).values.append(series[-1][1])
        suite.fig(
            f"RSS growth over the second half of {minutes:g} min at {rate:.0f} callbacks/s, {name}",
            "MB per 10 min",
            "no growth (below 5 MB per 10 min)",
            better="lower",
            id=f"{id}g",
        ).values.append(growth_per_10_minutes(series))
