"""The benchmark suite: `make bench` (full) or `make bench-smoke` (a few seconds each).

Starts the services as processes against the Kafka and MongoDB-wire server named by
KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL, runs every figure several times with its raw
peer interleaved, and writes bench/results/latest.json, bench/results/report.md and
PNG plots. The load generator and the peers are separate processes. Nothing here
asserts a time: the report states each goal and whether it was met.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
OUT = ROOT / "bench" / "results"


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket is held until all are bound (closed one
    by one, the system may hand the same port out twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def free_port() -> int:
    (port,) = free_ports(1)
    return port


ADMIN_KEY = "bench-admin-key"


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    """A call with the admin key (the management API needs it; callbacks ignore it)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", "x-admin-key": ADMIN_KEY, **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:  # loopback
        text = response.read()
        return json.loads(text) if text else None


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready:\n{log.read_text()[-2000:]}")


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Services:
    """The product's processes for one benchmark run."""

    prefix: str
    kafka: str
    mongodb: str
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_key: str = ADMIN_KEY

    def env(self) -> dict[str, str]:
        p = self.ports
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "MONGODB_URL": self.mongodb,
            "HOOKFLOW_ENGINE_PORT": str(p["engine"]),
            "HOOKFLOW_AUTH_PORT": str(p["auth"]),
            "HOOKFLOW_GATEWAY_PORT": str(p["gateway"]),
            "HOOKFLOW_ENGINE_TOPIC_PREFIX": self.prefix,
            "HOOKFLOW_AUTH_TOPIC_PREFIX": self.prefix,
            "HOOKFLOW_GATEWAY_TOPIC_PREFIX": self.prefix,
            "HOOKFLOW_ENGINE_CONSUMER_GROUP": self.prefix,
            "HOOKFLOW_ENGINE_DATABASE": f"{self.prefix}_engine",
            "HOOKFLOW_AUTH_DATABASE": f"{self.prefix}_auth",
            "HOOKFLOW_ENGINE_PUBLIC_URL": f"http://127.0.0.1:{p['gateway']}",
            "HOOKFLOW_ENGINE_AUTH_URL": f"http://127.0.0.1:{p['auth']}",
            "HOOKFLOW_GATEWAY_AUTH_URL": f"http://127.0.0.1:{p['auth']}",
            "HOOKFLOW_AUTH_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_ENGINE_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_GATEWAY_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_ENGINE_ACTIVATION_KEY": "bench-activation-key",
            "HOOKFLOW_GATEWAY_ACTIVATION_KEY": "bench-activation-key",
            "HOOKFLOW_INTERNAL_KEY": "bench-internal-key",
            "HOOKFLOW_ENGINE_LOG_LEVEL": "WARNING",
            "HOOKFLOW_AUTH_LOG_LEVEL": "WARNING",
            "HOOKFLOW_GATEWAY_LOG_LEVEL": "WARNING",
            "HOOKFLOW_AUTH_LOGIN_LIMIT_PER_ADDRESS": "100000",
            "HOOKFLOW_AUTH_REGISTER_LIMIT_PER_ADDRESS": "100000",
        }

    def start(
        self, name: str, command: list[str], ready: str, env: dict[str, str] | None = None
    ) -> None:
        self.ports.setdefault(name, free_port())
        log = self.logs / f"{name}.log"
        self.processes[name] = subprocess.Popen(  # our own commands
            command,
            env={**self.env(), **(env or {})},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_ready(f"http://127.0.0.1:{self.ports[name]}{ready}", self.processes[name], log)

    def start_second_engine(self) -> None:
        """Another engine process in the same consumer group, on a port of its own."""
        port = self.ports.setdefault("engine2", free_port())
        self.start("engine2", [PY, "-m", "engine"], "/readyz", {"HOOKFLOW_ENGINE_PORT": str(port)})

    def start_product(self) -> None:
        for name, port in zip(("engine", "auth", "gateway"), free_ports(3), strict=True):
            self.ports.setdefault(name, port)
        for name in ("engine", "auth", "gateway"):  # the engine first: it creates the topics
            self.start(name, [PY, "-m", name], "/readyz")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


def tool(args: list[str]) -> dict[str, Any]:
    """Run a load generator or peer process and return the JSON it prints."""
    done = subprocess.run([PY, *args], capture_output=True, check=True, timeout=1800)
    return dict(json.loads(done.stdout.decode().strip().splitlines()[-1]))


def loadgen(urls: list[str], *extra: str) -> dict[str, Any]:
    args = [str(ROOT / "bench" / "loadgen.py")]
    for url in urls:
        args += ["--url", url]
    return tool(args + list(extra))


def peer(*extra: str) -> dict[str, Any]:
    return tool([str(ROOT / "bench" / "peers.py"), *extra])


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
        }


