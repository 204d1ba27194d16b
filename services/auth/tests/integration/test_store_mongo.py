from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from auth.store import MongoUserStore

from ..store_contract import *  # noqa: F403  # the contract's tests run here


@pytest.fixture
async def store(mongo_db: AsyncDatabase[dict[str, Any]]) -> MongoUserStore:
    store = MongoUserStore(mongo_db)
    await store.setup()
    return store
