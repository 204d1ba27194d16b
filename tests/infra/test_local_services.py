"""`make up`'s service script: a service is running when it answers, not when its
process merely exists (one just killed, shutting down or hung is replaced)."""

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from ..conftest import ROOT

pytestmark = pytest.mark.integration
SCRIPT = ROOT / "deploy" / "local" / "services.sh"


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_a_service_that_exists_but_does_not_answer_is_replaced(
    kafka_bootstrap: str, mongodb_url: str, tmp_path: Path
) -> None:
    run = f"t_{uuid.uuid4().hex[:8]}"
    engine, auth, gateway, stub = _free_ports(4)
    env = {
        **os.environ,
        "HOOKFLOW_LOCAL_DIR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MONGODB_URL": mongodb_url,
        "HOOKFLOW_ENGINE_PORT": str(engine),
        "HOOKFLOW_AUTH_PORT": str(auth),
        "HOOKFLOW_GATEWAY_PORT": str(gateway),
        "HOOKFLOW_STUB_PORT": str(stub),
        **{f"HOOKFLOW_{s}_TOPIC_PREFIX": run for s in ("ENGINE", "AUTH", "GATEWAY")},
        "HOOKFLOW_ENGINE_CONSUMER_GROUP": run,
        "HOOKFLOW_ENGINE_TOPIC_PARTITIONS": "1",
        "HOOKFLOW_ENGINE_DATABASE": f"{run}_engine",
        "HOOKFLOW_AUTH_DATABASE": f"{run}_auth",
    }

    def script(command: str) -> str:
        done = subprocess.run(  # noqa: S603  # the project's own script
            [str(SCRIPT), command], env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    script("start")
    pid = int((tmp_path / "run" / "gateway.pid").read_text())
    try:
        os.kill(pid, signal.SIGSTOP)  # alive, answering nothing: as one dying or hung
        assert not _answers(gateway)
        started = time.monotonic()
        said = script("start")
        assert "gateway is already running" not in said
        assert "replacing it" in said
        assert _answers(gateway)  # a gateway answers again on its port
        assert int((tmp_path / "run" / "gateway.pid").read_text()) != pid
        assert time.monotonic() - started < 60
        again = script("start")  # and one that answers is left alone
        assert "gateway is already running" in again
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        script("stop")
        client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
        with client as mongo:
            mongo.drop_database(f"{run}_engine")
            mongo.drop_database(f"{run}_auth")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
