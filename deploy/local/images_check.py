"""Start each built image's own entrypoint (`buildah run --isolation chroot`) against the
local Kafka and store, and check what production relies on: every service ready, a
callback through the gateway resumes an execution, the processes run as a non-root
user, no compiler or build tool is in an image, nothing is written to an image's file
system; the image sizes. Writes a JSON report; exits 1 when a check fails.

    .venv/bin/python deploy/local/images_check.py --report R.json gateway engine auth

Needs KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL (deploy/local/infra.sh env).
"""

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUILD_TOOLS = ("gcc", "cc", "c++", "make", "git", "cargo", "go")
# written by buildah itself when it runs a command in a container, not by the service
RUN_FILES = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run/.containerenv"}
ORDER = ("auth", "engine", "gateway")  # each needs the ones before it


def buildah(*args: str) -> str:
    done = subprocess.run(["buildah", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # loopback
        url,
        data=data,
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
        return json.loads(text) if text else None


def ready(url: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()  # loopback
            return True
        time.sleep(0.5)
    return False


class Running:
    """One image's container, started with the image's own entrypoint."""

    def __init__(self, service: str, env: dict[str, str], logs: Path) -> None:
        self.service = service
        self.image = f"localhost/hookflow-{service}:dev"
        config = json.loads(buildah("inspect", "--type", "image", self.image))["OCIv1"]["config"]
        self.entrypoint: list[str] = config.get("Entrypoint") or []
        self.user = config.get("User", "")
        self.container = buildah("from", "--quiet", self.image)
        self.began = time.monotonic()
        self.marker = time.time()
        time.sleep(1.1)  # file times have a second's resolution on some file systems
        arguments = [f"--env={k}={v}" for k, v in env.items()]
        self.log = (logs / f"{service}.log").open("w")
        self.process = subprocess.Popen(
            [
                "buildah",
                "run",
                "--isolation",
                "chroot",
                *arguments,
                self.container,
                "--",
                *self.entrypoint,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def run(self, *command: str) -> str:
        return buildah("run", "--isolation", "chroot", self.container, "--", *command)

    def written(self) -> list[str]:
        """Files of the container's file system changed since it started."""
        root = Path(buildah("mount", self.container))
        try:
            changed = []
            for path in root.rglob("*"):
                relative = "/" + str(path.relative_to(root))
                if relative.startswith(("/proc", "/sys", "/dev")) or relative in RUN_FILES:
                    continue
                with contextlib.suppress(OSError):
                    if (
                        path.is_file()
                        and not path.is_symlink()
                        and path.stat().st_mtime > self.marker
                    ):
                        changed.append(relative)
            return sorted(changed)
        finally:
            buildah("umount", self.container)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            buildah("rm", self.container)


def settings(ports: dict[str, int], run: str) -> dict[str, dict[str, str]]:
    admin, activation, internal = (secrets.token_urlsafe(24) for _ in range(3))
    shared = {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        "MONGODB_URL": os.environ["MONGODB_URL"],
        "HOOKFLOW_INTERNAL_KEY": internal,
    }
    auth, engine, gateway = (f"http://127.0.0.1:{ports[s]}" for s in ORDER)
    return {
        "auth": {
            **shared,
            "HOOKFLOW_AUTH_HOST": "127.0.0.1",
            "HOOKFLOW_AUTH_PORT": str(ports["auth"]),
            "HOOKFLOW_AUTH_TOPIC_PREFIX": run,
            "HOOKFLOW_AUTH_DATABASE": f"{run}_auth",
            "HOOKFLOW_AUTH_ADMIN_KEY": admin,
        },
        "engine": {
            **shared,
            "HOOKFLOW_ENGINE_HOST": "127.0.0.1",
            "HOOKFLOW_ENGINE_PORT": str(ports["engine"]),
            "HOOKFLOW_ENGINE_TOPIC_PREFIX": run,
            "HOOKFLOW_ENGINE_CONSUMER_GROUP": run,
            "HOOKFLOW_ENGINE_DATABASE": f"{run}_engine",
            "HOOKFLOW_ENGINE_PUBLIC_URL": gateway,
            "HOOKFLOW_ENGINE_AUTH_URL": auth,
            "HOOKFLOW_ENGINE_ADMIN_KEY": admin,
            "HOOKFLOW_ENGINE_ACTIVATION_KEY": activation,
        },
        "gateway": {
            **shared,
            "HOOKFLOW_GATEWAY_HOST": "127.0.0.1",
            "HOOKFLOW_GATEWAY_PORT": str(ports["gateway"]),
            "HOOKFLOW_GATEWAY_TOPIC_PREFIX": run,
            "HOOKFLOW_GATEWAY_AUTH_URL": auth,
            "HOOKFLOW_GATEWAY_ENGINE_URL": engine,
            "HOOKFLOW_GATEWAY_ADMIN_KEY": admin,
            "HOOKFLOW_GATEWAY_ACTIVATION_KEY": activation,
        },
    }


def resume_through(gateway: str, admin: str) -> bool:
    """Deploy through the one origin, start an execution, call its callback: completed."""
    headers = {"x-admin-key": admin}
    flow = {
        "name": "image check",
        "blocks": [
            {"name": "s", "type": "start", "next": "pay"},
            {"name": "pay", "type": "external_callback", "next": "done"},
            {"name": "done", "type": "assign", "assign": {"paid": "data.amount"}},
        ],
    }
    deployed = call("POST", f"{gateway}/api/automation/flows", flow, headers)
    url = deployed["triggers"][0]["callbackUrl"]
    deadline = time.monotonic() + 60
    while True:  # the gateway learns the flow from the registry
        try:
            started = call(
                "POST", f"{gateway}/api/automation/flow/{deployed['flowId']}/execute", {}, headers
            )
            break
        except urllib.error.HTTPError as error:
            if error.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    execution = f"{gateway}/api/automation/executions/{started['executionId']}"

    def status() -> Any:
        try:
            return call("GET", execution, headers=headers)
        except urllib.error.HTTPError as error:
            if error.code == 404:  # a start is carried out asynchronously
                return None
            raise

    called = False
    while time.monotonic() < deadline:
        state = status()
        if state and state["status"] == "waiting" and not called:
            call("POST", url, {"amount": 7})
            called = True
        if state and state["status"] == "completed":
            return bool(state["vars"] == {"paid": 7})
        time.sleep(0.3)
    return False


def drop(run: str) -> None:
    """Drop the run's databases and topics: a broker keeping every run's partitions costs
    each later run (bench/analysis.md)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from pymongo import MongoClient

    with MongoClient(os.environ["MONGODB_URL"]) as client:  # type: ignore[var-annotated]
        for suffix in ("engine", "auth"):
            client.drop_database(f"{run}_{suffix}")

    async def delete_topics() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
        await admin.start()
        try:
            names = [t for t in await admin.list_topics() if t.startswith(f"{run}.")]
            if names:
                await admin.delete_topics(names)
        finally:
            await admin.close()

    asyncio.run(delete_topics())


@contextlib.contextmanager
def started(
    services: list[str], env: dict[str, dict[str, str]], logs: Path
) -> Iterator[dict[str, Running]]:
    running: dict[str, Running] = {}
    try:
        for service in ORDER:
            if service in services:
                running[service] = Running(service, env[service], logs)
        yield running
    finally:
        for one in running.values():
            one.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("services", nargs="+", choices=ORDER)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    ports = {service: free_port() for service in ORDER}
    run = f"images_{secrets.token_hex(3)}"
    env = settings(ports, run)
    logs = args.report.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"services": {}}
    try:
        check(args.services, env, ports, logs, report)
    finally:
        drop(run)
    report["passed"] = report.get("callback_resumed_an_execution", False) and all(
        r["ready"] and r["uid"] != "0" and not r["build_tools"] and not r["written"]
        for r in report["services"].values()
    )
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["passed"] else 1)


def check(
    services: list[str],
    env: dict[str, dict[str, str]],
    ports: dict[str, int],
    logs: Path,
    report: dict[str, Any],
) -> None:
    with started(services, env, logs) as running:
        for service, one in running.items():
            ok = ready(f"http://127.0.0.1:{ports[service]}/readyz", within=90)
            report["services"][service] = {
                "image": one.image,
                "entrypoint": one.entrypoint,
                "ready": ok,
                # from its container's start (the three start together)
                "ready_seconds": round(time.monotonic() - one.began, 1) if ok else None,
                "user": one.user,
                "uid": one.run("python", "-c", "import os; print(os.getuid())"),
                "build_tools": [
                    t
                    for t in one.run(
                        "python",
                        "-c",
                        f"import shutil; print(*[t for t in {BUILD_TOOLS!r} if shutil.which(t)])",
                    ).split()
                ],
            }
        if all(r["ready"] for r in report["services"].values()) and len(running) == len(ORDER):
            report["callback_resumed_an_execution"] = resume_through(
                f"http://127.0.0.1:{ports['gateway']}", env["engine"]["HOOKFLOW_ENGINE_ADMIN_KEY"]
            )
        for service, one in running.items():
            report["services"][service]["written"] = one.written()
    for service, one in running.items():
        one.remove()
        listed = json.loads(buildah("images", "--json", one.image) or "[]")
        report["services"][service]["size"] = listed[0]["size"] if listed else None


if __name__ == "__main__":
    main()
