"""The store contract against the real MongoDB-wire server."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from engine.records import Wait
from engine.store import MongoStore

from ..store_contract import *  # noqa: F403  # the contract's tests run here


@pytest.fixture
async def store(mongo_db: AsyncDatabase[dict[str, Any]]) -> MongoStore:
    store = MongoStore(mongo_db, batch_size=2)
    await store.setup()
    return store


async def test_compaction_removes_finished_claims_and_their_waits(store: MongoStore) -> None:
    from ..store_contract import collect, wait  # the contract's helpers

    await store.add_waits([wait("e1", 10), wait("e2", 20)])
    assert await store.claim(Wait.make_id("e1", "t-1", 0), "a1", 1)
    await store.finish_claims("a1")
    assert await store.compact() == 1
    assert await collect(store, "a2") == ["e2"]
    assert await store.compact() == 0
