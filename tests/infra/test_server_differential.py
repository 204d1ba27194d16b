"""The patched FerretDB answers every query exactly as the stock build does.

The patches push equality conditions down to SQLite and serve sorts from ordered
indexes (docs/infrastructure.md). Both
builds come from `deploy/local/ferretdb.sh install` and are started here on free ports
with data directories of their own; each query runs on both and the answers must be
the same documents in the same order, and updates and deletes must leave the same data.
"""

import os
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient
from pymongo.database import Database

ROOT = Path(__file__).resolve().parents[2]
LOCAL = Path(os.environ.get("HOOKFLOW_LOCAL_DIR", ROOT / ".local"))
BINARIES = {
    "patched": LOCAL / "ferretdb/bin/ferretdb",
    "stock": LOCAL / "ferretdb/bin/ferretdb-stock",
}

OIDS = [ObjectId(f"65a1b2c3d4e5f6a7b8c9d0{i:02x}") for i in range(6)]
LOOKALIKES = [
    '{"a": 1}',
    "[1, 2]",
    '"quoted"',
    "null",
    "true",
    "<b>&amp;</b>",
    "é ü 🚀",
    "a\\b",
    "",
]


def _documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for i in range(60):
        doc: dict[str, Any] = {
            "_id": f"d{i:02d}" if i % 4 else OIDS[i // 4] if i < 24 else f"o{i}",
            "s": LOOKALIKES[i % len(LOOKALIKES)],
            "k": f"k{i % 7}",
            "n": i % 5,
            "ref": OIDS[i % 3],
            "tags": [f"k{i % 7}", LOOKALIKES[(i + 1) % len(LOOKALIKES)], i % 3],
            "nested": {"a": f"k{i % 4}", "b": {"c": i % 2}},
        }
        if i % 6 == 0:
            doc["k"] = [f"k{i % 7}", "shared"]  # an indexed field that sometimes holds an array
        if i % 5 == 0:
            del doc["s"]
        if i % 8 == 0:
            doc["ref"] = [OIDS[4], OIDS[5]]
        if i % 11:  # a sort field that holds every type now and then, else numbers
            doc["at"] = AT_VALUES[i % len(AT_VALUES)] if i % 3 == 0 else 1000 - (i * 37) % 50
        docs.append(doc)
    return docs


AT_VALUES: list[Any] = [
    7,
    7.5,
    -2,
    2**40,
    "later",
    "",
    None,
    True,
    False,
    OIDS[2],
    datetime(2026, 1, 1, tzinfo=UTC),
    [3, 990],
    [],
    {"x": 1},
    b"bytes",
    "7",
]

QUERIES: list[dict[str, Any]] = [
    {},
    {"_id": "d01"},
    {"_id": OIDS[0]},
    {"_id": "missing"},
    {"k": "k3"},
    {"k": "shared"},
    {"k": "k0", "n": 0},
    {"k": "k2", "nested.a": "k2"},
    {"ref": OIDS[1]},
    {"ref": OIDS[4]},
    {"ref": OIDS[1], "k": "k1"},
    {"tags": "k5"},
    {"tags": 2},
    {"tags": '"quoted"'},
    {"nested": {"a": "k1", "b": {"c": 1}}},
    {"nested": {"b": {"c": 1}, "a": "k1"}},
    {"nested.b.c": 0},
    {"$and": [{"k": "k4"}, {"n": {"$gte": 2}}]},
    {"$and": [{"s": '{"a": 1}'}, {"k": {"$ne": "k0"}}]},
    {"$or": [{"s": "[1, 2]"}, {"ref": OIDS[2]}]},
    {"k": {"$in": ["k1", "shared"]}},
    {"_id": {"$in": ["d01", "d02", OIDS[1], "missing"]}},
    {"ref": {"$in": [OIDS[4], OIDS[2]]}},
    {"s": {"$in": ['{"a": 1}', 1, None]}},
    {"tags": {"$in": ["k2", "nothing"]}, "k": {"$in": ["k2", "shared"]}},
    {"s": {"$exists": False}},
    {"s": None},
    *({"s": text} for text in LOOKALIKES),
    {"s": "é ü 🚀", "k": "k6"},
    {"k": "k4", "s": "<b>&amp;</b>", "n": 2},
    {"_id": "d05", "k": "k5"},
    {"_id": "d05", "k": "k4"},
    {"k": "k3", "$comment": "pushdown with a comment"},
    {"n": 3, "tags": "k3"},
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Database[Any]]]:
    """The patched and the stock build, each on a port and data directory of its own."""
    if not all(binary.exists() for binary in BINARIES.values()):
        subprocess.run([ROOT / "deploy/local/ferretdb.sh", "install"], check=True)  # noqa: S603  # our own script
    processes, clients, dbs = [], [], {}
    try:
        for name, binary in BINARIES.items():
            port, data = _free_port(), tmp_path_factory.mktemp(f"ferretdb-{name}")
            processes.append(
                subprocess.Popen(  # noqa: S603  # our own build
                    [
                        binary,
                        f"--listen-addr=127.0.0.1:{port}",
                        "--handler=sqlite",
                        f"--sqlite-url=file:{data}/",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            client: MongoClient[Any] = MongoClient(
                f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10_000
            )
            clients.append(client)
            client.admin.command("ping")
            dbs[name] = client["differential"]
        yield dbs
    finally:
        for client in clients:
            client.close()
        for process in processes:
            process.terminate()
            process.wait(10)


def _load(db: Database[Any]) -> None:
    db.drop_collection("docs")
    coll = db["docs"]
    coll.create_index("k")
    coll.create_index("ref")
    coll.create_index([("s", 1), ("n", 1)])  # s: in ordered indexes only
    coll.create_index([("k", 1), ("n", 1)])
    coll.create_index([("at", -1), ("_id", -1)])
    coll.create_index([("k", 1), ("at", -1), ("_id", -1)])
    coll.create_index([("ref", 1), ("s", 1), ("at", 1)])
    coll.insert_many(_documents())


@pytest.fixture(scope="module")
def loaded(servers: dict[str, Database[Any]]) -> dict[str, Database[Any]]:
    for db in servers.values():
        _load(db)
    return servers


@pytest.mark.parametrize("query", QUERIES, ids=[repr(q)[:60] for q in QUERIES])
def test_a_query_finds_the_same_documents(
    loaded: dict[str, Database[Any]], query: dict[str, Any]
) -> None:
    patched, stock = (list(loaded[n]["docs"].find(query).sort("_id", 1)) for n in BINARIES)
    assert patched == stock
    assert loaded["patched"]["docs"].count_documents(query) == len(stock)


SORTED: list[tuple[dict[str, Any], list[tuple[str, int]]]] = [
    ({}, [("at", -1), ("_id", -1)]),
    ({}, [("at", 1), ("_id", 1)]),
    ({}, [("at", 1), ("_id", -1)]),
    ({"k": "k3"}, [("at", -1), ("_id", -1)]),
    ({"k": "shared"}, [("at", 1), ("_id", 1)]),
    ({"k": "k2", "n": {"$gte": 1}}, [("at", -1), ("_id", 1)]),
    ({"at": {"$lt": 990}}, [("at", -1), ("_id", -1)]),
    ({"at": {"$gte": 960, "$lt": 980}}, [("at", 1), ("_id", 1)]),
    ({"at": {"$gt": "a"}}, [("at", 1), ("_id", 1)]),
    ({"at": {"$lte": 7}}, [("at", -1), ("_id", -1)]),
    ({"at": 7}, [("at", -1), ("_id", -1)]),
    ({"at": {"$gte": 7, "$lte": "z"}}, [("at", -1), ("_id", -1)]),
    ({"at": {"$gt": 990, "$lt": 960}}, [("at", 1), ("_id", 1)]),
    ({"k": "k2", "at": {"$gt": -100}}, [("at", 1), ("_id", -1)]),
    ({"k": "k6", "at": {"$lt": "zzz"}}, [("at", -1), ("_id", -1)]),
    (
        {"k": "k1", "$or": [{"at": {"$lt": 975}}, {"at": 975, "_id": {"$lt": "d40"}}]},
        [("at", -1), ("_id", -1)],
    ),
    ({"$or": [{"at": {"$lt": 960}}, {"at": {"$gt": 985}}]}, [("at", -1), ("_id", -1)]),
    ({"$or": [{"at": {"$lt": 960}}, {"n": 2}]}, [("at", 1), ("_id", 1)]),
    ({"ref": OIDS[1], "s": {"$exists": True}}, [("at", 1), ("_id", 1)]),
    ({"ref": OIDS[1], "s": "null"}, [("at", -1), ("_id", 1)]),
    ({"ref": OIDS[4]}, [("s", 1), ("_id", 1)]),
    ({"k": "k4"}, [("n", -1), ("_id", 1)]),
    ({"k": "k5"}, [("_id", -1)]),
    ({}, [("n", 1), ("at", -1), ("_id", 1)]),
]


@pytest.mark.parametrize(
    ("query", "sort"), SORTED, ids=[repr(q)[:40] + repr(s)[:30] for q, s in SORTED]
)
@pytest.mark.parametrize(("skip", "limit"), [(0, 0), (0, 5), (3, 10)])
def test_a_sorted_query_finds_the_same_documents_in_the_same_order(
    loaded: dict[str, Database[Any]],
    query: dict[str, Any],
    sort: list[tuple[str, int]],
    skip: int,
    limit: int,
) -> None:
    patched, stock = (
        list(loaded[n]["docs"].find(query).sort(sort).skip(skip).limit(limit)) for n in BINARIES
    )
    assert [d["_id"] for d in patched] == [d["_id"] for d in stock]
    assert patched == stock


def test_keyset_pages_walk_the_same_documents(loaded: dict[str, Database[Any]]) -> None:
    """Pages of 7 newest first after the last one's (at, _id), as the engine's store
    pages its logs, over the documents whose `at` is a number."""
    walks = []
    for name in BINARIES:
        coll, seen, after = loaded[name]["docs"], [], None
        while True:
            query: dict[str, Any] = {"at": {"$type": "number"}}
            if after is not None:
                query["$or"] = [
                    {"at": {"$lt": after[0]}},
                    {"at": after[0], "_id": {"$lt": after[1]}},
                ]
            page = list(coll.find(query).sort([("at", -1), ("_id", -1)]).limit(7))
            seen += [d["_id"] for d in page]
            if len(page) < 7:
                break
            after = (page[-1]["at"], page[-1]["_id"])
        walks.append(seen)
    assert walks[0] == walks[1]
    assert len(walks[0]) > 30


def test_most_queries_match_something(loaded: dict[str, Database[Any]]) -> None:
    """The comparison means something only when the answers are not all empty."""
    matched = [q for q in QUERIES if loaded["stock"]["docs"].count_documents(q)]
    assert len(matched) >= len(QUERIES) - 3


@pytest.mark.parametrize(
    ("query", "update"),
    [
        ({"k": "k2"}, {"$set": {"touched": True}}),
        ({"k": "shared"}, {"$inc": {"n": 10}}),
        ({"ref": OIDS[4]}, {"$set": {"s": '{"a": 1}'}}),
        ({"s": '"quoted"', "n": {"$lt": 3}}, {"$push": {"tags": "more"}}),
    ],
)
def test_updates_and_deletes_leave_the_same_data(
    servers: dict[str, Database[Any]], query: dict[str, Any], update: dict[str, Any]
) -> None:
    """Which of several matches a one-document update or delete takes is the server's
    choice (MongoDB's too: the first its plan finds; the patched build may read an
    index where the stock one reads the table), so those select one document."""
    answers = []
    for db in servers.values():
        _load(db)
        coll = db["docs"]
        counts = (
            coll.update_many(query, update).modified_count,
            coll.update_one({"k": "k5", "_id": "d05"}, {"$set": {"one": 1}}).modified_count,
            coll.delete_many({"k": "k1"}).deleted_count,
            coll.delete_one({"ref": OIDS[0], "_id": "d03"}).deleted_count,
            coll.find_one_and_update({"s": "null", "_id": "d57"}, {"$set": {"s": "now"}})
            is not None,
        )
        answers.append((counts, list(coll.find().sort("_id", 1))))
    assert answers[0] == answers[1]
