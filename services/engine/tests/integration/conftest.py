"""The engine's integration tests' fixtures: settings for a real broker and store, a
producer, and a database dropped afterwards."""

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from engine.settings import Settings

ACTIVATION_KEY = "integration-activation-key"


@pytest.fixture
def settings(kafka_bootstrap: str, mongodb_url: str, unique_name: str) -> Settings:
    return Settings(
        kafka_bootstrap_servers=kafka_bootstrap,
        mongodb_url=mongodb_url,
        database=unique_name,
        topic_prefix=unique_name,
        consumer_group=unique_name,
        topic_partitions=3,
        retry_backoff_seconds=0.2,
        admin_key="integration-key",
        activation_key=ACTIVATION_KEY,
    )


@pytest.fixture
async def publisher(
    settings: Settings,
) -> AsyncIterator[Callable[[str, Any, str], Awaitable[None]]]:
    broker = KafkaBroker(settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True)
    await broker.connect()

    async def publish(topic: str, message: Any, key: str) -> None:
        await broker.publish(message.model_dump(mode="json"), topic, key=key.encode())

    yield publish
    await broker.stop()


@pytest.fixture
async def drop_database(settings: Settings) -> AsyncIterator[None]:
    yield
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongodb_url.get_secret_value())
    await client.drop_database(settings.database)
    await client.close()
