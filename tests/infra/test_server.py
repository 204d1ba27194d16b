"""What the engine's store needs from its MongoDB-wire server, measured on it.

MongoDB 7 does all of this; the local FerretDB does it only with the project's patches
(deploy/local/ferretdb/patches, docs/infrastructure.md): lookups that use indexes,
atomic compare-and-set and `$inc`, and code 11000 for an update that breaks a unique
index. The differential tests in test_server_differential.py show that the patches
change no query's answer.
"""

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient, ReturnDocument, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

SMALL, LARGE = 1_000, 100_000
LOOKUPS = 300


@pytest.fixture
def db(mongodb_url: str, unique_name: str) -> Iterator[Database[Any]]:
    """A synchronous client's database of its own: timings without an event loop between."""
    client: MongoClient[Any] = MongoClient(mongodb_url, serverSelectionTimeoutMS=5000)
    try:
        yield client[unique_name]
    finally:
        client.drop_database(unique_name)
        client.close()


def _doc(i: int) -> dict[str, Any]:
    return {
        "_id": f"e-{i:07d}",
        "key": f"k-{i:07d}",
        "flowId": f"f-{i % 10}",
        "at": 1_700_000_000_000 + i,
        "payload": "x" * 300,
    }


def _fill(coll: Collection[Any], start: int, stop: int) -> None:
    for low in range(start, stop, 5_000):
        coll.insert_many([_doc(i) for i in range(low, min(stop, low + 5_000))], ordered=False)


