"""Fault suite: while callbacks resume executions, kill every part of the product in turn.

    .venv/bin/python tests/chaos/chaos.py [--executions 400]     (make chaos)

It starts its own Kafka and MongoDB-wire server (deploy/local scripts, their own ports
and directories, so that killing them touches nothing else) and the three services as
processes. N executions wait: three in four at a callback, one in four at a triggers group
of two members (mode `all`); each callback names its execution (`execution=<id>`) and has
an `Idempotency-Key`, every call retried until it gets a 200 (a group's execution gets
one per member, in a random order). Meanwhile, one after the
other: kill -9 Kafka and restart it; kill -9 the engine and restart it; kill -9 the
server and restart it; kill -9 the gateway and restart it; start a second engine and
kill -9 it; start a third and stop it with TERM. All along, a hostile publisher puts
records no engine can take (nested too deep, megabytes of escapes, not UTF-8, numbers
that are not finite) straight on the activations topic. Then it checks that every
execution completed exactly once (one `resumed` in its history; a group's with both
members among `activated`), that no acknowledged
callback was lost, that no 2xx was answered while Kafka was down, and that every hostile
record the broker took became a dead letter; and reports how long each fault took to
recover from: until the gateway acknowledged a callback again (`recovered_seconds`) and
until an execution was resumed again (`next_resume_seconds`). Last, a slowloris run
holds `--slow-clients` connections on the gateway, each sending a header byte a second
and opened again when closed: each must be closed within 10 s (and some margin) while
callbacks are still accepted. Prints one JSON object; exits 1 when a check fails.
"""

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[2]
LOCAL = ROOT / "deploy" / "local"
FLOW = {
    "name": "chaos",
    "blocks": [
        {"name": "Start", "type": "start", "next": "Paid"},
        {"name": "Paid", "type": "external_callback", "next": "Done"},
        {"name": "Done", "type": "assign", "assign": {"amount": "data.amount"}},
    ],
}
GROUP_MEMBERS = ("Captured", "Reserved")
GROUP_FLOW = {
    "name": "chaos-group",
    "blocks": [
        {"name": "Start", "type": "start", "next": "Ready"},
        {
            "name": "Ready",
            "type": "triggers_group",
            "mode": "all",
            "windowSeconds": 3600,
            "triggers": [{"name": n, "type": "external_callback"} for n in GROUP_MEMBERS],
            "next": "Done",
        },
        {"name": "Done", "type": "assign", "assign": {"amount": "data.amount"}},
    ],
}


@dataclass(frozen=True)
class Call:
    """One callback the load must get acknowledged: a trigger's URL, for an execution."""

    url: str
    execution_id: str

    @property
    def key(self) -> str:
        """Its Idempotency-Key, and its name in `Load.acknowledged`."""
        return f"pay-{self.execution_id}-{self.url.rsplit('/', 2)[-2]}"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # loopback
            return bool(response.status == 200)
    except OSError:
        return False


def _ephemeral_floor() -> int:
    """The lowest port the system hands out to outgoing connections (Linux's
    ip_local_port_range): a port picked below it cannot be taken by a client's connection
    between the pick and the server's bind (Kafka's JVM takes seconds to bind)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive free ports (a Kafka cluster's, two per node), below
    the ephemeral range, each held until all are bound."""
    rng = random.Random()
    top = max(_ephemeral_floor() - count, 12_000)
    while True:
        first = rng.randrange(10_000, top)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + count):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


def free_port() -> int:
    return free_ports(1)


def _last_lines(path: Path, count: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-count:]


