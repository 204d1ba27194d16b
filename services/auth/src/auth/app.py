"""The auth service's composition root: adapters, lifespan, logging."""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient
from starlette.applications import Starlette

from auth.accounts import Accounts, Limits
from auth.core import Backoff, RateLimiter
from auth.http import Endpoints
from auth.passwords import Passwords
from auth.settings import Settings
from auth.store import MongoUserStore, UserStore
from schemas import logs
from schemas.events import AuthEvent
from schemas.forwarding import TrustedProxies
from schemas.http import exception_handlers
from schemas.partitions import KeyPartitioner
from schemas.topics import Topics, bootstrap_servers

logger = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class KafkaAuthEvents:
    """Publishes auth events keyed by user, acknowledged by the broker (acks=all)."""

    def __init__(self, broker: KafkaBroker, topic: str) -> None:
        self._publisher = broker.publisher(
            topic,
            title="auth:auth-events",
            schema=AuthEvent,
            description="Token revoked, roles changed, user disabled; key: the user id.",
        )

    async def publish(self, event: AuthEvent) -> None:
        await self._publisher.publish(event.model_dump(mode="json"), key=event.userId.encode())


def build_accounts(settings: Settings, store: UserStore, broker: KafkaBroker) -> Accounts:
    window_ms = int(settings.login_window_seconds * 1000)
    limits = Limits(
        token_ttl_ms=int(settings.token_ttl_days * 86_400_000),
        per_pair=Backoff(
            settings.login_backoff_free,
            int(settings.login_backoff_base_seconds * 1000),
            int(settings.login_backoff_max_seconds * 1000),
        ),
        per_address=RateLimiter(settings.login_limit_per_address, window_ms),
        registrations=RateLimiter(
            settings.register_limit_per_address, int(settings.register_window_seconds * 1000)
        ),
    )
    events = KafkaAuthEvents(broker, Topics(settings.topic_prefix).auth_events)
    passwords = Passwords(at_once=settings.password_hashes_at_once)
    return Accounts(store, passwords, events, limits, now_ms)


def create_app(
    settings: Settings | None = None,
    *,
    store: UserStore | None = None,
    broker: KafkaBroker | None = None,
    configure_logging: bool = True,
) -> Starlette:
    """Build the auth service."""
    settings = settings or Settings()
    if configure_logging:
        logs.configure("auth", settings.log_level, settings.log_format)
    broker = broker or KafkaBroker(
        bootstrap_servers(settings.kafka_bootstrap_servers),
        acks="all",
        enable_idempotence=True,
        client_id="hookflow-auth",
        partitioner=KeyPartitioner(),  # Kafka's default partitioner, cheaper
        logger=logging.getLogger("faststream"),  # through the service's log format
    )
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    if store is None:
        mongo = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(), serverSelectionTimeoutMS=10_000
        )
        store = MongoUserStore(mongo[settings.database])
    accounts = build_accounts(settings, store, broker)
    state = {"ready": False}

    async def ready() -> bool:
        if not state["ready"]:
            return False
        try:
            if mongo is not None:
                await mongo.admin.command("ping")
        except Exception:
            return False
        return True

    endpoints = Endpoints(
        accounts,
        settings.admin_key,
        settings.body_limit_bytes,
        TrustedProxies(settings.trusted_proxies),
        ready,
        open_registration=settings.registration == "open",
        internal_key=settings.internal_key,
    )

    async def purge_forever() -> None:
        while True:
            await asyncio.sleep(settings.purge_interval_seconds)
            try:
                logger.info("expired tokens purged", extra={"count": await accounts.purge()})
            except Exception:
                logger.exception("token purge failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.setup()
        await broker.connect()
        state["ready"] = True
        purger = asyncio.create_task(purge_forever())
        logger.info("auth ready", extra={"port": settings.port})
        try:
            yield
        finally:
            state["ready"] = False
            purger.cancel()
            await broker.stop()
            if mongo is not None:
                await mongo.close()

    app = Starlette(
        routes=endpoints.routes(),
        lifespan=lifespan,
        exception_handlers=exception_handlers(logger),
    )
    app.state.broker = broker
    return app
