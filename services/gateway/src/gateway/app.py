"""The gateway's composition root: Kafka, the registry, the token cache, the routes."""

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider
from pydantic import TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.asgi import ACTIVATE_PATH, GatewayApp, head_of_callback
from gateway.callbacks import BodyLimits, Callbacks
from gateway.frontdoor import FrontDoor
from gateway.guard import LagGuard
from gateway.http import Endpoints
from gateway.limits import TokenBuckets, TriggerQuotas
from gateway.metrics import Metrics
from gateway.openapi import document
from gateway.refusals import Refusals
from gateway.registry import Refresh, Registry
from gateway.sender import Sender
from gateway.settings import Settings
from gateway.signatures import Signatures
from gateway.signed import SignedBodies
from gateway.starts import Starts
from gateway.tokens import AuthClient, TokenCache
from schemas import logs
from schemas.events import (
    ActivateTrigger,
    ActivationRefused,
    AuthEvent,
    QuotaSpent,
    RolesChanged,
    StartExecution,
    TokenRevoked,
)
from schemas.flows import RateLimit
from schemas.forwarding import TrustedProxies
from schemas.frontdoor import Service
from schemas.http import exception_handlers
from schemas.offsets import EndOffsets
from schemas.partitions import KeyPartitioner
from schemas.producer import Producer
from schemas.topics import Topics, bootstrap_servers
from schemas.tracing import Tracing, provider_from_env
from schemas.users import TokenIntrospection

logger = logging.getLogger(__name__)

