"""The patched FerretDB answers every query exactly as the stock build does.

The patches push equality conditions down to SQLite (docs/infrastructure.md). Both
builds come from `deploy/local/ferretdb.sh install` and are started here on free ports
with data directories of their own; each query runs on both and the answers must be
the same documents in the same order, and updates and deletes must leave the same data.
"""

import os
import socket
import subprocess
from collections.abc import Iterator
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
        docs.append(doc)
    return docs


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
    coll.create_index("s")
    coll.create_index([("k", 1), ("n", 1)])
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
    answers = []
    for db in servers.values():
        _load(db)
        coll = db["docs"]
        counts = (
            coll.update_many(query, update).modified_count,
            coll.update_one({"k": "k5"}, {"$set": {"one": 1}}).modified_count,
            coll.delete_many({"k": "k1"}).deleted_count,
            coll.delete_one({"ref": OIDS[0]}).deleted_count,
            coll.find_one_and_update({"s": "null"}, {"$set": {"s": "now"}}) is not None,
        )
        answers.append((counts, list(coll.find().sort("_id", 1))))
    assert answers[0] == answers[1]