def _lookup_seconds(coll: Collection[Any], field: str, size: int, seed: int) -> list[float]:
    """Times of lookups of keys spread over the whole collection."""
    step = max(1, size // LOOKUPS)
    samples = []
    for n in range(LOOKUPS):
        i = (n * step + seed) % size
        began = time.perf_counter()
        found = coll.find_one({field: _doc(i)[field]})
        samples.append(time.perf_counter() - began)
        assert found is not None
        assert found["_id"] == _doc(i)["_id"]
    return samples


NEWEST = [("at", -1), ("_id", -1)]


def _page_seconds(coll: Collection[Any], size: int, seed: int) -> list[float]:
    """Times of the newest pages (50) of a flow and of the whole collection, and of a
    keyset page after a document in the middle, newest first (as the store pages its
    logs)."""
    samples = []
    middle = _doc(size // 2 + seed)
    after = {
        "$or": [{"at": {"$lt": middle["at"]}}, {"at": middle["at"], "_id": {"$lt": middle["_id"]}}]
    }
    for query in ({"flowId": f"f-{seed}"}, {}, after):
        began = time.perf_counter()
        page = list(coll.find(query).sort(NEWEST).limit(51))
        samples.append(time.perf_counter() - began)
        expected = sorted(
            (
                d
                for d in map(_doc, range(size))
                if all(d.get(k) == v for k, v in query.items() if k != "$or")
            ),
            key=lambda d: (d["at"], d["_id"]),
            reverse=True,
        )
        if query is after:
            expected = [d for d in expected if (d["at"], d["_id"]) < (middle["at"], middle["_id"])]
        assert [d["_id"] for d in page] == [d["_id"] for d in expected[:51]]
    return samples


def test_lookups_and_pages_cost_the_same_at_a_thousand_and_a_hundred_thousand_documents(
    db: Database[Any],
) -> None:
    """An equality lookup, and a page sorted by an index's fields after equalities on
    those before (the activation log's, newest first), read the index: neither grows
    with the collection."""
    small, large = db["small"], db["large"]
    for coll, size in ((small, SMALL), (large, LARGE)):
        coll.create_index("key")
        coll.create_index(NEWEST)
        coll.create_index([("flowId", 1), *NEWEST])
        _fill(coll, 0, size)
    ratios = {}
    for what in ("_id", "key", "pages"):
        times: dict[int, list[float]] = {SMALL: [], LARGE: []}
        for seed in range(4):  # interleaved, so that the machine's drift hits both sizes
            for coll, size in ((small, SMALL), (large, LARGE)):
                times[size] += (
                    _page_seconds(coll, size, seed)
                    if what == "pages"
                    else _lookup_seconds(coll, what, size, seed)
                )
        medians = {size: statistics.median(t) * 1000 for size, t in times.items()}
        ratios[what] = medians[LARGE] / medians[SMALL]
        print(f"{what} median (ms): {medians}, ratio {ratios[what]:.2f}")
    assert all(r <= 1.5 for r in ratios.values()), ratios


def _uses_index(plan: dict[str, Any]) -> bool:
    """True when an explain answer shows an index lookup (FerretDB's SQL plan or MongoDB's)."""
    text = repr(plan)
    if "Plan" in plan.get("queryPlanner", {}):  # FerretDB: SQLite's EXPLAIN QUERY PLAN
        steps = plan["queryPlanner"]["Plan"]
        return bool(steps) and all("SCAN" not in step for step in steps) and "USING INDEX" in text
    return (
        any(stage in text for stage in ("IXSCAN", "IDHACK", "EXPRESS")) and "COLLSCAN" not in text
    )


@pytest.mark.parametrize(
    "query",
    [
        {"_id": "e-0000042"},
        {"key": "k-0000042"},
        {"key": "k-0000042", "flowId": "f-2", "payload": {"$exists": True}},
        {"_id": {"$in": ["e-0000042", "e-9999999"]}},
    ],
    ids=["_id", "indexed-field", "indexed-field-with-others", "_id-in"],
)
def test_the_server_plans_an_index_lookup(db: Database[Any], query: dict[str, Any]) -> None:
    coll = db["executions"]
    coll.create_index("key")
    _fill(coll, 0, 2_000)
    plan = db.command("explain", {"find": "executions", "filter": query})
    assert _uses_index(plan), plan
    assert [d["_id"] for d in coll.find(query)] == ["e-0000042"]


def test_concurrent_compare_and_set_wins_exactly_once_per_version(db: Database[Any]) -> None:
    coll = db["executions"]
    coll.insert_one({"_id": "e1", "version": 0, "count": 0})
    wins: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        mine = 0
        for _ in range(25):
            current = coll.find_one({"_id": "e1"})
            assert current is not None
            result = coll.update_one(
                {"_id": "e1", "version": current["version"]},
                {"$set": {"version": current["version"] + 1}},
            )
            mine += result.modified_count
            coll.update_one({"_id": "e1"}, {"$inc": {"count": 1}})
        with lock:
            wins.append(mine)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = coll.find_one({"_id": "e1"})
    assert final is not None
    assert sum(wins) == final["version"]
    assert final["count"] == 8 * 25


def test_find_one_and_update_hands_each_document_to_one_caller(db: Database[Any]) -> None:
    coll = db["waits"]
    coll.insert_many([{"_id": f"w{i}", "owner": None} for i in range(20)])
    taken: list[str] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        for i in range(20):
            doc = coll.find_one_and_update(
                {"_id": f"w{i}", "owner": None},
                {"$set": {"owner": name}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                with lock:
                    taken.append(doc["_id"])

    threads = [threading.Thread(target=claimer, args=(f"c{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"w{i}" for i in range(20))


def test_an_update_that_breaks_a_unique_index_is_a_duplicate_key(db: Database[Any]) -> None:
    coll = db["keys"]
    coll.create_index("slot", unique=True)
    coll.insert_many([{"_id": "a", "slot": "s1"}, {"_id": "b", "slot": "s2"}])
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": "b"}, {"$set": {"slot": "s1"}})
    with pytest.raises(DuplicateKeyError):
        coll.find_one_and_update({"_id": "b"}, {"$set": {"slot": "s1"}})
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": str(uuid.uuid4())}, {"$set": {"slot": "s2"}}, upsert=True)
    assert coll.find_one({"_id": "b"}) == {"_id": "b", "slot": "s2"}


def test_an_unordered_bulk_of_many_compare_and_sets_completes(
    mongodb_url: str, db: Database[Any]
) -> None:
    # the engine's grouped saves: more statements in one update command than the local
    # server has SQLite connections (100) hung it for good before patch 0005
    count = 250
    db["executions"].insert_many([{"_id": f"e{i}", "version": 0} for i in range(count)])
    connected: MongoClient[dict[str, Any]] = MongoClient(mongodb_url, timeoutMS=30_000)
    with connected as client:
        coll = client[db.name]["executions"]
        result = coll.bulk_write(
            [
                UpdateOne({"_id": f"e{i}", "version": 0}, {"$set": {"version": 1}})
                for i in range(count)
            ]
            + [UpdateOne({"_id": "e0", "version": 0}, {"$set": {"version": 9}})],  # lost race
            ordered=False,
        )
        assert result.modified_count == count
        assert coll.count_documents({"version": 1}) == count
