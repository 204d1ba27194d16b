"""The raw peers the benchmarks compare hookflow with, each run as its own process.

    python bench/peers.py http --port P                  bare Starlette: parse JSON, answer 200
    python bench/peers.py http-kafka --port P --bootstrap B --topic T   ... and await a send
    python bench/peers.py produce --bootstrap B --topic T --seconds S --concurrency C
    python bench/peers.py produce-rdkafka ...          the same with librdkafka (confluent-kafka)
    python bench/peers.py consume-raw --bootstrap B --topic T --count N
    python bench/peers.py consume-rdkafka ...          the same with librdkafka
    python bench/peers.py consume-faststream --bootstrap B --topic T --count N
    python bench/peers.py consume-faststream-rdkafka ...   FastStream's librdkafka broker
    python bench/peers.py claim --mongodb URL --database D --count N

Each measuring command prints one JSON object.
"""

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
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
    port: int,
    bootstrap: str | None = None,
    topic: str = "",
    server: str = "httptools",
    client: str = "aiokafka",
) -> None:
    """Bare Starlette: parse the JSON body and answer 200; with `bootstrap`, first await a
    send of it (acks=all, idempotent) by `client`: a raw `aiokafka` producer (the gateway's
    own work, nothing else), a raw `rdkafka` one (librdkafka), or a FastStream publisher on
    either (`faststream`, `faststream-rdkafka`). `server`: uvicorn's `httptools` or `h11`
    protocol, or `guarded`, the services' own (httptools with the HTTP limits,
    `schemas.server`)."""
    import contextlib
    from collections.abc import AsyncIterator

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    send: dict[str, Callable[[bytes, bytes], Awaitable[None]]] = {}

    async def accept(request: Request) -> Response:
        body = await request.json()
        if bootstrap:
            await send["s"](json.dumps(body).encode(), request.url.path.encode())
        return Response(status_code=200)

    async def healthz(request: Request) -> Response:
        return Response(status_code=200)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not bootstrap:
            yield
            return
        async with _sender(client, bootstrap, topic, 1) as send["s"]:
            yield

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


@contextlib.asynccontextmanager
async def _sender(
    client: str, bootstrap: str, topic: str, linger_ms: int
) -> AsyncIterator[Callable[[bytes, bytes], Awaitable[None]]]:
    """An acknowledged send (acks=all, idempotent, `linger_ms`) of a value with a key."""
    if client == "aiokafka":
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms
        )
        await producer.start()

        async def send(value: bytes, key: bytes) -> None:
            await producer.send_and_wait(topic, value, key=key)

        try:
            yield send
        finally:
            await producer.stop()
    elif client == "rdkafka":
        async with _rdkafka(bootstrap, topic, linger_ms) as rdkafka_send:
            yield rdkafka_send
    else:
        broker: Any
        if client == "faststream":
            from faststream.kafka import KafkaBroker

            broker = KafkaBroker(
                bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms, logger=None
            )
        else:
            from faststream.confluent import KafkaBroker as ConfluentBroker

            broker = ConfluentBroker(
                bootstrap, acks="all", enable_idempotence=True, linger_ms=linger_ms, logger=None
            )
        publisher = broker.publisher(topic)
        await broker.start()

        async def send(value: bytes, key: bytes) -> None:
            await publisher.publish(value, key=key)

        try:
            yield send
        finally:
            await broker.stop()


@contextlib.asynccontextmanager
async def _rdkafka(
    bootstrap: str, topic: str, linger_ms: int
) -> AsyncIterator[Callable[[bytes, bytes], Awaitable[None]]]:
    """librdkafka's producer, a thread serving its delivery reports, each completing the
    asyncio future its sender awaits."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": linger_ms,
        }
    )
    loop = asyncio.get_running_loop()
    running = True

    def serve() -> None:
        while running:
            producer.poll(0.05)

    def settle(future: asyncio.Future[None], error: Any) -> None:
        if not future.done():
            future.set_exception(KafkaException(error)) if error else future.set_result(None)

    async def send(value: bytes, key: bytes) -> None:
        future: asyncio.Future[None] = loop.create_future()

        def delivered(error: Any, _: Any) -> None:
            loop.call_soon_threadsafe(settle, future, error)

        producer.produce(topic, value, key=key, on_delivery=delivered)
        await future

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield send
    finally:
        running = False
        server.join()
        producer.flush(10)


def cpu_seconds() -> float:
    """This process's CPU time, every thread's (librdkafka's own threads too)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def sends(
    args: argparse.Namespace, send: Callable[[bytes], Awaitable[None]]
) -> dict[str, Any]:
    """`args.concurrency` senders each awaiting one acknowledged send after another for
    `args.seconds`: messages/s, latency, and CPU per message (the client's cost)."""
    latencies: list[float] = []
    end = time.perf_counter() + args.seconds

    async def loop(worker: int) -> None:
        i = 0
        while time.perf_counter() < end:
            started = time.perf_counter()
            await send(f"{worker}-{i}".encode())
            latencies.append(time.perf_counter() - started)
            i += 1

    cpu, started = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(loop(w) for w in range(args.concurrency)))
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    return {
        "throughput": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "messages": len(latencies),
        "cpu_us": cpu / max(1, len(latencies)) * 1e6,
    }


