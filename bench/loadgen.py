"""Open- and closed-loop HTTP load generator, run as its own process.

    python bench/loadgen.py --url URL [--url URL ...] --mode open --rate 500 --seconds 10
    python bench/loadgen.py --url URL --mode closed --concurrency 32 --seconds 10

Open loop sends at a constant arrival rate whatever the server does, and measures each
latency from the request's *scheduled* time, so a stalled server shows in the tail
instead of silently slowing the load (coordinated omission). Requests cycle over the
given URLs. It speaks HTTP/1.1 with keep-alive over plain asyncio streams so that the
client costs little CPU. Prints one JSON object.
"""

import argparse
import asyncio
import contextlib
import json
import sys
import time
from urllib.parse import urlsplit

import uvloop


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, dict[str, str]]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if length:
            await self.reader.readexactly(length)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return parts.hostname or "127.0.0.1", parts.port or 80, raw


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    requests = [build(u, args.body.encode(), args.header) for u in args.url]
    host, port = requests[0][0], requests[0][1]
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.connections):
        pool.put_nowait(Connection(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent: list[tuple[float, int]] = []  # (scheduled epoch seconds, URL index)
    errors = 0

    async def one(index: int, scheduled: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status, _ = await conn.request(requests[index % len(requests)][2])
            latencies.append(time.perf_counter() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1
            if args.record_sends and 200 <= status < 300:
                sent.append(
                    (time.time() - (time.perf_counter() - scheduled), index % len(requests))
                )
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn.close()
        finally:
            pool.put_nowait(conn)

    started_at = time.time()
    started = time.perf_counter()
    end = started + args.seconds
    tasks: set[asyncio.Task[None]] = set()
    index = 0
    if args.mode == "open":
        interval = 1.0 / args.rate
        while (scheduled := started + index * interval) < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(index, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            index += 1
    else:

        async def worker(offset: int) -> None:
            i = offset
            while time.perf_counter() < end:
                await one(i, time.perf_counter())
                i += args.concurrency

        await asyncio.gather(*(worker(k) for k in range(args.concurrency)))
        index = len(latencies) + errors
    if tasks:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    elapsed = time.perf_counter() - started
    while not pool.empty():
        pool.get_nowait().close()
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "mode": args.mode,
        "started_at": started_at,
        "offered_rate": args.rate if args.mode == "open" else None,
        "requests": index,
        "ok": ok,
        "statuses": statuses,
        "errors": errors,
        "seconds": elapsed,
        "throughput": ok / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "sent": sent if args.record_sends else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--mode", choices=["open", "closed"], default="open")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--body", default='{"orderId": "o-1", "amount": 25.5}')
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument(
        "--record-sends",
        action="store_true",
        help="report when each accepted request was scheduled, by URL index",
    )
    args = parser.parse_args()
    if args.mode == "closed":
        args.connections = args.concurrency
    json.dump(uvloop.run(run(args)), sys.stdout)


if __name__ == "__main__":
    main()
