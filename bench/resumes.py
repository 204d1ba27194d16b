"""End-to-end resumes: latency and throughput with few and many executions waiting,
keyed activations among many."""

import statistics
import time
from typing import TYPE_CHECKING, Any

from harness import http, loadgen, peer, progress
from measures import percentile, profiled
from watchers import CompletionWatcher

if TYPE_CHECKING:
    from suite import Suite


def resume(
    suite: "Suite", background: int, stored: int = 0, grouped: bool = False, tag: str = ""
) -> None:
    """Resume throughput and latency with `background` executions waiting (`grouped`: in
    a triggers group, each callback to either member in turn; `tag`: what the ids of
    another scale end with, `m` for a million waiting)."""
    flow = suite.group_flow if grouped else suite.open_flow
    suite.waiting(background, flow)
    suite.stored(stored)
    # long enough to measure a rate, not the pipeline filling up: with 200, the
    # first batches (a handful of callbacks each) took a third of the burst
    burst = 30 if suite.smoke else 1000
    sample = 10 if suite.smoke else 40
    name = ("groups, " if grouped else "") + f"{background} waiting"
    name += f", {background + stored} stored" if stored else ""
    # ids: R1 (1 waiting), P3 (P3's background), R3 (the large one); g: in groups
    base = "R1" if background == 1 else "P3" if background == suite.p3_background else "R3"
    base += "g" if grouped else ""
    # P13: the time from acceptance to the resume among the large background
    latency = "P13" if base == "R3" else base
    base, latency = base + tag, latency + tag

    def urls_for(targets: list[str]) -> list[str]:
        return [
            suite.callback(flow, f"?execution={e}", trigger=n % 2 if grouped else 0)
            for n, e in enumerate(targets)
        ]

    for _ in range(suite.runs):
        # capacity: a burst of callbacks, each naming its own waiting execution
        targets = suite.waiting(burst, flow)
        urls = urls_for(targets)
        engine = suite.s.processes["engine"]
        with profiled(
            engine.pid,
            min(20.0, 2 + burst / 300),
            suite.profiles,
            f"engine, resume burst, {name}",
        ):
            result, completed = _drive(suite, urls, rate=2000, timeout=600)
        makespan = max(completed.values(), default=0) / 1000 - result["first_sent"]
        capacity = len(completed) / makespan if makespan > 0 else float("nan")
        figure = suite.fig(
            f"resume throughput, {name}",
            "resumes/s",
            "at least 50% of the raw claim loop",
            id=base,
        )
        figure.values.append(capacity)
        claim = peer(
            "claim",
            "--mongodb",
            suite.s.mongodb,
            "--database",
            f"{suite.s.prefix}_peer",
            "--count",
            str(burst),
            "--background",
            str(background + stored),
        )
        figure.peer.append(claim["throughput"])
        # latency: a steady stream at half that capacity
        rate = max(0.2, 0.5 * capacity)
        targets = suite.waiting(sample, flow)
        urls = urls_for(targets)
        result, completed = _drive(suite, urls, rate=rate, timeout=120 + 4 * sample / rate)
        latencies = [
            completed[targets[i]] - sent * 1000
            for sent, i in result["sent"]
            if targets[i] in completed
        ]
        suite.fig(
            f"resume latency p99 at 50% load, {name}",
            "ms",
            "the largest figure below 1.5x the 1-waiting one",
            better="lower",
            id=f"{latency}.p99",
        ).values.append(percentile(latencies, 0.99))
        p50 = percentile(latencies, 0.50)
        suite.fig(
            f"resume latency p50 at 50% load, {name}",
            "ms",
            better="lower",
            id=latency if latency.startswith("P13") else f"{latency}.p50",
        ).values.append(p50)
        suite.resume_p50.setdefault(name, []).append(p50)


def resume_growth(
    suite: "Suite", small: str, large: str, id: str = "P4", goal: str = "at most 1.5x"
) -> None:
    """P4 (P4g: in groups; G4: groups against single waits): the resume time of the
    `large` runs against the `small` ones, from `resume` runs."""
    figure = suite.fig(
        f"resume time p50, {large} (peer: {small})", "ms", goal, better="lower", id=id
    )
    figure.values += suite.resume_p50.get(large, [])
    figure.peer += suite.resume_p50.get(small, [])


