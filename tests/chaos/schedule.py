"""Faults on a seeded schedule: kill -9 anything, any time, under steady load; then check
the history.

    .venv/bin/python -m tests.chaos.schedule [--events 20 --minutes 5 --seed N]  (make chaos)

The suite's own three-broker Kafka and MongoDB-wire server, two engines, the gateway and
auth. A seed draws the schedule: `events` kill -9s spread over `minutes`, each of one of
the eight processes (three brokers, the store, two engines, gateway, auth), each down for
1 to 8 s and then started again; a process's next event waits until it is back. The
load makes every callback (each execution's, each member's of a group) with its
Idempotency-Key, retried until acknowledged, spread over the whole schedule.

Afterwards, a history check in the manner of Jepsen's, from what the clients saw and the
engine's own records:
- every acknowledged callback was decided exactly once: its activation id has one
  outcome, ACTIVATED or DUPLICATE (an earlier attempt of the same key got in first);
- every resume was caused by exactly one activation: each execution has one `resumed`
  (and a group's one `arrived` per member), naming an activation whose outcome is
  ACTIVATED for that execution, and no other activation of the same call is ACTIVATED.
Writes the report (the schedule, the checks, a timeline plot of the faults against
acknowledged calls, refusals and resumes) to `.local/chaos/schedule/`; prints the seed
first, so a failing run can be replayed with `--seed`.
"""

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .chaos import (
    ROOT,
    Infra,
    Load,
    Prepared,
    Services,
    prepare,
    product,
    settle,
)

TARGETS = ("kafka-1", "kafka-2", "kafka-3", "store", "engine", "engine2", "gateway", "auth")
REPORT = ROOT / ".local" / "chaos" / "schedule"


@dataclass(frozen=True)
class Event:
    at: float  # seconds after the schedule starts
    target: str
    down: float  # seconds before it is started again


def draw(seed: int, events: int, seconds: float) -> list[Event]:
    """The schedule a seed makes: the same seed, the same schedule."""
    rng = random.Random(seed)
    return sorted(
        (
            Event(
                round(rng.uniform(0, seconds), 2), rng.choice(TARGETS), round(rng.uniform(1, 8), 1)
            )
            for _ in range(events)
        ),
        key=lambda e: e.at,
    )


@dataclass
class Struck:
    event: Event
    killed: float = 0.0
    restarted: float = 0.0
    back: float = 0.0  # ready again
    error: str | None = None