async def produce(args: argparse.Namespace) -> dict[str, Any]:
    """The Kafka ceiling: acknowledged sends with the gateway's producer settings, by
    `args.client` (`produce`: aiokafka, `produce-rdkafka`: librdkafka)."""
    async with _sender(args.client, args.bootstrap, args.topic, args.linger_ms) as send:
        return await sends(args, lambda key: send(PAYLOAD, key))


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


async def consume_rdkafka(args: argparse.Namespace) -> dict[str, Any]:
    """The same with librdkafka: `consume` of up to a batch in a worker thread (it blocks),
    each record decoded, a synchronous commit after each batch."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"rd-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    loop = asyncio.get_running_loop()
    seen, started = 0, None
    while seen < args.count:
        records = await loop.run_in_executor(
            None, consumer.consume, BATCH_SIZE, BATCH_TIMEOUT_MS / 1000
        )
        for record in records:
            if record.error():
                continue
            started = started or time.perf_counter()
            work(ActivateTrigger.model_validate_json(record.value() or b""))
            seen += 1
        if records:
            await loop.run_in_executor(None, lambda: consumer.commit(asynchronous=False))
    elapsed = time.perf_counter() - (started or time.perf_counter())
    await loop.run_in_executor(None, consumer.close)
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


async def consume_faststream_rdkafka(args: argparse.Namespace) -> dict[str, Any]:
    """The engine's way on FastStream's librdkafka broker (`faststream.confluent`): a batch
    subscriber, each record decoded, commit after."""
    from faststream import AckPolicy
    from faststream.confluent import KafkaBroker
    from faststream.confluent.annotations import KafkaMessage

    broker = KafkaBroker(args.bootstrap, logger=None)
    done = asyncio.Event()
    state = {"seen": 0, "started": 0.0}

    async def records_only(message: Any) -> list[Any]:
        return []

    @broker.subscriber(
        args.topic,
        batch=True,
        max_records=BATCH_SIZE,
        polling_interval=BATCH_TIMEOUT_MS / 1000,
        group_id=f"fsr-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=records_only,
    )
    async def handle(payload: list[ActivateTrigger], message: KafkaMessage) -> None:
        state["started"] = state["started"] or time.perf_counter()
        records: tuple[Any, ...] = message.raw_message  # type: ignore[assignment]  # a batch
        for record in records:
            work(ActivateTrigger.model_validate_json(record.value()))
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
            "produce-rdkafka",
            "fill",
            "consume-raw",
            "consume-rdkafka",
            "consume-faststream",
            "consume-faststream-rdkafka",
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
    parser.add_argument(
        "--client",
        choices=("aiokafka", "rdkafka", "faststream", "faststream-rdkafka"),
        default="aiokafka",
    )
    args = parser.parse_args()
    if args.command == "http":
        http_peer(args.port, server=args.server)
        return
    if args.command == "http-kafka":
        http_peer(args.port, args.bootstrap, args.topic, client=args.client)
        return
    if args.command == "produce-rdkafka":
        args.client = "rdkafka"
    runner = {
        "produce": produce,
        "produce-rdkafka": produce,
        "fill": fill,
        "consume-raw": consume_raw,
        "consume-rdkafka": consume_rdkafka,
        "consume-faststream": consume_faststream,
        "consume-faststream-rdkafka": consume_faststream_rdkafka,
        "claim": claim,
    }[args.command]
    json.dump(uvloop.run(runner(args)), sys.stdout)


if __name__ == "__main__":
    main()
