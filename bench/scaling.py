"""A second engine: CPU per decision and rebalance pauses."""

import time
from typing import TYPE_CHECKING

from harness import cpu_seconds, loadgen
from watchers import DecisionGaps, OutcomeCounter

if TYPE_CHECKING:
    from suite import Suite


def scaling(suite: "Suite") -> None:
    """P9: CPU per 1,000 decisions with 1 and 2 engines; rebalance pauses on join/leave."""
    seconds = 1.0 if suite.smoke else 5.0
    one = _cpu_per_thousand(suite, ["engine"], seconds)
    probe = DecisionGaps(suite, rate=20.0)
    with probe:
        joined = time.time()
        suite.s.start_second_engine()
        join_pause = probe.longest_gap_after(joined, settle=15.0 if not suite.smoke else 6.0)
    two = _cpu_per_thousand(suite, ["engine", "engine2"], seconds)
    with probe:
        left = time.time()
        suite.s.stop("engine2")
        leave_pause = probe.longest_gap_after(left, settle=15.0 if not suite.smoke else 6.0)
    figure = suite.fig(
        "CPU seconds per 1,000 decisions, 2 engines (peer: 1 engine)",
        "s",
        "within 10% of one engine",
        better="lower",
        id="P9",
    )
    figure.values.append(two)
    figure.peer.append(one)
    suite.fig(
        "rebalance pause when an engine joins", "s", "below 10 s", better="lower", id="S1"
    ).values.append(join_pause)
    suite.fig(
        "rebalance pause when an engine leaves (TERM)",
        "s",
        "below 10 s",
        better="lower",
        id="S2",
    ).values.append(leave_pause)


def _cpu_per_thousand(suite: "Suite", engines: list[str], seconds: float) -> float:
    url = suite.callback(suite.nowaiter_flow)
    pids = [suite.s.processes[name].pid for name in engines]
    counter = OutcomeCounter(
        suite.s.kafka, f"{suite.s.prefix}.activation-outcomes", suite.nowaiter_flow["flowId"]
    )
    before = sum(cpu_seconds(pid) for pid in pids)
    with counter:
        result = loadgen(
            [url], "--mode", "closed", "--concurrency", "64", "--seconds", str(seconds)
        )
        counter.wait_for(result["ok"], timeout=600)
    spent = sum(cpu_seconds(pid) for pid in pids) - before
    return 1000 * spent / counter.count if counter.count else float("nan")
