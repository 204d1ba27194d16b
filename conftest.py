"""Fixtures that give integration tests real Kafka and a real MongoDB-wire server.

Addresses come from KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL (`make test` sets them
after starting the local services). When they are unset and a Docker engine answers,
testcontainers starts Kafka and MongoDB 7 for the session. Otherwise the tests that
need them fail with a message saying how to start them: they never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

if TYPE_CHECKING:
    from aiokafka.admin import AIOKafkaAdminClient

HOW_TO_START = (
    "{what} is not available: set {var}, or run `make infra-up` and export the "
    "variables that `deploy/local/infra.sh env` prints, or run the tests with `make test`."
)


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


# topic prefixes the tests make up: a name of `unique_name`, or a session's own
# (`e2e_<hex>`, `sec_<hex>`); the topics of a broker the tests share are matched by it
_TEST_TOPIC = re.compile(r"^(t|e2e|sec)_(\w*_)?[0-9a-f]{6,8}\.")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker.

    The topics this session's tests created there (their prefixes are made up, see
    `_TEST_TOPIC`) are deleted at its end: a broker that keeps every session's
    partitions spends more of the machine on them at each later session.
    """
    if address := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        before = asyncio.run(_topics(address))
        yield address
        made = {t for t in asyncio.run(_topics(address)) - before if _TEST_TOPIC.match(t)}
        if made:
            asyncio.run(_delete_topics(address, made))
        return
    if not _docker_answers():
        pytest.fail(HOW_TO_START.format(what="Kafka", var="KAFKA_BOOTSTRAP_SERVERS"), pytrace=False)
    from testcontainers.kafka import KafkaContainer

    with KafkaContainer("apache/kafka:4.1.1").with_kraft() as kafka:
        yield kafka.get_bootstrap_server()


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def _topics(bootstrap: str) -> set[str]:
    async with _admin(bootstrap) as admin:
        return set(await admin.list_topics())


async def _delete_topics(bootstrap: str, names: set[str]) -> None:
    async with _admin(bootstrap) as admin:
        await admin.delete_topics(sorted(names))


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    """Connection URL of a real MongoDB-wire server."""
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    if not _docker_answers():
        pytest.fail(HOW_TO_START.format(what="MongoDB", var="MONGODB_URL"), pytrace=False)
    from testcontainers.mongodb import MongoDbContainer

    with MongoDbContainer("mongo:7") as mongo:
        yield mongo.get_connection_url()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: for databases, topic prefixes and consumer groups."""
    base = "".join(c if c.isalnum() else "_" for c in request.node.name)[:30]
    return f"t_{base}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def mongo_db(mongodb_url: str, unique_name: str) -> AsyncIterator[AsyncDatabase[Any]]:
    """A database of its own for one test, dropped afterwards."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        await client.admin.command("ping")
    except Exception as exc:
        await client.close()
        pytest.fail(f"MongoDB at {mongodb_url} does not answer ({exc}); run `make infra-up`.")
    db = client[unique_name]
    try:
        yield db
    finally:
        await client.drop_database(unique_name)
        await client.close()


_INTEGRATION_DIRS = ("integration", "e2e", "infra", "chaos")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under an integration, e2e, infra or chaos folder as `integration`."""
    for item in items:
        if any(part in _INTEGRATION_DIRS for part in item.path.parts):
            item.add_marker(pytest.mark.integration)
