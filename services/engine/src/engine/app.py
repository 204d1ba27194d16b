"""The engine's composition root: wires adapters, owns the lifespan, configures logging."""

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from pymongo import AsyncMongoClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import console
from engine.adapters import AuthServiceTokens, ExpressionWorkers, HttpxRunner, KafkaPublisher
from engine.adapters.traced import TracedHttp, TracedStore
from engine.batches import ConsumerConfig
from engine.catalog import Catalog, CatalogConfig
from engine.consumers import register
from engine.dead_letters import DeadLetters
from engine.egress import EgressPolicy, egress_client
from engine.http import Endpoints
from engine.metrics import Metrics
from engine.openapi import document
from engine.ports import Evaluator, HttpRunner, Publisher, Store, TokenResolver
from engine.settings import Settings
from engine.store import MongoStore
from engine.system import SystemSampler
from engine.usecases import Engine, EngineConfig
from engine.usecases.buffer import Buffer
from engine.usecases.conditions import Conditions
from engine.usecases.decide import Decisions
from engine.usecases.engine import UseCases
from engine.usecases.failures import Failures
from engine.usecases.queries import Queries
from engine.usecases.replay import Replays
from engine.usecases.requests import Requests
from engine.usecases.resume import Resumer
from engine.usecases.selection import Selection
from engine.usecases.start import Starts
from engine.usecases.stop import Stops
from engine.usecases.timers import Timers
from schemas import logs, topics
from schemas.events import StartExecution
from schemas.http import exception_handlers
from schemas.offsets import EndOffsets
from schemas.partitions import KeyPartitioner
from schemas.producer import Producer
from schemas.sealing import sealing_key
from schemas.topics import Topics, bootstrap_servers
from schemas.tracing import Tracing, provider_from_env

logger = logging.getLogger(__name__)
# the batches in flight finish this long at most when the engine stops
SHUTDOWN_BATCHES_SECONDS = 10.0

PURGE_INTERVAL_SECONDS = 3600


