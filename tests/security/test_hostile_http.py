"""Hostile HTTP clients, against every service reached directly (the contract's
"Hostile input"): oversized and too many headers, slow headers, stalled bodies, idle
connections by the hundred. Each service answers with the contract's codes, closes what
it must, and keeps serving everyone else."""

import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ..conftest import MAX_CONNECTIONS, Product
from ..e2e.driver import Driver

SERVICES = ("gateway", "engine", "auth")
CLOSE_WITHIN = 10.0  # seconds the contract allows a slow client
MARGIN = 8.0  # for a loaded 2-core machine


def _address(product: Product, service: str) -> tuple[str, int]:
    url = urlsplit(getattr(product, service))
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port


@contextlib.asynccontextmanager
async def _connection(
    product: Product, service: str
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(*_address(product, service))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _answer(reader: asyncio.StreamReader, within: float) -> tuple[int | None, bytes]:
    """The status and body the server sent before closing (None: closed without one)."""
    data = b""
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                data += chunk
    if not data:
        return None, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _request(head: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: hookflow\r\n" + head + b"\r\n"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("case", "head"),
    [
        ("line", b"X-Long: " + b"a" * (8 * 1024 + 1) + b"\r\n"),
        ("count", b"".join(b"X-H%d: v\r\n" % i for i in range(101))),
        ("section", b"".join(b"X-S%d: %s\r\n" % (i, b"s" * 7000) for i in range(10))),
    ],
)
async def test_headers_over_the_limits_get_431_with_code_4310(
    driver: Driver, service: str, case: str, head: bytes
) -> None:
    async with _connection(driver.product, service) as (reader, writer):
        writer.write(_request(head))
        status, body = await _answer(reader, 10)
    assert status == 431, case
    assert json.loads(body)["code"] == 4310


@pytest.mark.parametrize("service", SERVICES)
async def test_headers_within_the_limits_are_served(driver: Driver, service: str) -> None:
    head = b"".join(b"X-S%d: %s\r\n" % (i, b"s" * 600) for i in range(95))  # 57 KiB
    async with _connection(driver.product, service) as (reader, writer):
        writer.write(_request(head + b"Connection: close\r\n"))
        status, _ = await _answer(reader, 10)
    assert status == 200


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.parametrize("service", SERVICES)
async def test_a_header_bomb_is_cut_off_and_costs_no_memory(driver: Driver, service: str) -> None:
    pid = driver.product.pids.get(service)
    assert pid is not None, "this test reads the memory of the processes it started"
    before = _rss_kib(pid)
    sent = 0
    chunk = b"a" * 65536
    async with _connection(driver.product, service) as (reader, writer):
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: hookflow\r\nX-Bomb: ")
        with contextlib.suppress(ConnectionError):
            while sent < 200 * 1024 * 1024:  # 200 MiB, if the server kept reading
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        status, _ = await _answer(reader, 5)
    assert sent < 16 * 1024 * 1024, f"the server took {sent} bytes of one header"
    assert status in (431, None)  # the answer is lost when the socket resets under a send
    grown = _rss_kib(pid) - before
    assert grown < 32 * 1024, f"{service} grew by {grown} KiB"


async def test_slow_headers_and_stalled_bodies_are_closed_on_every_service(
    driver: Driver,
) -> None:
    async def slowloris(service: str) -> float:
        """Send a header byte a second; how long until the server closes."""
        started = time.monotonic()
        async with _connection(driver.product, service) as (reader, writer):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: hookflow\r\n")
            while time.monotonic() - started < CLOSE_WITHIN + MARGIN:
                try:
                    writer.write(b"X")
                    await writer.drain()
                    async with asyncio.timeout(1):
                        await reader.read(65536)
                except TimeoutError:
                    continue
                except ConnectionError:
                    pass
                break  # an answer (408) or the end: the server is done with it
        return time.monotonic() - started

    async def stalled(service: str) -> float:
        """Send 10 of 100 bytes of a body, then nothing."""
        path = {"gateway": "/api/automation/flow/x/execute", "engine": "/api/automation/flows"}
        started = time.monotonic()
        async with _connection(driver.product, service) as (reader, writer):
            writer.write(
                f"POST {path.get(service, '/api/users/login')} HTTP/1.1\r\nHost: hookflow\r\n"
                f"Content-Type: application/json\r\nX-Admin-Key: {driver.product.admin_key}\r\n"
                'Content-Length: 100\r\n\r\n{"a": 1234'.encode()
            )
            await _answer(reader, CLOSE_WITHIN + MARGIN)
        return time.monotonic() - started

    async def idle(service: str) -> float:
        """Connect and send nothing at all."""
        started = time.monotonic()
        async with _connection(driver.product, service) as (reader, _):
            await _answer(reader, CLOSE_WITHIN + MARGIN)
        return time.monotonic() - started

    attacks = [(kind, service) for kind in (slowloris, stalled, idle) for service in SERVICES]
    held = await asyncio.gather(*(kind(service) for kind, service in attacks))
    for (kind, service), seconds in zip(attacks, held, strict=True):
        assert seconds < CLOSE_WITHIN + MARGIN - 0.5, f"{kind.__name__} held {service} {seconds}s"


async def test_the_gateway_closes_the_connection_after_its_408(driver: Driver) -> None:
    flow = await driver.order_flow()
    callback = urlsplit(flow["triggers"][0]["callbackUrl"]).path
    async with _connection(driver.product, "gateway") as (reader, writer):
        writer.write(
            f"POST {callback} HTTP/1.1\r\nHost: hookflow\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{".encode()
        )
        answer = b""
        for _ in range(int(CLOSE_WITHIN + MARGIN)):  # a byte a second: never idle long
            try:
                async with asyncio.timeout(1):
                    answer = await reader.read(65536)
                break
            except TimeoutError:
                writer.write(b" ")
                await writer.drain()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"connection: close" in answer.lower()
        with contextlib.suppress(ConnectionError):
            async with asyncio.timeout(MARGIN):
                while await reader.read(65536):
                    pass  # closed: the read ends


@pytest.mark.parametrize("service", SERVICES)
async def test_connections_over_the_cap_get_503_and_the_service_recovers(
    driver: Driver, service: str
) -> None:
    held = [
        await asyncio.open_connection(*_address(driver.product, service))
        for _ in range(MAX_CONNECTIONS)
    ]
    try:
        async with _connection(driver.product, service) as (reader, writer):
            writer.write(_request(b""))
            status, body = await _answer(reader, 10)
        assert status == 503
        assert json.loads(body)["code"] == 5033
    finally:
        for _, writer in held:
            writer.close()
    async with httpx.AsyncClient(timeout=10) as client:
        async with asyncio.timeout(10):
            while (
                await client.get(f"{getattr(driver.product, service)}/readyz")
            ).status_code != 200:
                await asyncio.sleep(0.1)
    if service == "gateway":  # its Kafka client kept its files: a callback is accepted
        flow = await driver.deploy(
            {
                "name": "Open door",
                "blocks": [{"name": "Hook", "type": "external_callback"}],
            }
        )
        response = await driver.http.post(flow["triggers"][0]["callbackUrl"], json={})
        assert response.status_code == 200


async def test_a_thousand_idle_sockets_at_1024_open_files_leave_kafka_its_files(
    driver: Driver, tmp_path: Path
) -> None:
    """A gateway limited to 1,024 open files (a common default) takes at most that less
    its reserve of client connections: the rest are refused at once, its Kafka client
    never runs out of files, and it serves again as soon as the sockets go."""
    flow = await driver.deploy(
        {"name": "Files", "blocks": [{"name": "Hook", "type": "external_callback"}]}
    )
    port = _free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": driver.product.kafka,
        "HOOKFLOW_GATEWAY_PORT": str(port),
        "HOOKFLOW_GATEWAY_TOPIC_PREFIX": driver.product.topic_prefix,
        "HOOKFLOW_GATEWAY_AUTH_URL": driver.product.auth,
    }
    env.pop("HOOKFLOW_GATEWAY_HTTP_MAX_CONNECTIONS", None)
    log = tmp_path / "gateway.log"

    def files_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=files_1024,  # a limit of the child alone
        )
    base = f"http://127.0.0.1:{port}"
    callback = base + urlsplit(flow["triggers"][0]["callbackUrl"]).path
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            async with asyncio.timeout(60):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{base}/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
            held = []
            for _ in range(1000):
                held.append(await asyncio.open_connection("127.0.0.1", port))
            refused = 0
            for reader, _ in held[800:]:
                status, body = await _answer(reader, 5)
                refused += status == 503 and json.loads(body)["code"] == 5033
            assert refused == 200  # 1,024 files less the reserve of 256: 768 clients
            for _, writer in held:
                writer.close()
            async with asyncio.timeout(30):
                while (await client.post(callback, json={})).status_code != 200:
                    await asyncio.sleep(0.2)
    finally:
        process.terminate()
        async with asyncio.timeout(20):
            await process.wait()
    assert "Too many open files" not in log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
