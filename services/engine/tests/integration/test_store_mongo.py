"""The store contract against the real MongoDB-wire server."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from engine.store import MongoStore

from ..store_contract import *  # noqa: F403  # the contract's tests run here


@pytest.fixture
async def store(mongo_db: AsyncDatabase[dict[str, Any]]) -> MongoStore:
    store = MongoStore(mongo_db, batch_size=2)
    await store.setup()
    return store