DAY_MS = 24 * 3600 * 1000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def wire_engine(
    catalog: Catalog,
    store: Store,
    publisher: Publisher,
    http: HttpRunner,
    tokens: TokenResolver,
    config: EngineConfig,
    clock: Callable[[], int],
    expressions: Evaluator,
) -> Engine:
    """The engine's use cases over its ports, behind its one door."""
    requests = Requests(http, expressions, clock)
    conditions = Conditions(store, expressions, clock)
    resumer = Resumer(store, publisher, requests, conditions, clock)
    buffer = Buffer(catalog, store, publisher, resumer, conditions, clock)
    starts = Starts(
        catalog,
        store,
        publisher,
        requests,
        buffer,
        clock,
        (tokens, config.activation_key, expressions),
    )
    selection = Selection(store, conditions, buffer)
    parts = (conditions, starts, selection, buffer)
    return Engine(
        UseCases(
            decisions=Decisions(catalog, store, publisher, tokens, config, clock, parts),
            starts=starts,
            buffer=buffer,
            timers=Timers(catalog, store, publisher, requests, buffer, clock),
            failures=Failures(catalog, store, publisher, clock),
            stops=Stops(store, publisher, clock),
            replays=Replays(store, publisher, config.activation_key, clock),
        )
    )


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    broker: KafkaBroker | None = None,
    configure_logging: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Build the engine: Kafka consumers, the management API and their shared adapters
    (tests inject a store, a broker and a tracer provider; else the OTEL_* variables
    decide whether it traces)."""
    settings = settings or Settings()
    if configure_logging:
        logs.configure("engine", settings.log_level, settings.log_format)
    names = Topics(settings.topic_prefix)
    manage_topics = broker is None  # an injected (test) broker has no real cluster behind it
    broker = broker or KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        acks="all",
        enable_idempotence=True,
        client_id="hookflow-engine",
        partitioner=KeyPartitioner(),  # Kafka's default partitioner, cheaper
        log_level=logging.DEBUG,
        logger=logging.getLogger("faststream"),  # through the service's log format
    )
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    if store is None:
        mongo = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=10_000
        )
        store = MongoStore(mongo[settings.database])
    client = httpx.AsyncClient(follow_redirects=False)  # to the auth service
    blocks = egress_client(EgressPolicy.parse(settings.egress_allow))  # http_request blocks
    config = EngineConfig(
        idempotency_retention_ms=int(settings.idempotency_retention_hours * 3600 * 1000),
        body_retention_ms=int(settings.activation_body_retention_days * DAY_MS),
        log_retention_ms=int(settings.activation_log_retention_days * DAY_MS),
        activation_key=(
            settings.activation_key.get_secret_value() if settings.activation_key else None
        ),
    )
    metrics = Metrics()
    # a batch's events and outcomes go through librdkafka (`schemas.producer`); a broker
    # given by a test (FastStream's in-memory one) takes them through its publishers
    producer = (
        Producer(
            settings.kafka_bootstrap_servers,
            settings.producer_linger_ms,
            512 * 1024,
            "hookflow-engine",
            on_renewed=metrics.producer_renewals.inc,
        )
        if manage_topics
        else None
    )
    publisher = KafkaPublisher(broker, names, producer)
    sealing = (
        sealing_key(settings.activation_key.get_secret_value()) if settings.activation_key else None
    )
    catalog_config = CatalogConfig(public_url=settings.public_url, sealing_key=sealing)
    catalog = Catalog(store, publisher, catalog_config, now_ms)
    tokens = AuthServiceTokens(
        client,
        settings.auth_url,
        settings.internal_key.get_secret_value() if settings.internal_key else None,
    )
    workers = ExpressionWorkers(
        settings.expression_workers,
        settings.expression_time_limit_ms / 1000,
        settings.expression_memory_mb * 1024 * 1024,
    )
    tracing = Tracing(tracer_provider or provider_from_env("engine"), "engine")
    http: HttpRunner = HttpxRunner(blocks, settings.http_max_response_bytes)
    decided_by: Store = store
    if tracing.enabled:  # spans for the store's calls and the http_request blocks
        decided_by = cast(Store, TracedStore(store, tracing))
        http = TracedHttp(http, tracing)
    engine = wire_engine(catalog, decided_by, publisher, http, tokens, config, now_ms, workers)
    letters = DeadLetters(engine, store, publisher, now_ms, sealing)
    finish_batches = register(
        broker,
        engine,
        letters,
        names,
        ConsumerConfig(
            group=settings.consumer_group,
            batch_size=settings.consumer_batch_size,
            batch_timeout_ms=settings.consumer_batch_timeout_ms,
            concurrency=settings.consumer_concurrency,
            depth=settings.consumer_depth,
            fetch_bytes=settings.consumer_fetch_bytes,
            attempts=settings.consumer_attempts,
            backoff_seconds=settings.retry_backoff_seconds,
        ),
        metrics,
        tracing,
    )
    state = {"ready": False}

    starts = broker.publisher(
        names.execution_starts,
        title="engine:execution-starts",
        schema=StartExecution,
        include_in_schema=False,
    )

    async def request_start(command: StartExecution) -> None:
        await starts.publish(command.model_dump(mode="json"), key=command.executionId.encode())

    async def ready() -> bool:
        if not state["ready"]:
            return False
        if mongo is not None:
            try:
                await mongo.admin.command("ping")
            except Exception:
                return False
        return True

    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    queries = Queries(store, letters)
    activation_key = settings.activation_key.get_secret_value() if settings.activation_key else None
    # the deployment's figures from Kafka's offsets (the console's system page); an
    # injected test broker has no cluster to read them from
    offsets = EndOffsets(settings.kafka_bootstrap_servers) if manage_topics else None
    sampler = SystemSampler(
        offsets or _no_offsets,
        offsets.committed if offsets else _no_committed,
        names,
        settings.consumer_group,
        settings.system_sample_seconds,
    )
    endpoints = Endpoints(
        catalog,
        queries,
        letters,
        request_start,
        now_ms,
        ready,
        metrics,
        tokens,
        (admin_key, activation_key),
        workers,
        engine,
        sampler.figures,
    )

    async def time_out_forever() -> None:
        """Fire due wait timeouts and expire buffered activations, twice a second (the
        store keeps the timers and the buffer)."""
        while True:
            try:
                fired = await engine.fire_timers() + await engine.sweep_buffer()
            except Exception:
                logger.exception("timers failed")
                fired = 0
            if not fired:  # a full round may leave more due: go on at once
                await asyncio.sleep(settings.timer_interval_ms / 1000)

    async def maintain_forever() -> None:
        """Off the hot path: purge expired idempotency keys, and what the activation log
        keeps past its retention."""
        while True:
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)
            try:
                purged = await store.purge(now_ms(), config.idempotency_retention_ms)
                logger.info("idempotency keys purged", extra={"count": purged})
                bodies, records = await store.purge_activations(
                    now_ms(), config.body_retention_ms, config.log_retention_ms
                )
                logger.info("activation log purged", extra={"bodies": bodies, "records": records})
            except Exception:
                logger.exception("maintenance failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.setup()
        if manage_topics:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                names,
                settings.topic_partitions,
                settings.topic_replication_factor,
            )
        if producer is not None:  # before the consumers: their first batch sends
            await producer.start()
        await broker.start()
        count = await catalog.republish_registry()
        # what exists now lives as long as the process: frozen out of the collector's
        # reach, a full collection no longer walks it in the middle of a batch
        gc.freeze()
        state["ready"] = True
        logger.info("engine ready", extra={"flows": count, "port": settings.port})
        maintenance = asyncio.create_task(maintain_forever())
        timers = asyncio.create_task(time_out_forever())
        sampling = asyncio.create_task(sampler.run()) if offsets else None
        try:
            yield
        finally:
            state["ready"] = False
            maintenance.cancel()
            timers.cancel()
            if sampling is not None:
                sampling.cancel()
            if offsets is not None:
                await offsets.close()
            try:  # stopped, a consumer commits no more: what is left comes again
                await asyncio.wait_for(finish_batches(), SHUTDOWN_BATCHES_SECONDS)
            except TimeoutError:
                logger.warning("batches in flight left unfinished at shutdown")
            await broker.stop()
            if producer is not None:  # after the consumers: no batch sends any more
                await producer.stop()
            await workers.close()
            await client.aclose()
            await blocks.aclose()
            tracing.shutdown()
            if mongo is not None:
                await mongo.close()

    async def openapi(request: Request) -> Response:
        return JSONResponse(document())

    app = Starlette(
        routes=[*endpoints.routes(), Route("/openapi.json", openapi), *console.routes()],
        lifespan=lifespan,
        exception_handlers=exception_handlers(logger),
    )
    app.state.broker = broker
    return app


async def _no_offsets(topic: str) -> dict[int, int]:
    return {}


async def _no_committed(group: str, topic: str) -> dict[int, int]:
    return {}


async def ensure_topics(
    bootstrap: str, names: Topics, partitions: int, replication_factor: int
) -> None:
    """Create the product's topics when missing: the flow registry compacted."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="hookflow-engine-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                names.name(base),
                num_partitions=1
                if base in topics.COMPACTED or base in topics.SHORT_LIVED
                else partitions,
                replication_factor=replication_factor,
                topic_configs=_topic_config(base, replication_factor),
            )
            for base in topics.ALL
            if names.name(base) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def _topic_config(base: str, replication_factor: int) -> dict[str, str]:
    """A topic's settings: the registry compacted, the quota reports kept a minute; on
    three replicas or more, a write is acknowledged once two hold it."""
    config = dict(topics.SHORT_LIVED.get(base, {}))
    if base in topics.COMPACTED:
        config["cleanup.policy"] = "compact"
    if replication_factor >= 3:
        config["min.insync.replicas"] = "2"
    return config