class Suite:
    def __init__(self, services: Services, runs: int, seconds: float, smoke: bool) -> None:
        self.s = services
        self.runs = runs
        self.seconds = seconds
        self.smoke = smoke
        self.figures: dict[str, Figure] = {}
        self.notes: list[str] = []
        self.profiles: dict[str, Any] = {}
        self.resume_p50: dict[str, list[float]] = {}
        self.lag_series: list[tuple[float, float]] = []
        self.keyed_waiting = 0
        self.p3_background = 100 if smoke else 1000

    def fig(
        self,
        name: str,
        unit: str,
        goal: str = "",
        better: str = "higher",
        id: str | None = None,  # the figure's id in latest.json
    ) -> Figure:
        return self.figures.setdefault(name, Figure(name, unit, goal=goal, better=better, id=id))

    # -- setup ---------------------------------------------------------------------------

    def deploy(self) -> None:
        engine = self.s.url("engine")
        self.open_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-open",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {"name": "Wait", "type": "external_callback", "next": "Done"},
                    {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
                ],
            },
        )
        self.pay_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-pay",
                "blocks": [
                    {
                        "name": "Wait",
                        "type": "external_callback",
                        "authenticationType": "USER",
                        "requiredRoles": ["PaymentGateway"],
                        "next": "Done",
                    },
                    {"name": "Done", "type": "end"},
                ],
            },
        )
        self.keyed_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-keyed",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {
                        "name": "Wait",
                        "type": "external_callback",
                        "condition": "data.ref == input.ref && data.amount > 0",
                        "next": "Done",
                    },
                    {"name": "Done", "type": "assign", "assign": {"paid": "data.amount"}},
                ],
            },
        )
        self.nowaiter_flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-nowaiter",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {"name": "Wait", "type": "external_callback"},
                ],
            },
        )
        auth = self.s.url("auth")
        email = f"psp-{uuid.uuid4().hex[:6]}@bench.example"
        user = http(
            "POST", f"{auth}/api/users/register", {"email": email, "password": "bench password"}
        )
        http(
            "PUT",
            f"{auth}/api/users/{user['objectId']}/roles",
            {"roles": ["PaymentGateway"]},
            {"x-admin-key": self.s.admin_key},
        )
        self.token = http(
            "POST", f"{auth}/api/users/login", {"login": email, "password": "bench password"}
        )["user-token"]
        gateway = self.s.url("gateway")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the gateway learns the flows from the registry
            try:
                http("POST", f"{gateway}/api/automation/flow/{self.pay_flow['flowId']}/execute", {})
                break
            except OSError:
                time.sleep(0.2)

    def callback(self, flow: dict[str, Any], query: str = "") -> str:
        return (
            flow["triggers"][0]["callbackUrl"].replace(
                flow["triggers"][0]["callbackUrl"].split("/api/")[0], self.s.url("gateway")
            )
            + query
        )

    # -- timers ------------------------------------------------------------------------------

    def timers(self, count: int, spread_seconds: float) -> None:
        """P11: `count` waits whose timeouts fall due over `spread_seconds`: how late each
        fires (from its deadline to the `timedOut` entry the engine writes)."""
        engine = self.s.url("engine")
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
        database = f"{self.s.prefix}_engine"
        ids = asyncio.run(_create_timed(self.s.mongodb, database, flow["flowId"], due))
        time.sleep(max(0.0, due[-1] / 1000 - time.time()) + 5)
        lateness = asyncio.run(
            _lateness(self.s.mongodb, database, dict(zip(ids, due, strict=True)))
        )
        fired = [late for late in lateness if late is not None]
        self.fig("timeouts fired, of those due", "ratio", "all", id=None).values.append(
            len(fired) / count
        )
        if fired:
            self.fig(
                f"timeout lateness, max ({count} due within {spread_seconds:.0f} s)",
                "s",
                "below 2 s",
                better="lower",
                id="P11",
            ).values.append(max(fired) / 1000)
            self.fig(
                f"timeout lateness, p99 ({count} due within {spread_seconds:.0f} s)",
                "s",
                better="lower",
            ).values.append(_percentile(fired, 0.99) / 1000)

    # -- 2. end-to-end resume ------------------------------------------------------------

    def waiting(self, count: int, flow: dict[str, Any] | None = None) -> list[str]:
        """Create `count` executions waiting at a flow's trigger, in bulk (input.ref = id)."""
        flow = flow or self.open_flow
        return asyncio.run(
            _create_executions(
                self.s.mongodb, f"{self.s.prefix}_engine", flow["flowId"], count, waiting=True
            )
        )

    def stored(self, count: int) -> None:
        """Add `count` completed executions: documents a resume must not be slowed by."""
        asyncio.run(
            _create_executions(
                self.s.mongodb,
                f"{self.s.prefix}_engine",
                self.open_flow["flowId"],
                count,
                waiting=False,
            )
        )

    def resume(self, background: int, stored: int = 0) -> None:
        self.waiting(background)
        self.stored(stored)
        # long enough to measure a rate, not the pipeline filling up: with 200, the
        # first batches (a handful of callbacks each) took a third of the burst
        burst = 30 if self.smoke else 1000
        sample = 10 if self.smoke else 40
        name = f"{background} waiting" + (f", {background + stored} stored" if stored else "")
        for _ in range(self.runs):
            # capacity: a burst of callbacks, each naming its own waiting execution
            targets = self.waiting(burst)
            urls = [self.callback(self.open_flow, f"?execution={e}") for e in targets]
            engine = self.s.processes["engine"]
            with profiled(
                engine.pid,
                min(20.0, 2 + burst / 300),
                self.profiles,
                f"engine, resume burst, {name}",
            ):
                result, completed = self._drive(urls, rate=2000, timeout=600)
            makespan = max(completed.values(), default=0) / 1000 - result["first_sent"]
            capacity = len(completed) / makespan if makespan > 0 else float("nan")
            figure = self.fig(
                f"resume throughput, {name}",
                "resumes/s",
                "at least 50% of the raw claim loop",
                id="P3" if background == self.p3_background else None,
            )
            figure.values.append(capacity)
            claim = peer(
                "claim",
                "--mongodb",
                self.s.mongodb,
                "--database",
                f"{self.s.prefix}_peer",
                "--count",
                str(burst),
                "--background",
                str(background + stored),
            )
            figure.peer.append(claim["throughput"])
            # latency: a steady stream at half that capacity
            rate = max(0.2, 0.5 * capacity)
            targets = self.waiting(sample)
            urls = [self.callback(self.open_flow, f"?execution={e}") for e in targets]
            result, completed = self._drive(urls, rate=rate, timeout=120 + 4 * sample / rate)
            latencies = [
                completed[targets[i]] - sent * 1000
                for sent, i in result["sent"]
                if targets[i] in completed
            ]
            self.fig(
                f"resume latency p99 at 50% load, {name}",
                "ms",
                "the largest figure below 1.5x the 1-waiting one",
                better="lower",
            ).values.append(_percentile(latencies, 0.99))
            p50 = _percentile(latencies, 0.50)
            self.fig(f"resume latency p50 at 50% load, {name}", "ms", better="lower").values.append(
                p50
            )
            self.resume_p50.setdefault(name, []).append(p50)

    def resume_growth(self, small: str, large: str) -> None:
        """P4: the resume time with the most stored against the least, from `resume` runs."""
        figure = self.fig(
            f"resume time p50, {large} (peer: {small})",
            "ms",
            "at most 1.5x the 1-waiting time",
            better="lower",
            id="P4",
        )
        figure.values += self.resume_p50.get(large, [])
        figure.peer += self.resume_p50.get(small, [])

    def keyed(self, small: int, large: int) -> None:
        """P7: one keyed `all` activation among `large` waiting against among `small`."""
        sample = 8 if self.smoke else 30
        times: dict[int, list[float]] = {}
        for background in (small, large):
            have = self.keyed_waiting
            if background > have:
                self.waiting(background - have, self.keyed_flow)
                self.keyed_waiting = background
            for _ in range(self.runs):
                targets = self.waiting(sample, self.keyed_flow)
                self.keyed_waiting += sample
                times.setdefault(background, []).append(self._keyed_median(targets))
        figure = self.fig(
            f"keyed all activation, {large} waiting (peer: {small} waiting)",
            "ms",
            "at most 3x the time among 100",
            better="lower",
            id="P7",
        )
        figure.values += times[large]
        figure.peer += times[small]

    def burst(self) -> None:
        """P8: callbacks nobody waits for, as fast as they come: decided/s over accepted/s."""
        url = self.callback(self.nowaiter_flow)
        seconds = 1.0 if self.smoke else 5.0
        for _ in range(self.runs):
            counter = _OutcomeCounter(
                self.s.kafka,
                f"{self.s.prefix}.activation-outcomes",
                self.nowaiter_flow["flowId"],
            )
            with counter:
                result = loadgen(
                    [url], "--mode", "closed", "--concurrency", "64", "--seconds", str(seconds)
                )
                last = counter.wait_for(result["ok"], timeout=900)
            span = last / 1000 - result["started_at"] if last else float("nan")
            if counter.count < result["ok"]:
                self.notes.append(
                    f"burst: {result['ok'] - counter.count} of {result['ok']} accepted "
                    "callbacks had no outcome within 900 s"
                )
            figure = self.fig(
                "burst decisions (peer: the gateway's acceptances)",
                "callbacks/s",
                "at least 50% of the acceptance rate",
                id="P8",
            )
            figure.values.append(counter.count / span if span > 0 else float("nan"))
            figure.peer.append(result["throughput"])

    def sustained(self, rate: float) -> None:
        """60 s of callbacks nobody waits for at `rate`: the engine's lag over time."""
        seconds = 3.0 if self.smoke else 60.0
        url = self.callback(self.nowaiter_flow)
        sampler = _LagSampler(self.s.url("engine"), f"{self.s.prefix}.activations")
        with sampler:
            result = loadgen(
                [url], "--mode", "open", "--rate", str(rate), "--seconds", str(seconds)
            )
            drained_at = sampler.wait_drained(timeout=120)
        ended = result["started_at"] + result["seconds"]
        self.lag_series = [(t - result["started_at"], lag) for t, lag in sampler.samples]
        peak = max((lag for _, lag in sampler.samples), default=0)
        drain = max(0.0, drained_at - ended) if drained_at else float("nan")
        figure = self.fig(
            f"consumer lag, peak during {seconds:.0f} s at 50% of the gateway's max "
            "(peer: 2 s of arrivals)",
            "records",
            "bounded: below 2 s of arrivals",
            better="lower",
        )
        figure.values.append(peak)
        figure.peer.append(2 * rate)
        self.fig(
            "consumer lag, time to drain after the load",
            "s",
            "below 10 s",
            better="lower",
        ).values.append(drain)

    def scaling(self) -> None:
        """P9: CPU per 1,000 decisions with 1 and 2 engines; rebalance pauses on join/leave."""
        seconds = 1.0 if self.smoke else 5.0
        one = self._cpu_per_thousand(["engine"], seconds)
        probe = _DecisionGaps(self, rate=20.0)
        with probe:
            joined = time.time()
            self.s.start_second_engine()
            join_pause = probe.longest_gap_after(joined, settle=15.0 if not self.smoke else 6.0)
        two = self._cpu_per_thousand(["engine", "engine2"], seconds)
        with probe:
            left = time.time()
            self.s.stop("engine2")
            leave_pause = probe.longest_gap_after(left, settle=15.0 if not self.smoke else 6.0)
        figure = self.fig(
            "CPU seconds per 1,000 decisions, 2 engines (peer: 1 engine)",
            "s",
            "within 10% of one engine",
            better="lower",
            id="P9",
        )
        figure.values.append(two)
        figure.peer.append(one)
        self.fig(
            "rebalance pause when an engine joins", "s", "below 10 s", better="lower"
        ).values.append(join_pause)
        self.fig(
            "rebalance pause when an engine leaves (TERM)", "s", "below 10 s", better="lower"
        ).values.append(leave_pause)

    def _cpu_per_thousand(self, engines: list[str], seconds: float) -> float:
        url = self.callback(self.nowaiter_flow)
        pids = [self.s.processes[name].pid for name in engines]
        counter = _OutcomeCounter(
            self.s.kafka, f"{self.s.prefix}.activation-outcomes", self.nowaiter_flow["flowId"]
        )
        before = sum(cpu_seconds(pid) for pid in pids)
        with counter:
            result = loadgen(
                [url], "--mode", "closed", "--concurrency", "64", "--seconds", str(seconds)
            )
            counter.wait_for(result["ok"], timeout=600)
        spent = sum(cpu_seconds(pid) for pid in pids) - before
        return 1000 * spent / counter.count if counter.count else float("nan")

    def _keyed_median(self, targets: list[str]) -> float:
        """Median time from a callback to its execution's completion, one at a time."""
        url = self.callback(self.keyed_flow)
        watcher = _CompletionWatcher(self.s.kafka, f"{self.s.prefix}.execution-events")
        spent = []
        with watcher:
            for target in targets:
                began = time.time()
                http("POST", url, {"ref": target, "amount": 5})
                done = watcher.wait_for({target}, timeout=60)
                if target in done:
                    spent.append(done[target] - began * 1000)
        if len(spent) < len(targets):
            self.notes.append(f"{len(targets) - len(spent)} keyed activations did not complete")
        return statistics.median(spent) if spent else float("nan")

    def _drive(
        self, urls: list[str], rate: float, timeout: float
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """Send one callback per URL at `rate`; collect when each execution completed (ms)."""
        watcher = _CompletionWatcher(self.s.kafka, f"{self.s.prefix}.execution-events")
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
            self.notes.append(
                f"{len(expected) - len(completed)} of {len(expected)} resumes "
                f"did not complete within {timeout:.0f} s"
            )
        result["first_sent"] = min((t for t, _ in result["sent"]), default=time.time())
        return result, completed

    # -- 3. consumer overhead ------------------------------------------------------------

    def responsiveness(self) -> None:
        """P10: the engine's /healthz latency while guarded expressions run, against the
        lateness of an event loop that evaluates the same condition in place (as the
        engine did before expressions had a budget)."""
        engine, gateway = self.s.url("engine"), self.s.url("gateway")
        items = list(range(300 if self.smoke else 1000))  # 2 s, or a minute, in place
        flow = http(
            "POST",
            f"{engine}/api/automation/flows",
            {
                "name": "bench-heavy",
                "blocks": [
                    {"name": "Go", "type": "start", "next": "Wait"},
                    {"name": "Wait", "type": "external_callback", "condition": HEAVY},
                ],
            },
        )
        for _ in range(2):
            http("POST", f"{gateway}/api/automation/flow/{flow['flowId']}/execute", {})
        callback = flow["triggers"][0]["callbackUrl"]
        for _ in range(self.runs):
            latencies: list[float] = []
            stop = time.monotonic() + max(3.0, self.seconds)
            sent = 0
            while time.monotonic() < stop:
                if sent < 3:  # each is cut off after 1 s for each waiting execution
                    http("POST", callback, {"items": items})
                    sent += 1
                started = time.perf_counter()
                http("GET", f"{engine}/healthz")
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.01)
            self.fig(
                "engine /healthz max latency while guarded expressions run",
                "ms",
                "below 100 ms",
                better="lower",
                id="P10",
            ).values.append(max(latencies))
            self.fig("engine /healthz max latency while guarded expressions run", "ms").peer.append(
                _in_place_stall(items[:300])
            )

    def consumers(self) -> None:
        count = 2000 if self.smoke else 50_000
        for run in range(self.runs):
            topic = f"{self.s.prefix}.peer-consume-{run}"
            peer("fill", "--bootstrap", self.s.kafka, "--topic", topic, "--count", str(count))
            raw = peer(
                "consume-raw", "--bootstrap", self.s.kafka, "--topic", topic, "--count", str(count)
            )
            fast = peer(
                "consume-faststream",
                "--bootstrap",
                self.s.kafka,
                "--topic",
                topic,
                "--count",
                str(count),
            )
            figure = self.fig(
                "batch consumer throughput (FastStream vs raw aiokafka getmany)",
                "messages/s",
                "at least 80% of the raw consumer",
                id="P5",
            )
            figure.values.append(fast["throughput"])
            figure.peer.append(raw["throughput"])

    # -- 1. gateway ingestion, 4. memory -------------------------------------------------

    def ingestion(self) -> None:
        peer_port, kafka_peer_port, guarded_port, h11_port = free_ports(4)
        topic = f"{self.s.prefix}.peer-produce"
        log = self.s.logs / "http-peer.log"
        peers = [
            subprocess.Popen(
                [PY, str(ROOT / "bench" / "peers.py"), *args],
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
            )
            for args in (
                ["http", "--port", str(peer_port)],
                [
                    "http-kafka",
                    "--port",
                    str(kafka_peer_port),
                    "--bootstrap",
                    self.s.kafka,
                    "--topic",
                    topic,
                ],
                # the same bare route under the services' HTTP limits, and under h11
                ["http", "--port", str(guarded_port), "--server", "guarded"],
                ["http", "--port", str(h11_port), "--server", "h11"],
            )
        ]
        for port, process in zip(
            (peer_port, kafka_peer_port, guarded_port, h11_port), peers, strict=True
        ):
            wait_ready(f"http://127.0.0.1:{port}/healthz", process, log)
        none_url = self.callback(self.open_flow)
        user_url = self.callback(self.pay_flow)
        closed = ["--mode", "closed", "--concurrency", "64", "--seconds", str(self.seconds)]
        try:
            for run in range(self.runs):
                ceiling_http = loadgen([f"http://127.0.0.1:{peer_port}/x"], *closed)
                cpu = cpu_seconds(peers[1].pid)
                route_and_send = loadgen([f"http://127.0.0.1:{kafka_peer_port}/x"], *closed)
                peer_cpu = (cpu_seconds(peers[1].pid) - cpu) / max(1, route_and_send["ok"])
                ceiling_kafka = peer(
                    "produce",
                    "--bootstrap",
                    self.s.kafka,
                    "--topic",
                    topic,
                    "--seconds",
                    str(self.seconds),
                    "--concurrency",
                    "64",
                )
                with profiled(
                    self.s.processes["gateway"].pid,
                    self.seconds,
                    self.profiles,
                    "gateway, NONE trigger at full load",
                ):
                    cpu = cpu_seconds(self.s.processes["gateway"].pid)
                    gw_none = loadgen([none_url], *closed)
                    gw_cpu = (cpu_seconds(self.s.processes["gateway"].pid) - cpu) / max(
                        1, gw_none["ok"]
                    )
                figure = self.fig(
                    "gateway CPU per callback, NONE trigger "
                    "(peer: Starlette route + raw aiokafka send)",
                    "us",
                    better="lower",
                )
                figure.values.append(round(gw_cpu * 1e6, 1))
                figure.peer.append(round(peer_cpu * 1e6, 1))
                gw_user = loadgen([user_url], *closed, "--header", f"user-token: {self.token}")
                for label, result in (
                    ("NONE trigger", gw_none),
                    ("USER trigger, warm cache", gw_user),
                ):
                    figure = self.fig(
                        f"gateway max throughput, {label} "
                        "(peer: Starlette route + raw aiokafka send)",
                        "callbacks/s",
                        "at least 1.0x the peer",
                        id="P1" if label == "NONE trigger" else None,
                    )
                    figure.values.append(result["throughput"])
                    figure.peer.append(route_and_send["throughput"])
                self.fig("HTTP ceiling (bare Starlette)", "requests/s").values.append(
                    ceiling_http["throughput"]
                )
                # the server setup, chosen by these two: the limits must cost nothing
                # measurable (docs/operations.md, "HTTP limits")
                for server, port, goal in (
                    ("the services' guarded httptools", guarded_port, "at least 0.95x the peer"),
                    ("h11", h11_port, ""),
                ):
                    under = loadgen([f"http://127.0.0.1:{port}/x"], *closed)
                    figure = self.fig(
                        f"HTTP ceiling, bare Starlette under {server} "
                        "(peer: the same under plain httptools)",
                        "requests/s",
                        goal,
                    )
                    figure.values.append(under["throughput"])
                    figure.peer.append(ceiling_http["throughput"])
                self.fig("Kafka ceiling (raw aiokafka producer)", "messages/s").values.append(
                    ceiling_kafka["throughput"]
                )
                open_loop = ["--mode", "open", "--seconds", str(self.seconds)]
                open_loop += ["--rate", str(0.7 * gw_none["throughput"])]
                steady = loadgen([none_url], *open_loop)
                # the peer at the same offered rate: how much of the tail is the machine's
                steady_peer = loadgen([f"http://127.0.0.1:{kafka_peer_port}/x"], *open_loop)
                figure = self.fig(
                    "gateway p99 at 70% of its max, NONE trigger "
                    "(peer: Starlette route + raw aiokafka send, same rate)",
                    "ms",
                    "below 50 ms",
                    better="lower",
                    id="P2",
                )
                figure.values.append(steady["p99_ms"])
                figure.peer.append(steady_peer["p99_ms"])
                self.fig(
                    "gateway p50 at 70% of its max, NONE trigger", "ms", better="lower"
                ).values.append(steady["p50_ms"])
                if steady["ok"] < steady["requests"]:
                    self.notes.append(
                        f"run {run}: {steady['requests'] - steady['ok']} "
                        f"requests at 70% load were not 2xx: {steady['statuses']}"
                    )
        finally:
            for process in peers:
                process.terminate()
        for name in ("gateway", "auth"):
            process = self.s.processes.get(name)
            if process is not None:
                self.fig(
                    f"peak RSS, {name}",
                    "MB",
                    "below 150 MB per worker" if name == "gateway" else "",
                    better="lower",
                    id="P6" if name == "gateway" else None,
                ).values.append(rss_peak_mb(process.pid))

    # -- everything, in the order `make bench` runs it -------------------------------------

    def all(self, smoke: bool) -> None:
        small, large, stored = (1, 200, 1000) if smoke else (1, 100_000, 900_000)
        for background in (small, self.p3_background):
            progress(f"end-to-end resume with {background} executions waiting")
            self.resume(background)
        progress(f"end-to-end resume with {large} waiting and {large + stored} stored")
        self.resume(large, stored)
        self.resume_growth(f"{small} waiting", f"{large} waiting, {large + stored} stored")
        progress("keyed activations among 100, then among many waiting")
        self.keyed(100, 1000 if smoke else 100_000)
        progress("a burst of callbacks nobody waits for")
        self.burst()
        accepts = self.figures["burst decisions (peer: the gateway's acceptances)"].peer
        progress("sustained load at half the gateway's maximum")
        self.sustained(0.5 * statistics.median(accepts))
        progress("a second engine: CPU per decision, rebalance pauses")
        self.scaling()
        if "engine" in self.s.processes:
            self.fig("peak RSS, engine", "MB", better="lower").values.append(
                rss_peak_mb(self.s.processes["engine"].pid)
            )
        timers, spread = (300, 5.0) if smoke else (10_000, 60.0)
        progress(f"{timers} wait timeouts due within {spread:.0f} s")
        self.timers(timers, spread)
        progress("health checks while guarded expressions run")
        self.responsiveness()
        progress("consumer overhead")
        self.consumers()
        self.s.stop("engine")  # the gateway is measured alone: no consumer competes
        progress("gateway ingestion")
        self.ingestion()


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