_AUTH_EVENT: TypeAdapter[AuthEvent] = TypeAdapter(AuthEvent)
_QUOTA_SPENT: TypeAdapter[QuotaSpent] = TypeAdapter(QuotaSpent)
_JSON = {"content-type": "application/json"}  # the messages are published as JSON bytes
ReadOffsets = Callable[[str], Awaitable[dict[int, int]]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(
    settings: Settings | None = None,
    *,
    broker: KafkaBroker | None = None,
    introspect: Callable[[str], Awaitable[TokenIntrospection]] | None = None,
    end_offsets: ReadOffsets | None = None,
    configure_logging: bool = True,
    tracer_provider: TracerProvider | None = None,
) -> Starlette:
    """Build the gateway; tests inject a test broker, an introspection function, offsets
    and a tracer provider (else the OTEL_* variables decide whether it traces)."""
    settings = settings or Settings()
    if configure_logging:
        logs.configure("gateway", settings.log_level, settings.log_format)
    topics = Topics(settings.topic_prefix)
    injected = broker is not None
    broker = broker or KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.kafka_batch_bytes,
        partitioner=KeyPartitioner(),  # Kafka's default partitioner, cheaper
        allow_auto_create_topics=False,
        metadata_max_age_ms=10_000,  # notice the registry topic soon after the engine makes it
        client_id="hookflow-gateway",
        log_level=logging.DEBUG,
        logger=logging.getLogger("faststream"),  # through the service's log format
    )
    client = httpx.AsyncClient()
    introspect = introspect or AuthClient(
        client,
        settings.auth_url,
        settings.auth_timeout_seconds,
        settings.internal_key.get_secret_value() if settings.internal_key else None,
    )
    tokens = TokenCache(
        introspect,
        settings.token_cache_size,
        settings.token_cache_ttl_seconds,
        settings.token_cache_negative_ttl_seconds,
    )
    tracing = Tracing(tracer_provider or provider_from_env("gateway"), "gateway")
    registry = Registry()
    metrics = Metrics(lambda: {"hit": tokens.hits, "miss": tokens.misses})
    state = {"ready": False}

    @broker.subscriber(
        topics.flow_registry,
        auto_offset_reset="earliest",
        title="gateway:flow-registry",
        description="Read from the beginning by every gateway instance: "
        "FlowVersionRegistered and TriggerRegistered records.",
    )
    async def on_registry(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)
        registry.apply(record.key, record.value, record.partition, record.offset)

    @broker.subscriber(
        topics.auth_events,
        auto_offset_reset="latest",
        title="gateway:auth-events",
        description="Drops cached tokens of revoked tokens and changed users.",
    )
    async def on_auth_event(message: KafkaMessage) -> None:
        try:
            event = _AUTH_EVENT.validate_json(message.body)
        except ValidationError:
            logger.warning("unreadable auth event skipped")
            return
        if isinstance(event, TokenRevoked):
            tokens.drop_token(event.tokenHash)
        elif isinstance(event, RolesChanged):
            tokens.drop_user(event.userId)
        else:
            tokens.drop_user(event.userId)

    def limit_of(key: str) -> RateLimit | None:
        flow_id, _, trigger_id = key.partition("/")
        trigger = registry.trigger(flow_id, trigger_id)
        return trigger.rateLimit if trigger else None

    quotas = TriggerQuotas(f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", limit_of)

    @broker.subscriber(
        topics.quota_usage,
        auto_offset_reset="latest",
        title="gateway:quota-usage:received",
        description="Read by every gateway process: what the others admitted of "
        "rate-limited triggers, taken from this process's copy of their buckets.",
    )
    async def on_quota_usage(message: KafkaMessage) -> None:
        try:
            spent = _QUOTA_SPENT.validate_json(message.body)
        except ValidationError:
            logger.warning("unreadable quota report skipped")
            return
        if spent.gateway != quotas.instance:
            metrics.quota_reports["received"] += 1
            quotas.spent_elsewhere(spent.spent, time.monotonic())

    quota_publisher = broker.publisher(
        topics.quota_usage,
        title="gateway:quota-usage:sent",
        schema=QuotaSpent,
        description="What this process admitted of rate-limited triggers, every "
        "HOOKFLOW_GATEWAY_QUOTA_REPORT_SECONDS while it admits any.",
    )

    async def report_quotas() -> None:
        while True:
            await asyncio.sleep(settings.quota_report_seconds)
            spent = quotas.report()
            if not spent:
                continue
            report = QuotaSpent(gateway=quotas.instance, at=now_ms(), spent=spent)
            try:
                await quota_publisher.publish(report.model_dump_json().encode(), headers=_JSON)
                metrics.quota_reports["sent"] += 1
            except Exception as exc:  # the others under-count this interval's calls
                logger.warning("quota report not sent", extra={"error": repr(exc)})

    publishers = {
        topics.activations: broker.publisher(
            topics.activations,
            title="gateway:activations",
            schema=ActivateTrigger,
            description="Accepted callbacks; key: the execution id for execution=<id>, "
            "else the trigger id.",
        ),
        topics.execution_starts: broker.publisher(
            topics.execution_starts,
            title="gateway:execution-starts",
            schema=StartExecution,
            description="Start requests; key: the execution id.",
        ),
    }

    # accepted requests go through librdkafka (`schemas.producer`); a broker given by a
    # test (FastStream's in-memory one) takes them through the publishers above instead
    producer = (
        None
        if injected
        else Producer(
            settings.kafka_bootstrap_servers,
            settings.linger_ms,
            settings.kafka_batch_bytes,
            "hookflow-gateway",
            on_renewed=metrics.producer_renewed,
        )
    )

    async def publish(
        topic: str, message: bytes, key: bytes, correlation_id: str, extra: dict[str, str] | None
    ) -> None:
        # the endpoint's one deadline bounds this (settings.publish_timeout_seconds)
        headers = {**_JSON, **extra} if extra else _JSON
        if producer is not None:
            await producer.send(topic, message, key, headers, correlation_id)
        else:
            await publishers[topic].publish(
                message, key=key, headers=headers, correlation_id=correlation_id
            )

    refusal_publisher = broker.publisher(
        topics.activation_refusals,
        title="gateway:activation-refusals",
        schema=ActivationRefused,
        description="Callbacks this gateway refused, or dropped under an IGNORE policy, "
        "for the activation log; key: the trigger id. At most "
        "HOOKFLOW_GATEWAY_REFUSAL_REPORTS_PER_SECOND a second per process.",
    )

    async def send_refusal(message: bytes, key: bytes) -> None:
        await refusal_publisher.publish(message, key=key, headers=_JSON)

    refusals = Refusals(send_refusal, settings.refusal_reports_per_second, metrics.refusal_reports)
    buckets = (
        TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst)
        if settings.rate_limit_per_second > 0
        else None
    )
    offsets = end_offsets or EndOffsets(settings.kafka_bootstrap_servers)
    refresh = Refresh(registry, lambda: offsets(topics.flow_registry))
    activation_key = settings.activation_key.get_secret_value() if settings.activation_key else None
    body = (settings.body_limit_bytes, settings.body_timeout_seconds)
    sender = Sender(publish, topics, metrics, settings.publish_timeout_seconds)
    signed = SignedBodies(Signatures(activation_key), registry, refresh, now_ms, *body)
    guard = LagGuard(settings.lag_guard_seconds) if settings.lag_guard_seconds > 0 else None
    if guard is not None:
        metrics.engine_lag = lambda: guard.lag_seconds
    callbacks = Callbacks(
        registry,
        refresh,
        tokens,
        signed,
        sender,
        topics,
        BodyLimits(*body),
        activation_key,
        now_ms,
        (quotas, guard),
        tracing,
        refusals,
    )
    starts = Starts(
        registry,
        refresh,
        tokens,
        sender,
        topics,
        (settings.admin_key.get_secret_value() if settings.admin_key else None, activation_key),
        body,
        now_ms,
    )
    proxies = TrustedProxies(settings.trusted_proxies)
    gateway = Endpoints(
        callbacks,
        starts,
        registry,
        metrics,
        buckets,
        proxies,
        lambda: state["ready"],
        {"appId": settings.app_id, "name": "hookflow", "loggers": []},
    )
    front_door = FrontDoor(
        {Service.ENGINE: settings.engine_url, Service.AUTH: settings.auth_url},
        proxies,
        settings.upstream_timeout_seconds,
        settings.upstream_connections,
    )

    async def catch_up() -> None:
        # Not ready until the registry topic exists (the engine creates it) and has been
        # read up to where it ended when this instance started. A broker that fails the
        # request, or a registry slow to load, delays readiness: never ends the attempt.
        while True:
            try:
                async with asyncio.timeout(10):
                    target = await offsets(topics.flow_registry)
            except Exception as exc:
                logger.warning("flow registry end not read", extra={"error": repr(exc)})
                await asyncio.sleep(1)
                continue
            if target:
                break
            logger.warning(
                "waiting for the flow registry topic; is the engine running?",
                extra={"topic": topics.flow_registry},
            )
            await asyncio.sleep(1)
        deadline = time.monotonic() + settings.registry_timeout_seconds
        while not registry.caught_up(target):
            if time.monotonic() > deadline:
                logger.error(
                    "flow registry not loaded in time; still reading", extra={"target": target}
                )
                deadline = float("inf")  # said once
            await asyncio.sleep(0.05)
        state["ready"] = True
        logger.info("gateway ready", extra={"flows": len(registry), "port": settings.port})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if producer is not None:
            await producer.start()
        await broker.start()
        # what exists now lives as long as the process: frozen out of the collector's
        # reach, a full collection no longer walks it (a 30 ms pause in a callback's tail)
        gc.freeze()
        tasks = [
            asyncio.create_task(catch_up()),
            asyncio.create_task(report_quotas()),
            asyncio.create_task(refusals.run()),
        ]
        if guard is not None and isinstance(offsets, EndOffsets):
            tasks.append(
                asyncio.create_task(
                    guard.run(
                        lambda: _positions(offsets, topics.activations, settings),
                        settings.lag_guard_interval_seconds,
                    )
                )
            )
        try:
            yield
        finally:
            state["ready"] = False
            await refusals.flush(1.0)
            for task in tasks:
                task.cancel()
            if isinstance(offsets, EndOffsets):
                await offsets.close()
            await broker.stop()
            if producer is not None:
                await producer.stop()
            await client.aclose()
            front_door.close()
            tracing.shutdown()

    flow = "/api/automation/flow"
    routes = [
        # POST and GET are answered by GatewayApp before the router; listed here so
        # that other methods get 405, not 404
        Route(ACTIVATE_PATH, head_of_callback, methods=["POST", "GET"]),
        Route(flow + "/{flowId}/execute", gateway.execute, methods=["POST"]),
        Route(flow + "/{flowId}/activate", gateway.activate_flow, methods=["POST"]),
        Route(flow + "/activate-by-name", gateway.activate_by_name, methods=["POST"]),
        Route(
            flow + "/trigger/activate-by-name",
            gateway.activate_trigger_by_name,
            methods=["POST"],
        ),
        Route("/api/info", gateway.info),
        Route("/healthz", gateway.healthz),
        Route("/readyz", gateway.readyz),
        Route("/metrics", gateway.metrics),
        Route("/openapi.json", _openapi),
    ]
    app = GatewayApp(
        gateway,
        front_door,
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers(logger),
    )
    app.state.broker = broker
    app.state.registry = registry
    app.state.tokens = tokens
    return app


async def _openapi(request: Request) -> Response:
    return JSONResponse(document())


async def _positions(
    offsets: EndOffsets, topic: str, settings: Settings
) -> tuple[dict[int, int], dict[int, int]]:
    return await offsets(topic), await offsets.committed(settings.engine_consumer_group, topic)


def app_from_env() -> Starlette:
    """The ASGI app factory uvicorn calls in each worker."""
    return create_app(Settings())
