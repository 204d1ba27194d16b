"""Processes of a benchmark run: the services, the load generator and the peers, and
the small HTTP and process helpers every suite uses."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
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
            "HOOKFLOW_GATEWAY_ENGINE_URL": f"http://127.0.0.1:{p['engine']}",
            "HOOKFLOW_AUTH_TRUSTED_PROXIES": "127.0.0.1",
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


def progress(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
