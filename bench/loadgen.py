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
import gc
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

    async def request(self, raw: bytes) -> int:
        """Send one request, read its answer; its status. Parsed as little as it can be:
        the generator must cost the machine less than what it measures."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
            if length:
                await self.reader.readexactly(length)
        if b"\r\nconnection: close" in head:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build(
    url: str, body: bytes, headers: list[str], method: str = "POST"
) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if method == "GET":
        body = b""
    framing = ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        *(framing if method != "GET" else []),
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
    requests = [build(u, args.body.encode(), args.header, args.method) for u in args.url]
    host, port = requests[0][0], requests[0][1]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent: list[tuple[float, int]] = []  # (scheduled epoch seconds, URL index)
    errors = 0
    started_at = time.time()
    started = time.perf_counter()
    end = started + args.seconds
    index = 0  # the next request due (open loop)
    slow = 0.02  # requests slower than this are listed with when they were due
    slowest: list[tuple[float, float]] = []
    attempted = 0

    async def one(conn: Connection, i: int, scheduled: float) -> None:
        nonlocal errors, attempted
        attempted += 1
        try:
            status = await conn.request(requests[i % len(requests)][2])
            latency = time.perf_counter() - scheduled
            latencies.append(latency)
            if latency > slow:
                slowest.append((scheduled - started, latency))
            statuses[status] = statuses.get(status, 0) + 1
            if args.record_sends and 200 <= status < 300:
                sent.append((time.time() - (time.perf_counter() - scheduled), i % len(requests)))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn.close()

    async def scheduled_worker() -> None:
        # open loop: each connection takes the next request due, waits for its time if
        # it is early, and counts its latency from that time, however late it is sent
        # (a stalled server shows in the tail instead of slowing the load)
        nonlocal index
        conn = Connection(host, port)
        interval = 1.0 / args.rate
        while True:
            i = index
            index += 1
            scheduled = started + i * interval
            if scheduled >= end:
                break
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await one(conn, i, scheduled)
        conn.close()

    async def closed_worker(offset: int) -> None:
        conn = Connection(host, port)
        i = offset
        while time.perf_counter() < end:
            await one(conn, i, time.perf_counter())
            i += args.concurrency
        conn.close()

    gc.disable()  # the generator's own pauses would count as the server's latency
    try:
        workers = (
            [scheduled_worker() for _ in range(args.connections)]
            if args.mode == "open"
            else [closed_worker(k) for k in range(args.concurrency)]
        )
        # what has not been answered 30 s after the last request was due is not counted
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*workers), timeout=args.seconds + 30)
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "mode": args.mode,
        "started_at": started_at,
        "offered_rate": args.rate if args.mode == "open" else None,
        "requests": attempted,
        "ok": ok,
        "statuses": statuses,
        "errors": errors,
        "seconds": elapsed,
        "throughput": ok / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        # when the slowest requests were due (seconds into the run): a stall shows as
        # many at one moment, a loaded machine as a few everywhere
        "slowest": [
            (round(at, 3), round(latency * 1000, 1))
            for at, latency in sorted(slowest, key=lambda x: -x[1])[:20]
        ],
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
    parser.add_argument("--method", choices=["POST", "GET"], default="POST")
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