@dataclass
class Executor:
    """Carries the schedule out: each event in a thread of its own, one at a time per
    process (the next waits until the process is back)."""

    infra: Infra
    services: Services
    done: list[Struck] = field(default_factory=list)
    locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {t: threading.Lock() for t in TARGETS}
    )

    def actions(self, target: str) -> tuple[Callable[[], None], Callable[[], None]]:
        if target.startswith("kafka-"):
            node = target.removeprefix("kafka-")
            return (
                lambda: self.infra.kill("kafka", int(node)),
                lambda: self.infra.script("kafka", "start", node),
            )
        if target == "store":
            return (
                lambda: self.infra.kill("ferretdb"),
                lambda: self.infra.script("ferretdb", "start"),
            )
        return (lambda: self.services.kill(target), lambda: self._start(target))

    def _start(self, name: str) -> None:
        deadline = time.monotonic() + 300
        while True:  # a service may not get ready while the brokers have no quorum
            try:
                self.services.start(name, timeout=60)
                return
            except RuntimeError:
                with contextlib.suppress(KeyError):
                    self.services.kill(name)
                if time.monotonic() > deadline:
                    raise

    def strike(self, event: Event) -> None:
        struck = Struck(event)
        kill, start = self.actions(event.target)
        with self.locks[event.target]:
            try:
                struck.killed = time.time()
                kill()
                time.sleep(event.down)
                struck.restarted = time.time()
                start()
                struck.back = time.time()
            except Exception as exc:
                struck.error = repr(exc)
        self.done.append(struck)

    def run(self, schedule: list[Event]) -> None:
        began = time.monotonic()
        threads = []
        for event in schedule:
            time.sleep(max(0.0, event.at - (time.monotonic() - began)))
            thread = threading.Thread(target=self.strike, args=(event,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=600)


def outcomes(services: Services, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The engine's outcome of each activation id (those it never decided are missing),
    waiting up to two minutes for the undecided."""
    engine = services.url("engine")
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 120
    with httpx.Client(timeout=30, headers={"X-Admin-Key": services.admin_key}) as http:
        while True:
            for activation_id in sorted(ids - found.keys()):
                response = http.get(f"{engine}/api/automation/activations/{activation_id}")
                if response.status_code == 200 and response.json()["outcome"] != "RESUMING":
                    found[activation_id] = response.json()
            if found.keys() >= ids or time.monotonic() > deadline:
                return found
            time.sleep(1)


def history_check(
    prepared: Prepared, load: Load, ended: dict[str, dict[str, Any]], decided: dict[str, Any]
) -> dict[str, list[str]]:
    acknowledged = [a for a in load.answers if a.status == 200 and a.activation_id]
    undecided = sorted({a.activation_id or "" for a in acknowledged} - decided.keys())
    wrongly = sorted(
        f"{a.activation_id}: {decided[a.activation_id]['outcome']}"
        for a in acknowledged
        if a.activation_id in decided
        and decided[a.activation_id]["outcome"] not in ("ACTIVATED", "DUPLICATE")
    )
    waited = {c.execution_id for c in prepared.calls}
    not_once, uncaused, caused_twice = [], [], []
    for execution_id in sorted(waited):
        history = ended.get(execution_id, {}).get("history", [])
        resumes = [h for h in history if h["event"] == "resumed"]
        if len(resumes) != 1:
            not_once.append(f"{execution_id}: {len(resumes)} resumes")
            continue
        # a group's first member arrives, its last resumes it: each by its activation
        causes = [h for h in history if h["event"] == "arrived"] + resumes
        for cause in causes:
            outcome = decided.get(cause.get("activationId", ""))
            if (
                outcome is None
                or outcome["outcome"] != "ACTIVATED"
                or (execution_id not in outcome["executionIds"])
            ):
                uncaused.append(f"{execution_id}: {cause.get('activationId')}")
        # no other activation the clients made for this execution resumed it too
        activated = {
            a.activation_id or ""
            for a in acknowledged
            if a.execution_id == execution_id
            and decided.get(a.activation_id or "", {}).get("outcome") == "ACTIVATED"
        }
        if len(activated - {c.get("activationId") for c in causes}):
            caused_twice.append(f"{execution_id}: {sorted(activated)}")
    return {
        "acknowledged_never_decided": undecided,
        "acknowledged_decided_otherwise": wrongly,
        "not_resumed_exactly_once": not_once,
        "resumes_without_their_activation": uncaused,
        "executions_activated_twice": caused_twice,
        "lost_acknowledged": sorted(load.executions - set(ended)),
    }


def plot(path: Path, started: float, done: list[Struck], load: Load, ended: dict[str, Any]) -> None:
    """The timeline: each process's time down against acknowledged calls, refusals (and
    calls without an answer) and resumes, per second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (faults, traffic) = plt.subplots(
        2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [2, 3]}
    )
    for row, target in enumerate(TARGETS):
        for s in (s for s in done if s.event.target == target):
            faults.barh(row, s.restarted - s.killed, left=s.killed - started, color="tab:red")
            if s.back:
                faults.barh(
                    row, s.back - s.restarted, left=s.restarted - started, color="tab:orange"
                )
    faults.set_yticks(range(len(TARGETS)), TARGETS)
    faults.set_title("down (red: killed, orange: starting)")
    end = max([a.at for a in load.answers] + [started + 1]) - started
    seconds = range(int(end) + 1)

    def per_second(times: list[float]) -> list[int]:
        counts = [0] * len(seconds)
        for t in times:
            if 0 <= t - started < len(counts):
                counts[int(t - started)] += 1
        return counts

    traffic.plot(
        seconds, per_second([a.at for a in load.answers if a.status == 200]), label="acknowledged"
    )
    traffic.plot(
        seconds,
        per_second([a.at for a in load.answers if a.status != 200]),
        label="refused or no answer",
    )
    resumed = [
        h["at"] / 1000 for e in ended.values() for h in e["history"] if h["event"] == "resumed"
    ]
    traffic.plot(seconds, per_second(resumed), label="resumed")
    traffic.set_xlabel("seconds")
    traffic.set_ylabel("per second")
    traffic.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def run(
    events: int, minutes: float, count: int, concurrency: int, seed: int | None = None
) -> dict[str, Any]:
    seed = secrets.randbelow(2**31) if seed is None else seed
    print(f"scheduled faults, seed {seed} (replay: --seed {seed})", file=sys.stderr, flush=True)
    schedule = draw(seed, events, minutes * 60)
    started = time.time()
    REPORT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="hookflow-schedule-") as tmp,
        product(Path(tmp), brokers=3, publish_timeout=5.0) as (infra, services),
    ):
        services.start("engine2")
        prepared = prepare(services, count, seed)
        load = Load(prepared.calls, concurrency, rate=len(prepared.calls) / (minutes * 60))
        driver = threading.Thread(target=lambda: asyncio.run(load.run()), daemon=True)
        driver.start()
        executor = Executor(infra, services)
        begun = time.time()
        executor.run(schedule)
        for name in ("engine", "engine2", "gateway", "auth"):  # each back, whatever happened
            if name not in services.processes:
                executor._start(name)
        load.faults_over.set()
        driver.join(timeout=900)
        ended = settle(services, prepared)
        ids = {a.activation_id for a in load.answers if a.status == 200 and a.activation_id}
        ids |= {
            h.get("activationId", "")
            for e in ended.values()
            for h in e["history"]
            if h["event"] in ("resumed", "arrived")
        }
        decided = outcomes(services, ids - {""})
        shutil.rmtree(REPORT / "logs", ignore_errors=True)
        shutil.copytree(Path(tmp) / "logs", REPORT / "logs")  # the services' own logs
    checked = history_check(prepared, load, ended, decided)
    plot(REPORT / "timeline.png", begun, executor.done, load, ended)
    result = {
        "seed": seed,
        "events": [
            {
                "at": round(s.killed - begun, 1),
                "target": s.event.target,
                "down_seconds": round(s.restarted - s.killed, 1),
                "back_after_seconds": round(s.back - s.killed, 1) if s.back else None,
                "error": s.error,
            }
            for s in sorted(executor.done, key=lambda s: s.killed)
        ],
        "executions": count,
        "calls": len(prepared.calls),
        "acknowledged": len(load.acknowledged),
        "requests": len(load.answers),
        "answers": {
            str(s): sum(1 for a in load.answers if a.status == s)
            for s in sorted({a.status for a in load.answers})
        },
        "activations_checked": len(decided),
        "completed": len(ended),
        **checked,
        "report": str(REPORT),
        "seconds": round(time.time() - started, 1),
    }
    result["passed"] = (
        not any(checked.values())
        and len(ended) == count
        and len(load.acknowledged) == len(prepared.calls)
        and not any(s.error for s in executor.done)
    )
    (REPORT / "result.json").write_text(json.dumps(result, indent=2))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--executions", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, help="replay a run: its schedule and its calls")
    args = parser.parse_args()
    result = run(args.events, args.minutes, args.executions, args.concurrency, args.seed)
    print(json.dumps(result, indent=2))
    if not result["passed"]:
        print(f"FAILED; replay with --seed {result['seed']}", file=sys.stderr)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
