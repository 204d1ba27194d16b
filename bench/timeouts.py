"""Timers: many wait timeouts due within a spread; how late each fires."""

import asyncio
import time
from typing import TYPE_CHECKING

from harness import http
from measures import percentile
from seeding import create_timed, read_lateness

if TYPE_CHECKING:
    from suite import Suite


def timers(suite: "Suite", count: int, spread_seconds: float) -> None:
    """P11: `count` waits whose timeouts fall due over `spread_seconds`: how late each
    fires (from its deadline to the `timedOut` entry the engine writes)."""
    engine = suite.s.url("engine")
    flow = http(
        "POST",
        f"{engine}/api/automation/flows",
        {
            "name": "bench-timers",
            "blocks": [
                {"name": "Go", "type": "start", "next": "Wait"},
                {
                    "name": "Wait",
                    "type": "external_callback",
                    "timeoutSeconds": 3600,
                    "onTimeout": "Late",
                },
                {"name": "Late", "type": "assign", "assign": {"late": "true"}},
            ],
        },
    )
    first = int(time.time() * 1000) + 5000  # after the documents are written
    due = [first + int(i * spread_seconds * 1000 / count) for i in range(count)]
    database = f"{suite.s.prefix}_engine"
    ids = asyncio.run(create_timed(suite.s.mongodb, database, flow["flowId"], due))
    time.sleep(max(0.0, due[-1] / 1000 - time.time()) + 5)
    lateness = asyncio.run(
        read_lateness(suite.s.mongodb, database, dict(zip(ids, due, strict=True)))
    )
    fired = [late for late in lateness if late is not None]
    suite.fig("timeouts fired, of those due", "ratio", "all", id="T1").values.append(
        len(fired) / count
    )
    if fired:
        suite.fig(
            f"timeout lateness, max ({count} due within {spread_seconds:.0f} s)",
            "s",
            "below 2 s",
            better="lower",
            id="P11",
        ).values.append(max(fired) / 1000)
        suite.fig(
            f"timeout lateness, p99 ({count} due within {spread_seconds:.0f} s)",
            "s",
            better="lower",
            id="P11.p99",
        ).values.append(percentile(fired, 0.99) / 1000)
