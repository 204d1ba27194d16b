"""The MongoDB-wire server does what the stores rely on."""

from typing import Any

import pytest
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from schemas import opaque


async def test_upsert_returns_the_new_document(mongo_db: AsyncDatabase[Any]) -> None:
    counters = mongo_db["counters"]
    for expected in (1, 2):
        doc = await counters.find_one_and_update(
            {"_id": "flow-a"},
            {"$inc": {"version": 1}, "$setOnInsert": {"name": "flow-a"}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc == {"_id": "flow-a", "name": "flow-a", "version": expected}


async def test_compare_and_set_lets_exactly_one_claim_win(mongo_db: AsyncDatabase[Any]) -> None:
    waits = mongo_db["waits"]
    await waits.insert_one({"_id": "w1", "state": "waiting"})
    claims = [
        await waits.find_one_and_update(
            {"_id": "w1", "state": "waiting"},
            {"$set": {"state": "claimed", "by": by}},
            return_document=ReturnDocument.AFTER,
        )
        for by in ("a1", "a2")
    ]
    assert claims[0] is not None
    assert claims[0]["by"] == "a1"
    assert claims[1] is None


async def test_unique_index_rejects_a_duplicate(mongo_db: AsyncDatabase[Any]) -> None:
    keys = mongo_db["idempotency"]
    await keys.create_index([("trigger", 1), ("key", 1)], unique=True)
    await keys.insert_one({"trigger": "t1", "key": "k1"})
    await keys.insert_one({"trigger": "t2", "key": "k1"})
    with pytest.raises(DuplicateKeyError):
        await keys.insert_one({"trigger": "t1", "key": "k1"})


PAYLOAD = (
    '{"orders":[[1,2],[3,[4,5]]],"a.b":{"$set":true,"$":[]},'
    '"huge":123456789012345678901234567890123,"neg":-98765432109876543210,'
    '"text":"naïve café 日本語 🚀","nested":{"x":[{"y":[[null]]}]},"pi":3.141592653589793}'
)


async def test_arbitrary_json_round_trips_byte_for_byte(mongo_db: AsyncDatabase[Any]) -> None:
    payloads = mongo_db["payloads"]
    await payloads.insert_one({"_id": "p1", "data": opaque.encode(opaque.decode(PAYLOAD))})
    stored = await payloads.find_one({"_id": "p1"})
    assert stored is not None
    assert stored["data"].encode() == PAYLOAD.encode()
    assert opaque.decode(stored["data"])["huge"] == 123456789012345678901234567890123