def _in_place_stall(items: list[int]) -> float:
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


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class _Follower:
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


class _CompletionWatcher(_Follower):
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


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _LagSampler:
    """Reads the engine's consumer lag from its /metrics twice a second, in a thread."""

    def __init__(self, engine: str, topic: str) -> None:
        self.engine, self.topic = engine, topic
        self.samples: list[tuple[float, float]] = []
        self._stop = False

    def __enter__(self) -> "_LagSampler":
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


class _DecisionGaps:
    """A steady trickle of callbacks nobody waits for; the gaps between their decisions."""

    def __init__(self, suite: "Suite", rate: float) -> None:
        self.suite, self.rate = suite, rate

    def __enter__(self) -> "_DecisionGaps":
        import threading

        suite = self.suite
        self.counter = _OutcomeCounter(
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


class _OutcomeCounter(_Follower):
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


async def _create_executions(
    mongodb: str, database: str, flow_id: str, count: int, waiting: bool
) -> list[str]:
    """Executions written as the engine writes them: waiting at the flow's trigger (with
    their correlation keys, `input.ref` = their id), or completed."""
    from pymongo import AsyncMongoClient

    from engine.core import execution as ex
    from engine.core.definition import compile_flow
    from engine.store import MongoStore, execution_to_doc
    from schemas.events import ExecutionStatus

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    record = await store.get_flow(flow_id)
    assert record is not None
    flow = compile_flow(record.definition, record.flow_id, record.trigger_ids.__getitem__)
    ids: list[str] = []
    now = int(time.time() * 1000)
    for start in range(0, count, 5000):
        docs = []
        for _ in range(min(5000, count - start)):
            execution_id = str(uuid.uuid4())
            state = ex.start(
                flow, ex.new_execution(flow, execution_id, {"ref": execution_id}, now), now
            ).state
            if not waiting:
                state = replace(
                    state, status=ExecutionStatus.COMPLETED, waiting_on=(), wait_key=None
                )
            docs.append(execution_to_doc(state))
            ids.append(execution_id)
        await client[database]["executions"].insert_many(docs, ordered=False)
    await client.close()
    return ids


async def _create_timed(mongodb: str, database: str, flow_id: str, due: list[int]) -> list[str]:
    """Executions waiting at the flow's trigger with these deadlines, and their timers,
    written as the engine writes them (timers first)."""
    from pymongo import AsyncMongoClient

    from engine.core import execution as ex
    from engine.core.definition import compile_flow
    from engine.store import MongoStore, execution_to_doc

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    record = await store.get_flow(flow_id)
    assert record is not None
    flow = compile_flow(record.definition, record.flow_id, record.trigger_ids.__getitem__)
    now = int(time.time() * 1000)
    ids, docs, timers = [], [], []
    for deadline in due:
        execution_id = str(uuid.uuid4())
        state = ex.start(flow, ex.new_execution(flow, execution_id, {}, now), now).state
        docs.append(execution_to_doc(replace(state, deadline=deadline)))
        timers.append(
            {"_id": f"{execution_id}:{deadline}", "executionId": execution_id, "due": deadline}
        )
        ids.append(execution_id)
    for start in range(0, len(docs), 5000):
        await client[database]["timers"].insert_many(timers[start : start + 5000])
        await client[database]["executions"].insert_many(docs[start : start + 5000])
    await client.close()
    return ids


async def _lateness(mongodb: str, database: str, due: dict[str, int]) -> list[int | None]:
    """For each execution, milliseconds from its deadline to its `timedOut` entry."""
    from pymongo import AsyncMongoClient

    from schemas import opaque

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    late: dict[str, int] = {}
    ids = list(due)
    for start in range(0, len(ids), 1000):
        found = client[database]["executions"].find({"_id": {"$in": ids[start : start + 1000]}})
        async for doc in found:
            for entry in opaque.decode(doc["history"]):
                if entry["event"] == "timedOut":
                    late[doc["_id"]] = entry["at"] - due[doc["_id"]]
    await client.close()
    return [late.get(execution_id) for execution_id in ids]


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    memory = next(
        (
            int(line.split()[1]) // 1024
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    versions = {}
    for package in ("faststream", "aiokafka", "pymongo", "starlette", "uvicorn", "pydantic"):
        from importlib.metadata import version

        versions[package] = version(package)
    return {
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": "Apache Kafka 4.1.1 (KRaft, one node)",
        "mongodb": "FerretDB 1.24.2 on SQLite with the project's patches",
        "packages": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few seconds per figure")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--only",
        choices=("ingestion", "resume", "burst"),
        help="one part alone, for working on it (the report holds only its figures)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.seconds = 1, 1.0
    kafka, mongodb = os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ["MONGODB_URL"]
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    services = Services(f"bench_{uuid.uuid4().hex[:6]}", kafka, mongodb, logs)
    suite = Suite(services, args.runs, args.seconds, args.smoke)
    started = time.time()
    try:
        services.start_product()
        suite.deploy()
        if args.only == "ingestion":
            services.stop("engine")
            suite.ingestion()
        elif args.only == "resume":
            suite.resume(suite.p3_background)
        elif args.only == "burst":
            suite.burst()
            accepts = suite.figures["burst decisions (peer: the gateway's acceptances)"].peer
            suite.sustained(0.5 * statistics.median(accepts))
        else:
            suite.all(args.smoke)
    finally:
        services.stop_all()
        _drop(mongodb, kafka, services.prefix)
    from report import write  # plotting is only needed here

    write(
        args.out,
        [f.summary() for f in suite.figures.values()],
        machine(),
        suite.notes,
        {
            "smoke": args.smoke,
            "runs": args.runs,
            "seconds": args.seconds,
            "wall_seconds": round(time.time() - started, 1),
            "command": ("make bench-smoke" if args.smoke else "make bench")
            + (f" (bench/run.py --only {args.only})" if args.only else ""),
        },
        profiles=suite.profiles,
        lag=suite.lag_series,
    )


def _drop(mongodb: str, kafka: str, prefix: str) -> None:
    """Drop the run's databases and delete its topics: a broker that keeps every run's
    partitions spends more of the shared machine on them at each later run."""
    from pymongo import MongoClient

    with MongoClient(mongodb) as client:
        for suffix in ("engine", "auth", "peer"):
            client.drop_database(f"{prefix}_{suffix}")
    asyncio.run(_delete_topics(kafka, f"{prefix}."))


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