class ScriptFailed(subprocess.CalledProcessError):
    """A deploy/local script that failed, with what it and its server printed."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.output}"


@dataclass
class Infra:
    """Kafka (one broker, or a cluster of three) and a MongoDB-wire server of the suite's
    own."""

    state: Path
    brokers: int = 1
    kafka_port: int = 0  # node 1's; node i's is two higher than node i - 1's
    mongo_port: int = field(default_factory=free_port)
    authorizer: bool = False  # Kafka's ACLs on (everything allowed until one denies)

    def __post_init__(self) -> None:
        self.kafka_port = self.kafka_port or free_ports(2 * self.brokers)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOOKFLOW_KAFKA_BROKERS": str(self.brokers),
            "HOOKFLOW_KAFKA_PORT": str(self.kafka_port),
            "HOOKFLOW_KAFKA_CONTROLLER_PORT": str(self.kafka_port + 1),
            "HOOKFLOW_KAFKA_STATE_DIR": str(self.state / "kafka"),
            "HOOKFLOW_KAFKA_AUTHORIZER": "1" if self.authorizer else "0",
            "HOOKFLOW_MONGO_PORT": str(self.mongo_port),
            "HOOKFLOW_MONGO_STATE_DIR": str(self.state / "ferretdb"),
        }

    def script(self, name: str, action: str, *args: str) -> None:
        """Run deploy/local/<name>.sh; a failure raises with what the script printed and
        the end of the server's own logs (a start that failed says why)."""
        done = subprocess.run(  # noqa: S603  # our own scripts
            [str(LOCAL / f"{name}.sh"), action, *args],
            env=self.env(),
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            logs = sorted((self.state / name).rglob("*.log"))
            tails = "".join(
                f"\n--- {log} (end) ---\n" + "\n".join(_last_lines(log, 30)) for log in logs
            )
            raise ScriptFailed(done.returncode, done.args, output=done.stdout + done.stderr + tails)

    def kill(self, name: str, node: int | None = None) -> None:
        """kill -9 the server `name` (Kafka's node `node` in a cluster)."""
        directory = self.state / name
        if node is not None and self.brokers > 1:
            directory = directory / f"node-{node}"
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.kill(int((directory / f"{name}.pid").read_text()), signal.SIGKILL)
        time.sleep(0.3)

    @property
    def kafka(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_port + 2 * n}" for n in range(self.brokers))

    @property
    def mongodb(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"


@dataclass
class Services:
    """The product's processes, each startable, killable and stoppable on its own."""

    infra: Infra
    logs: Path
    prefix: str = field(default_factory=lambda: f"chaos_{uuid.uuid4().hex[:6]}")
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    publish_timeout: float = 3.0  # the gateway's, seconds

    def env(self, name: str) -> dict[str, str]:
        for service in ("engine", "auth", "gateway"):
            self.ports.setdefault(service, free_port())
        p, run = self.ports, self.prefix
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka,
            "MONGODB_URL": self.infra.mongodb,
            "HOOKFLOW_ENGINE_PORT": str(p[name] if name.startswith("engine") else p["engine"]),
            "HOOKFLOW_ENGINE_TOPIC_PREFIX": run,
            "HOOKFLOW_ENGINE_CONSUMER_GROUP": run,
            "HOOKFLOW_ENGINE_DATABASE": f"{run}_engine",
            "HOOKFLOW_ENGINE_PUBLIC_URL": f"http://127.0.0.1:{p['gateway']}",
            "HOOKFLOW_ENGINE_AUTH_URL": f"http://127.0.0.1:{p['auth']}",
            "HOOKFLOW_ENGINE_TOPIC_PARTITIONS": "6",
            "HOOKFLOW_ENGINE_RETRY_BACKOFF_SECONDS": "0.5",
            "HOOKFLOW_AUTH_PORT": str(p["auth"]),
            "HOOKFLOW_AUTH_TOPIC_PREFIX": run,
            "HOOKFLOW_AUTH_DATABASE": f"{run}_auth",
            "HOOKFLOW_AUTH_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_ENGINE_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_GATEWAY_ADMIN_KEY": self.admin_key,
            "HOOKFLOW_ENGINE_ACTIVATION_KEY": self.admin_key + "-activations",
            "HOOKFLOW_GATEWAY_ACTIVATION_KEY": self.admin_key + "-activations",
            "HOOKFLOW_INTERNAL_KEY": self.admin_key + "-internal",
            "HOOKFLOW_GATEWAY_PORT": str(p["gateway"]),
            "HOOKFLOW_GATEWAY_TOPIC_PREFIX": run,
            "HOOKFLOW_GATEWAY_AUTH_URL": f"http://127.0.0.1:{p['auth']}",
            "HOOKFLOW_GATEWAY_PUBLISH_TIMEOUT_SECONDS": str(self.publish_timeout),
            "HOOKFLOW_GATEWAY_RATE_LIMIT_PER_SECOND": "0",
            "HOOKFLOW_ENGINE_TOPIC_REPLICATION_FACTOR": str(self.infra.brokers),
        }

    def start(self, name: str, timeout: float = 90) -> None:
        self.ports.setdefault(name, free_port())
        module = "engine" if name.startswith("engine") else name
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(  # noqa: S603  # our own services
            [sys.executable, "-m", module], env=self.env(name), stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while not answers(f"{self.url(name)}/readyz"):
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready; see {self.logs / name}.log")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def terminate(self, name: str) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.terminate(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"


@dataclass
class Answer:
    execution_id: str
    at: float  # when the answer came
    status: int  # 0: no answer (connection refused, timed out)
    code: int | None = None  # the error body's code
    sent: float = 0.0  # when the call was made
    activation_id: str | None = None  # a 200's
    key: str = ""  # the call's Idempotency-Key


class Load:
    """Makes every call once acknowledged, each retried until it gets a 200."""

    def __init__(self, calls: list[Call], concurrency: int, rate: float) -> None:
        self.calls = calls
        self.concurrency = concurrency
        self.spacing = concurrency / rate  # each worker's pause between calls
        self.answers: list[Answer] = []
        self.acknowledged: dict[str, float] = {}  # call key -> when
        self.executions: set[str] = set()  # those with a call acknowledged
        # set when the last fault is repaired; until then, once every call is
        # acknowledged, the workers repeat an acknowledged callback (a DUPLICATE: it
        # resumes nothing) so that every fault's recovery is measured, however long the
        # faults took
        self.faults_over = threading.Event()

    async def run(self) -> None:
        queue: asyncio.Queue[Call] = asyncio.Queue()
        for call in self.calls:
            queue.put_nowait(call)
        async with httpx.AsyncClient(timeout=10) as client:

            async def worker(n: int) -> None:
                await asyncio.sleep(n * self.spacing / self.concurrency)  # a steady stream
                while not queue.empty():
                    call = queue.get_nowait()
                    while call.key not in self.acknowledged:
                        answer = await self._call(client, call)
                        self.answers.append(answer)
                        if answer.status == 200:
                            self.acknowledged[call.key] = time.time()
                            self.executions.add(call.execution_id)
                        else:
                            await asyncio.sleep(0.2)
                    await asyncio.sleep(self.spacing)  # spread over the faults
                while not self.faults_over.is_set():
                    self.answers.append(await self._call(client, self.calls[0]))
                    await asyncio.sleep(max(self.spacing, 0.2))

            await asyncio.gather(*(worker(n) for n in range(self.concurrency)))

    def probe(self, seconds: float, every: float = 1.0) -> None:
        """For `seconds`, repeat an acknowledged callback (a DUPLICATE: it resumes
        nothing) every `every` s beside the workers, so that a fault's window holds
        answers whatever the workers' phase (they may drift into step and leave a gap
        longer than a short fault); waits the same time when nothing is acknowledged."""
        until = time.monotonic() + seconds
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < until:
                call = next((c for c in self.calls if c.key in self.acknowledged), None)
                if call is not None:
                    sent = time.time()
                    try:
                        response = client.post(**_request(call))
                    except httpx.HTTPError:
                        self.answers.append(_answer(call, sent, None))
                    else:
                        self.answers.append(_answer(call, sent, response))
                time.sleep(min(every, max(until - time.monotonic(), 0.0)))

    async def _call(self, client: httpx.AsyncClient, call: Call) -> Answer:
        sent = time.time()
        try:
            response = await client.post(**_request(call))
        except httpx.HTTPError:
            return _answer(call, sent, None)
        return _answer(call, sent, response)


def _request(call: Call) -> dict[str, Any]:
    return {
        "url": f"{call.url}?execution={call.execution_id}",
        "json": {"amount": 5},
        "headers": {"Idempotency-Key": call.key},
    }


def _answer(call: Call, sent: float, response: httpx.Response | None) -> Answer:
    """The call's answer: status 0 when none came (refused, timed out), the error body's
    code, a 200's activation id."""
    at = time.time()
    if response is None:
        return Answer(call.execution_id, at, 0, sent=sent, key=call.key)
    if response.status_code == 200:
        activation_id = response.headers.get("x-activation-id")
        return Answer(call.execution_id, at, 200, None, sent, activation_id, call.key)
    try:
        code = response.json().get("code")
    except ValueError:
        code = None
    return Answer(call.execution_id, at, response.status_code, code, sent, key=call.key)


def hostile_records() -> Iterator[bytes]:
    """Records no engine can take, in turn, without end."""
    kinds = [
        b"[" * 3000 + b"]" * 3000,
        b'{"activationId":"%s","flowId":"f","triggerId":"t","receivedAt":1,"data":["'
        + b'\\"' * 300_000
        + b'"]}',
        b'{"activationId":"%s","flowId":"f","triggerId":"t","receivedAt":1,"data":{"n":NaN}}',
        b'{"activationId":"%s","flowId":"f","triggerId":"t","receivedAt":1,"data":{"n":1e400}}',
        b"\xff\xfe" * 200_000,
    ]
    n = 0
    while True:
        record = kinds[n % len(kinds)]
        yield record.replace(b"%s", uuid.uuid4().hex.encode(), 1)
        n += 1


class Hostile:
    """Publishes hostile records to the activations topic until told to stop."""

    def __init__(self, kafka: str, topic: str) -> None:
        self.kafka, self.topic = kafka, topic
        self.acknowledged = 0
        self.stop = threading.Event()

    async def run(self) -> None:
        records = hostile_records()
        while not self.stop.is_set():
            producer = AIOKafkaProducer(
                bootstrap_servers=self.kafka, acks="all", max_request_size=1_048_000
            )
            try:
                await producer.start()
                while not self.stop.is_set():
                    key = uuid.uuid4().hex.encode()  # every partition gets its share
                    await producer.send_and_wait(self.topic, next(records), key=key)
                    self.acknowledged += 1
                    await asyncio.sleep(0.5)
            except Exception:  # the broker is killed under it: start again
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await producer.stop()


def slowloris(url: str, callback: str, clients: int, seconds: float) -> dict[str, Any]:
    """Hold `clients` connections that send a header byte a second, each opened again
    when the server closes it; how long the server let each live, and whether callbacks
    were accepted meanwhile."""
    host, port = url.removeprefix("http://").split(":")
    lived: list[float] = []
    accepted: list[int] = []

    async def one() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            opened = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                await asyncio.sleep(0.5)
                continue
            writer.write(b"POST / HTTP/1.1\r\nHost: chaos\r\n")
            while time.monotonic() < deadline:
                try:
                    writer.write(b"X")
                    await writer.drain()
                    async with asyncio.timeout(1):
                        await reader.read(65536)
                except TimeoutError:
                    continue
                except OSError:
                    pass
                lived.append(time.monotonic() - opened)  # the server closed it
                break
            writer.close()

    async def callbacks() -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.post(callback, json={"slowloris": True})
                    accepted.append(answer.status_code)
                await asyncio.sleep(1)

    async def attack() -> None:
        await asyncio.gather(callbacks(), *(one() for _ in range(clients)))

    asyncio.run(attack())
    return {
        "clients": clients,
        "seconds": seconds,
        "closed_by_the_server": len(lived),
        "longest_held_seconds": round(max(lived), 1) if lived else None,
        "callbacks_accepted_meanwhile": accepted.count(200),
        "callbacks_tried_meanwhile": len(accepted),
    }


@contextlib.contextmanager
def product(
    state: Path, brokers: int = 1, publish_timeout: float = 3.0
) -> Iterator[tuple[Infra, Services]]:
    infra = Infra(state, brokers)
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    services = Services(infra, logs, publish_timeout=publish_timeout)
    try:
        infra.script("kafka", "start")
        infra.script("ferretdb", "start")
        for name in ("engine", "auth", "gateway"):  # the engine first: it creates the topics
            services.start(name)
        yield infra, services
    finally:
        services.stop_all()
        for name in ("kafka", "ferretdb"):
            with contextlib.suppress(subprocess.CalledProcessError):
                infra.script(name, "stop")


@dataclass(frozen=True)
class Prepared:
    """What the load runs against: the flows, their executions, the calls to make."""

    flows: dict[str, int]  # flow id -> executions started
    grouped: list[str]  # the executions waiting at the triggers group
    calls: list[Call]


def prepare(services: Services, count: int, seed: int) -> Prepared:
    """Deploy the flows and start `count` executions (one in four at the group); wait
    until they all wait. The group's two calls per execution come in a seeded order."""
    engine, gateway = services.url("engine"), services.url("gateway")
    grouped_count = count // 4
    rng = random.Random(seed)
    calls: list[Call] = []
    flows: dict[str, int] = {}
    grouped: list[str] = []
    with httpx.Client(timeout=30, headers={"X-Admin-Key": services.admin_key}) as http:
        for definition, started in ((FLOW, count - grouped_count), (GROUP_FLOW, grouped_count)):
            deployed = http.post(f"{engine}/api/automation/flows", json=definition).json()
            flow_id = deployed["flowId"]
            urls = [t["callbackUrl"] for t in deployed["triggers"]]
            deadline = time.monotonic() + 60
            while (
                http.post(f"{gateway}/api/automation/flow/{flow_id}/execute", content=b"[]")
            ).status_code == 404:
                if time.monotonic() > deadline:
                    raise RuntimeError("the gateway never learned the flow")
                time.sleep(0.1)
            for i in range(started):
                execution_id = http.post(
                    f"{gateway}/api/automation/flow/{flow_id}/execute", json={"n": i}
                ).json()["executionId"]
                calls += [Call(url, execution_id) for url in urls]
                if definition is GROUP_FLOW:
                    grouped.append(execution_id)
            flows[flow_id] = started
        rng.shuffle(calls)
        for flow_id, started in flows.items():
            wait_for_status(http, engine, flow_id, "waiting", started, timeout=120)
    return Prepared(flows, grouped, calls)


def wait_for_status(
    http: httpx.Client, engine: str, flow_id: str, status: str, count: int, timeout: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = list_executions(http, engine, flow_id, status)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def list_executions(
    http: httpx.Client, engine: str, flow_id: str, status: str
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"status": status, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{engine}/api/automation/flow/{flow_id}/executions", params=params)
        if page.status_code != 200:
            return found
        body = page.json()
        found += body["executions"]
        cursor = body["next"]
        if not cursor:
            return found


def faults(infra: Infra, services: Services, pause: float) -> list[dict[str, Any]]:
    """Each fault in turn; returns when it happened and when it was repaired."""
    done: list[dict[str, Any]] = []

    def record(name: str, struck: float, repaired: float, **extra: Any) -> None:
        done.append({"fault": name, "struck": struck, "repaired": repaired, **extra})
        time.sleep(pause)

    time.sleep(pause)
    struck = time.time()
    infra.kill("kafka")
    time.sleep(pause)
    restarting = time.time()
    infra.script("kafka", "start")
    record("kill -9 Kafka", struck, time.time(), down_until=restarting)

    struck = time.time()
    services.kill("engine")
    services.start("engine")
    record("kill -9 engine", struck, time.time())

    struck = time.time()
    infra.kill("ferretdb")
    time.sleep(min(pause, 2))
    infra.script("ferretdb", "start")
    record("kill -9 MongoDB-wire server", struck, time.time())

    struck = time.time()
    services.kill("gateway")
    services.start("gateway")
    record("kill -9 gateway", struck, time.time())

    struck = time.time()
    services.start("engine2")
    time.sleep(pause)
    services.kill("engine2")
    record("second engine joins, then kill -9", struck, time.time())

    struck = time.time()
    services.start("engine3")
    time.sleep(pause)
    services.terminate("engine3")
    record("third engine joins, then TERM", struck, time.time())
    return done


def run(
    count: int,
    pause: float,
    concurrency: int,
    slow_clients: int = 500,
    slow_seconds: float = 60.0,
    seed: int | None = None,
) -> dict[str, Any]:
    """One run; `seed` fixes the order of the calls (printed, so that a run can be
    replayed)."""
    seed = secrets.randbelow(2**31) if seed is None else seed
    print(f"chaos run, seed {seed}", file=sys.stderr, flush=True)
    started = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="hookflow-chaos-") as tmp,
        product(Path(tmp)) as (
            infra,
            services,
        ),
    ):
        prepared = prepare(services, count, seed)
        calls = prepared.calls
        # spread the callbacks over the faults: about 8 pauses and 25 s of restarts
        load = Load(calls, concurrency, rate=len(calls) / (8 * pause + 25))
        driver = threading.Thread(target=lambda: asyncio.run(load.run()), daemon=True)
        driver.start()
        hostile = Hostile(infra.kafka, f"{services.prefix}.activations")
        poisoner = threading.Thread(target=lambda: asyncio.run(hostile.run()), daemon=True)
        poisoner.start()
        injected = faults(infra, services, pause)
        time.sleep(5)  # the last fault's recovery is measured too
        load.faults_over.set()
        hostile.stop.set()
        driver.join(timeout=900)
        poisoner.join(timeout=60)
        ended = settle(services, prepared)
        histories = {execution_id: e["history"] for execution_id, e in ended.items()}
        with httpx.Client(timeout=30, headers={"X-Admin-Key": services.admin_key}) as http:
            invalid = count_letters(http, services.url("engine"), hostile.acknowledged, timeout=120)
        slow = slowloris(services.url("gateway"), calls[0].url, slow_clients, slow_seconds)
    checked = exactly_once(prepared, load, ended)
    lost, twice = checked["lost_acknowledged"], checked["not_resumed_exactly_once"]
    incomplete_groups = checked["groups_without_both_members"]
    kafka = next(f for f in injected if f["fault"] == "kill -9 Kafka")
    grace = 0.5  # an acknowledgement in flight when the broker died may still arrive
    during_outage = [
        a
        for a in load.answers
        if 200 <= a.status < 300 and kafka["struck"] + grace < a.at < kafka["down_until"]
    ]
    # a call made while the broker is down is answered 503 with code 5030 (or not at all,
    # or 200 once the broker is back within the gateway's publish timeout)
    outage = [a for a in load.answers if kafka["struck"] + grace < a.sent < kafka["down_until"]]
    other_than_broker_down = sorted(
        {
            f"{a.status}/{a.code}"
            for a in outage
            if a.status
            and (a.status, a.code) != (503, 5030)
            and not (a.status == 200 and a.at >= kafka["down_until"])
        }
    )
    recoveries(injected, load, histories, started)
    result = {
        "seed": seed,
        "executions": count,
        "in_groups": len(prepared.grouped),
        "calls": len(calls),
        "acknowledged": len(load.acknowledged),
        "completed": len(histories),
        "groups_without_both_members": incomplete_groups,
        "lost_acknowledged": lost,
        "not_resumed_exactly_once": twice,
        "2xx_while_kafka_down": len(during_outage),
        "answers_while_kafka_down": sorted({f"{a.status}/{a.code}" for a in outage}),
        "not_503_5030_while_kafka_down": other_than_broker_down,
        "requests": len(load.answers),
        "answers": {
            str(s): sum(1 for a in load.answers if a.status == s)
            for s in sorted({a.status for a in load.answers})
        },
        "faults": injected,
        "hostile_records_acknowledged": hostile.acknowledged,
        "hostile_records_dead_lettered": invalid,
        "slowloris": slow,
        "seconds": round(time.time() - started, 1),
    }
    result["passed"] = (
        not lost
        and not twice
        and not during_outage
        and not other_than_broker_down
        and len(histories) == count
        and len(load.acknowledged) == len(calls)
        and not incomplete_groups
        and invalid >= hostile.acknowledged
        and slow["closed_by_the_server"] >= slow["clients"]
        and (slow["longest_held_seconds"] or 0) < SLOW_HEADERS_SECONDS + 5
        and slow["callbacks_accepted_meanwhile"] == slow["callbacks_tried_meanwhile"] > 0
    )
    return result


SLOW_HEADERS_SECONDS = 10  # the contract's limit for a request's headers


def settle(services: Services, prepared: Prepared) -> dict[str, dict[str, Any]]:
    """Every execution that completed (waiting up to 5 minutes for all), by id."""
    engine = services.url("engine")
    with httpx.Client(timeout=30, headers={"X-Admin-Key": services.admin_key}) as http:
        completed = [
            e
            for flow_id, started in prepared.flows.items()
            for e in wait_for_status(http, engine, flow_id, "completed", started, timeout=300)
        ]
        return {
            e["executionId"]: http.get(
                f"{engine}/api/automation/executions/{e['executionId']}"
            ).json()
            for e in completed
        }


def exactly_once(
    prepared: Prepared, load: Load, ended: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The history check: every execution with an acknowledged callback completed, each
    resumed exactly once, each group's with both members counted once."""
    resumed = {e: [h["event"] for h in x["history"]].count("resumed") for e, x in ended.items()}
    return {
        "lost_acknowledged": sorted(load.executions - set(ended)),
        "not_resumed_exactly_once": sorted(e for e, n in resumed.items() if n != 1),
        "groups_without_both_members": sorted(
            e
            for e in prepared.grouped
            if e in ended
            and sorted(ended[e]["results"].get("Ready", {}).get("activated", []))
            != list(GROUP_MEMBERS)
        ),
    }


def recoveries(
    injected: list[dict[str, Any]], load: Load, histories: dict[str, Any], started: float
) -> None:
    """Add to each fault how long until a callback was acknowledged again and until an
    execution was resumed again; times made relative to the run's start."""
    resumed_at = sorted(
        entry["at"] / 1000
        for history in histories.values()
        for entry in history
        if entry["event"] == "resumed"
    )
    for fault in injected:
        after = [a.at for a in load.answers if a.status == 200 and a.at >= fault["struck"]]
        fault["recovered_seconds"] = round(min(after) - fault["struck"], 2) if after else None
        decided = [t for t in resumed_at if t >= fault["struck"]]
        fault["next_resume_seconds"] = round(decided[0] - fault["struck"], 2) if decided else None
        fault["struck"] = round(fault["struck"] - started, 2)
        fault["repaired"] = round(fault["repaired"] - started, 2)
        fault.pop("down_until", None)


def count_letters(http: httpx.Client, engine: str, expected: int, timeout: float) -> int:
    """The invalid dead letters, once there are `expected` (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        found, cursor = 0, None
        while True:
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            page = http.get(f"{engine}/api/automation/dead-letters", params=params).json()
            found += sum(1 for d in page["deadLetters"] if d["kind"] == "invalid")
            cursor = page["next"]
            if not cursor:
                break
        if found >= expected or time.monotonic() > deadline:
            return found
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=400)
    parser.add_argument("--pause", type=float, default=4.0, help="seconds between faults")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--slow-clients", type=int, default=500)
    parser.add_argument("--slow-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, help="replay a run: the order of its calls")
    args = parser.parse_args()
    result = run(
        args.executions,
        args.pause,
        args.concurrency,
        args.slow_clients,
        args.slow_seconds,
        args.seed,
    )
    print(json.dumps(result, indent=2))
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
