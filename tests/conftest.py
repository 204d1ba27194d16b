"""The product as separate processes: engine, auth, gateway and the example's stub.

Each test session starts its own set on free ports, with its own topic prefix and
databases, against the real Kafka and MongoDB-wire server the other tests use. Set
HOOKFLOW_E2E_GATEWAY_URL, HOOKFLOW_E2E_ENGINE_URL, HOOKFLOW_E2E_AUTH_URL,
HOOKFLOW_E2E_STUB_URL and HOOKFLOW_E2E_ADMIN_KEY to drive a product already running
(for example the one `make up` starts) instead.
"""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pymongo import MongoClient

if TYPE_CHECKING:
    from .e2e.driver import Driver

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("ENGINE", "AUTH", "GATEWAY")
MAX_CONNECTIONS = 300  # client connections each service takes at once in the e2e product


@dataclass(frozen=True)
class Product:
    gateway: str
    engine: str
    auth: str
    stub: str
    admin_key: str
    kafka: str
    topic_prefix: str
    pids: dict[str, int] = field(default_factory=dict)  # when this session started them


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports: each socket is held until all are bound (closed one
    by one, the system may hand the same port out twice, and a second server that cannot
    bind it leaves the first answering its health checks)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # loopback
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def product(
    kafka_bootstrap: str, mongodb_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Product]:
    given = {
        name: os.environ.get(f"HOOKFLOW_E2E_{name.upper()}_URL")
        for name in ("gateway", "engine", "auth", "stub")
    }
    if all(given.values()):
        yield Product(
            given["gateway"] or "",
            given["engine"] or "",
            given["auth"] or "",
            given["stub"] or "",
            os.environ.get("HOOKFLOW_E2E_ADMIN_KEY", ""),
            kafka_bootstrap,
            os.environ.get("HOOKFLOW_E2E_TOPIC_PREFIX", "hookflow"),
        )
        return
    run = f"e2e_{uuid.uuid4().hex[:8]}"
    logs = tmp_path_factory.mktemp("e2e-logs")
    names = ("engine", "auth", "gateway", "stub")
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    admin_key = secrets.token_urlsafe(16)
    activation_key = secrets.token_urlsafe(32)  # shared by the engine and the gateway
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongodb_url,
        "HOOKFLOW_ENGINE_PORT": str(ports["engine"]),
        "HOOKFLOW_ENGINE_TOPIC_PREFIX": run,
        "HOOKFLOW_ENGINE_CONSUMER_GROUP": run,
        "HOOKFLOW_ENGINE_DATABASE": f"{run}_engine",
        "HOOKFLOW_ENGINE_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
        "HOOKFLOW_ENGINE_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
        "HOOKFLOW_ENGINE_TOPIC_PARTITIONS": "3",
        "HOOKFLOW_ENGINE_SYSTEM_SAMPLE_SECONDS": "1",  # the system page fills in seconds
        # a connection cap the hostile-HTTP tests can reach (tests/security)
        **{f"HOOKFLOW_{s}_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS) for s in SERVICES},
        "HOOKFLOW_AUTH_PORT": str(ports["auth"]),
        "HOOKFLOW_AUTH_TOPIC_PREFIX": run,
        "HOOKFLOW_AUTH_DATABASE": f"{run}_auth",
        "HOOKFLOW_AUTH_REGISTER_LIMIT_PER_ADDRESS": "100000",  # every test registers users
        "HOOKFLOW_GATEWAY_PORT": str(ports["gateway"]),
        "HOOKFLOW_GATEWAY_TOPIC_PREFIX": run,
        "HOOKFLOW_GATEWAY_AUTH_URL": f"http://127.0.0.1:{ports['auth']}",
        "HOOKFLOW_GATEWAY_ENGINE_URL": f"http://127.0.0.1:{ports['engine']}",
        "HOOKFLOW_AUTH_TRUSTED_PROXIES": "127.0.0.1",  # the gateway, the one origin's door
        "HOOKFLOW_ENGINE_ACTIVATION_KEY": activation_key,
        "HOOKFLOW_GATEWAY_ACTIVATION_KEY": activation_key,
        # the example's stub is the one internal address flows may call
        "HOOKFLOW_ENGINE_EGRESS_ALLOW": f"127.0.0.1:{ports['stub']}",
    }
    # the admin key reaches only the processes that check it
    activation_key = secrets.token_urlsafe(16)
    internal_key = secrets.token_urlsafe(16)  # auth's /internal/... routes and their callers
    secrets_of = {
        "engine": {
            "HOOKFLOW_INTERNAL_KEY": internal_key,
            "HOOKFLOW_ENGINE_ADMIN_KEY": admin_key,
            "HOOKFLOW_ENGINE_ACTIVATION_KEY": activation_key,
        },
        "auth": {"HOOKFLOW_AUTH_ADMIN_KEY": admin_key, "HOOKFLOW_INTERNAL_KEY": internal_key},
        "gateway": {
            "HOOKFLOW_INTERNAL_KEY": internal_key,
            "HOOKFLOW_GATEWAY_ADMIN_KEY": admin_key,
            "HOOKFLOW_GATEWAY_ACTIVATION_KEY": activation_key,
        },
        "stub": {},
    }
    commands = {
        "engine": [sys.executable, "-m", "engine"],
        "auth": [sys.executable, "-m", "auth"],
        "gateway": [sys.executable, "-m", "gateway"],
        "stub": [sys.executable, str(ROOT / "examples" / "stub.py"), "--port", str(ports["stub"])],
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as stack:
        for name, command in commands.items():  # the engine first: it creates the topics
            log = stack.enter_context((logs / f"{name}.log").open("wb"))
            processes[name] = subprocess.Popen(  # noqa: S603  # our own commands
                command,
                env={**env, **secrets_of[name]},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            path = "/healthz" if name == "stub" else "/readyz"
            deadline = time.monotonic() + 60
            while not _ready(f"http://127.0.0.1:{ports[name]}{path}"):
                if processes[name].poll() is not None or time.monotonic() > deadline:
                    for process in processes.values():
                        process.terminate()
                    text = (logs / f"{name}.log").read_text()[-3000:]
                    pytest.fail(f"{name} did not start:\n{text}")
                time.sleep(0.1)
        try:
            yield Product(
                f"http://127.0.0.1:{ports['gateway']}",
                f"http://127.0.0.1:{ports['engine']}",
                f"http://127.0.0.1:{ports['auth']}",
                f"http://127.0.0.1:{ports['stub']}",
                admin_key,
                kafka_bootstrap,
                run,
                {name: process.pid for name, process in processes.items()},
            )
        finally:
            for process in reversed(list(processes.values())):
                process.terminate()
            for process in processes.values():
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
            client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
            with client as mongo:
                mongo.drop_database(f"{run}_engine")
                mongo.drop_database(f"{run}_auth")


@pytest.fixture
async def driver(product: Product) -> AsyncIterator["Driver"]:
    """The product driven over HTTP as its users do, with the admin key."""
    from .e2e.driver import Driver  # the driver imports this module

    async with httpx.AsyncClient(timeout=30, headers={"X-Admin-Key": product.admin_key}) as http:
        yield Driver(product, http)
