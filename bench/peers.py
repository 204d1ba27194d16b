"""The raw peers the benchmarks compare hookflow with, each run as its own process.

    python bench/peers.py http --port P                  bare Starlette: parse JSON, answer 200
    python bench/peers.py http-kafka --port P --bootstrap B --topic T   ... and await a send
    python bench/peers.py produce --bootstrap B --topic T --seconds S --concurrency C
    python bench/peers.py consume-raw --bootstrap B --topic T --count N
    python bench/peers.py consume-faststream --bootstrap B --topic T --count N
    python bench/peers.py claim --mongodb URL --database D --count N

Each measuring command prints one JSON object.
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

import uvloop

from schemas.events import ActivateTrigger

PAYLOAD = (
    ActivateTrigger(
        activationId=str(uuid.uuid4()),
        flowId=str(uuid.uuid4()),
        triggerId=str(uuid.uuid4()),
        data={"orderId": "o-1", "amount": 25.5},
        receivedAt=1,
    )
    .model_dump_json()
    .encode()
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def http_peer(
    port: int, bootstrap: str | None = None, topic: str = "", server: str = "httptools"
) -> None:
    """Bare Starlette: parse the JSON body and answer 200; with `bootstrap`, first await a
    raw aiokafka send of it (acks=all, idempotent): the gateway's own work, nothing else.
    `server`: uvicorn's `httptools` or `h11` protocol, or `guarded`, the services' own
    (httptools with the HTTP limits, `schemas.server`)."""
    import contextlib
    from collections.abc import AsyncIterator

    import uvicorn
    from aiokafka import AIOKafkaProducer
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    producer: dict[str, AIOKafkaProducer] = {}

    async def accept(request: Request) -> Response:
        body = await request.json()
        if bootstrap:
            await producer["p"].send_and_wait(
                topic, json.dumps(body).encode(), key=request.url.path.encode()
            )
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return Response(status_code=200)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if bootstrap:
            producer["p"] = AIOKafkaProducer(
                bootstrap_servers=bootstrap, acks="all", enable_idempotence=True
            )
            await producer["p"].start()
        yield
        if bootstrap:
            await producer["p"].stop()

    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/{path:path}", accept, methods=["POST"])],
        lifespan=lifespan,
    )
    protocol: Any = server
    if server == "guarded":
        from schemas.server import GuardedProtocol

        protocol = GuardedProtocol
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http=protocol,
        log_level="warning",
        access_log=False,
    )


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    """The Kafka ceiling: send_and_wait with the gateway's producer settings."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=args.linger_ms,
    )
    await producer.start()
    latencies: list[float] = []
    end = time.perf_counter() + args.seconds

    async def loop(worker: int) -> None:
        i = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            await producer.send_and_wait(args.topic, PAYLOAD, key=f"{worker}-{i}".encode())
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    await producer.stop()
    return {
        "throughput": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "messages": len(latencies),
    }


async def fill(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5)
    await producer.start()
    for i in range(args.count):
        await producer.send(args.topic, PAYLOAD, key=str(i).encode())
    await producer.flush()
    await producer.stop()
    return {"filled": args.count}


BATCH_SIZE, BATCH_TIMEOUT_MS = 500, 20  # as the engine's defaults


def work(body: ActivateTrigger) -> None:
    """The handler work both consumers do: the model is decoded and checked."""
    assert body.activationId


async def consume_raw(args: argparse.Namespace) -> dict[str, Any]:
    """A raw aiokafka consumer in batches (`getmany`), committing after each batch."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen, started = 0, None
    while seen < args.count:
        batches = await consumer.getmany(timeout_ms=BATCH_TIMEOUT_MS, max_records=BATCH_SIZE)
        for records in batches.values():
            started = started or time.perf_counter()
            for record in records:
                work(ActivateTrigger.model_validate_json(record.value))
                seen += 1
        if batches:
            await consumer.commit()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await consumer.stop()
    return {"throughput": seen / elapsed, "messages": seen}


async def consume_faststream(args: argparse.Namespace) -> dict[str, Any]:
    """The engine's way: a FastStream batch subscriber, each record decoded, commit after."""
    from faststream import AckPolicy
    from faststream.kafka import KafkaBroker
    from faststream.kafka.annotations import KafkaMessage

    broker = KafkaBroker(args.bootstrap, logger=None)
    done = asyncio.Event()
    state = {"seen": 0, "started": 0.0}

    async def records_only(message: Any) -> list[Any]:
        return []  # as the engine: each record is validated on its own in the handler

    @broker.subscriber(
        args.topic,
        batch=True,
        max_records=BATCH_SIZE,
        batch_timeout_ms=BATCH_TIMEOUT_MS,
        group_id=f"fs-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=records_only,
    )
    async def handle(payload: list[ActivateTrigger], message: KafkaMessage) -> None:
        state["started"] = state["started"] or time.perf_counter()
        for record in message.raw_message:
            work(ActivateTrigger.model_validate_json(record.value))
            state["seen"] += 1
        if state["seen"] >= args.count:
            done.set()

    await broker.start()
    await done.wait()
    elapsed = time.perf_counter() - state["started"]
    await broker.stop()
    return {"throughput": state["seen"] / elapsed, "messages": state["seen"]}


async def claim(args: argparse.Namespace) -> dict[str, Any]:
    """The MongoDB ceiling of a resume: the compare-and-set claim of one wait, in a loop."""
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(args.mongodb)
    waits = client[args.database]["peer_waits"]
    await waits.drop()
    total = args.count + args.background  # the same number of waits as the engine has
    for start in range(0, total, 5000):
        await waits.insert_many(
            [{"_id": f"w{i}", "activationId": None} for i in range(start, min(total, start + 5000))]
        )
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(args.count):
        t = time.perf_counter()
        await waits.find_one_and_update(
            {"_id": f"w{i}", "activationId": {"$in": [None, "a"]}},
            {"$set": {"activationId": f"a{i}"}},
        )
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - started
    await waits.drop()
    await client.close()
    return {
        "throughput": args.count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "command",
        choices=[
            "http",
            "http-kafka",
            "produce",
            "fill",
            "consume-raw",
            "consume-faststream",
            "claim",
        ],
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", default="bench.peer")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--linger-ms", type=int, default=1)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--background", type=int, default=0)
    parser.add_argument("--mongodb", default="mongodb://127.0.0.1:27217/")
    parser.add_argument("--database", default="bench_peer")
    parser.add_argument("--server", choices=("httptools", "h11", "guarded"), default="httptools")
    args = parser.parse_args()
    if args.command == "http":
        http_peer(args.port, server=args.server)
        return
    if args.command == "http-kafka":
        http_peer(args.port, args.bootstrap, args.topic)
        return
    runner = {
        "produce": produce,
        "fill": fill,
        "consume-raw": consume_raw,
        "consume-faststream": consume_faststream,
        "claim": claim,
    }[args.command]
    json.dump(uvloop.run(runner(args)), sys.stdout)


if __name__ == "__main__":
    main()
