"""The auth service against the real broker and MongoDB-wire server."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient

from auth.app import create_app
from auth.settings import Settings
from schemas.events import TokenRevoked, UserDisabled
from schemas.topics import Topics

PASSWORD = "a long and secret passphrase"
ADMIN = "operator-key"
INTERNAL = "integration-internal-key"


@pytest.fixture
async def auth(
    kafka_bootstrap: str, mongodb_url: str, unique_name: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    settings = Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongodb_url,
        database=unique_name,
        topic_prefix=unique_name,
        admin_key=ADMIN,
        internal_key=INTERNAL,
    )
    app = create_app(settings, configure_logging=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            yield client, settings
    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    await mongo.drop_database(unique_name)
    await mongo.close()


async def events_of(settings: Settings, count: int) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        Topics(settings.topic_prefix).auth_events,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(30):
            async for record in consumer:
                found.append(json.loads(record.value))
                if len(found) == count:
                    return found
    finally:
        await consumer.stop()
    return found


async def test_tokens_live_until_logout_or_disable_and_each_death_is_announced(
    auth: tuple[httpx.AsyncClient, Settings],
    mongodb_url: str,
) -> None:
    http, settings = auth
    user = (
        await http.post(
            "/api/users/register",
            json={"email": "pay@gateway.example", "password": PASSWORD, "company": "PayCo"},
        )
    ).json()
    first = (
        await http.post(
            "/api/users/login", json={"login": "pay@gateway.example", "password": PASSWORD}
        )
    ).json()["user-token"]
    second = (
        await http.post(
            "/api/users/login", json={"login": "pay@gateway.example", "password": PASSWORD}
        )
    ).json()["user-token"]

    async def active(token: str) -> bool:
        response = await http.post(
            "/internal/tokens/introspect",
            json={"token": token},
            headers={"X-Internal-Key": INTERNAL},
        )
        return bool(response.json()["active"])

    assert await active(first)
    assert await active(second)
    await http.get("/api/users/logout", headers={"user-token": first})
    assert not await active(first)
    assert await active(second)
    await http.put(
        f"/api/users/{user['objectId']}/status",
        json={"userStatus": "DISABLED"},
        headers={"x-admin-key": ADMIN},
    )
    assert not await active(second)

    revoked, disabled = await events_of(settings, 2)
    assert TokenRevoked.model_validate(revoked).userId == user["objectId"]
    assert UserDisabled.model_validate(disabled).userId == user["objectId"]

    mongo: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url)
    try:
        db = mongo[settings.database]
        stored = str([d async for d in db["users"].find({})]) + str(
            [d async for d in db["tokens"].find({})]
        )
    finally:
        await mongo.close()
    assert PASSWORD not in stored
    assert first not in stored
    assert second not in stored
    assert "argon2id" in stored