def keyed(
    suite: "Suite",
    small: int,
    large: int,
    grouped: bool = False,
    tag: str = "",
    among_small: list[float] | None = None,
) -> dict[int, list[float]]:
    """P7 (P7g: in groups; `tag` as for `resume`): one keyed `all` activation among
    `large` waiting against among `small` (`among_small`: those times, measured before
    more were made waiting); the times, by how many waited."""
    flow = suite.keyed_group_flow if grouped else suite.keyed_flow
    sample = 8 if suite.smoke else 30
    times: dict[int, list[float]] = {}
    if among_small is not None:
        times[small] = list(among_small)
    for background in (small, large):
        if background in times:
            continue
        have = suite.keyed_waiting.get(flow["flowId"], 0)
        if background > have:
            suite.waiting(background - have, flow)
            suite.keyed_waiting[flow["flowId"]] = have = background
        for _ in range(suite.runs):
            targets = suite.waiting(sample, flow)
            suite.keyed_waiting[flow["flowId"]] = have = have + sample
            times.setdefault(background, []).append(_keyed_median(suite, flow, targets))
    kind = "keyed group member activation" if grouped else "keyed all activation"
    figure = suite.fig(
        f"{kind}, {large} waiting (peer: {small} waiting)",
        "ms",
        "at most 3x the time among 100",
        better="lower",
        id=("P7g" if grouped else "P7") + tag,
    )
    figure.values += times[large]
    figure.peer += times[small]
    return times


def grouped_against_single(
    suite: "Suite", large: int, single: dict[int, list[float]], grouped: dict[int, list[float]]
) -> None:
    """G7: a keyed activation among `large` waiting in groups against as many single waits."""
    figure = suite.fig(
        f"keyed activation, {large} waiting in groups (peer: {large} single waits)",
        "ms",
        "at most 1.25x",
        better="lower",
        id="G7",
    )
    figure.values += grouped[large]
    figure.peer += single[large]


def _drive(
    suite: "Suite", urls: list[str], rate: float, timeout: float
) -> tuple[dict[str, Any], dict[str, int]]:
    """Send one callback per URL at `rate`; collect when each execution completed (ms)."""
    watcher = CompletionWatcher(suite.s.kafka, f"{suite.s.prefix}.execution-events")
    with watcher:
        result = loadgen(
            urls,
            "--mode",
            "open",
            "--rate",
            str(rate),
            "--seconds",
            str(len(urls) / rate),
            "--connections",
            "32",
            "--record-sends",
        )
        expected = {urls[i].split("execution=")[1] for _, i in result["sent"]}
        completed = watcher.wait_for(expected, timeout=timeout)
    if len(completed) < len(expected):
        progress(f"only {len(completed)} of {len(expected)} executions completed")
        suite.notes.append(
            f"{len(expected) - len(completed)} of {len(expected)} resumes "
            f"did not complete within {timeout:.0f} s"
        )
    result["first_sent"] = min((t for t, _ in result["sent"]), default=time.time())
    return result, completed


def _keyed_median(suite: "Suite", flow: dict[str, Any], targets: list[str]) -> float:
    """Median time from a callback to its execution's completion, one at a time (to a
    group's members in turn)."""
    urls = [suite.callback(flow, trigger=n) for n in range(len(flow["triggers"]))]
    watcher = CompletionWatcher(suite.s.kafka, f"{suite.s.prefix}.execution-events")
    spent = []
    with watcher:
        for n, target in enumerate(targets):
            began = time.time()
            http("POST", urls[n % len(urls)], {"ref": target, "amount": 5})
            done = watcher.wait_for({target}, timeout=60)
            if target in done:
                spent.append(done[target] - began * 1000)
    if len(spent) < len(targets):
        suite.notes.append(f"{len(targets) - len(spent)} keyed activations did not complete")
    return statistics.median(spent) if spent else float("nan")
