"""The store's collections, their indexes, and the check that the database is of this
design."""

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from engine.store.documents import WAIT_ORDER
from engine.store.grouped_saves import GroupedSaves

# collections of the earlier insert-only design: executions as revision series
_EARLIER_DESIGN = frozenset({"waits", "claims", "finished_claims"})


class OutdatedDatabase(RuntimeError):
    """The database holds data in a format this engine does not read."""


class Collections:
    """The handles every part of the store uses."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], batch_size: int = 200) -> None:
        self._db = db
        self._flows = db["flows"]
        self._names = db["flow_names"]
        self._executions = db["executions"]
        self._outcomes = db["activations"]
        self._keys = db["idempotency_keys"]
        self._letters = db["dead_letters"]
        self._timers = db["timers"]
        self._buffer = db["buffer"]
        self._secrets = db["signing_secrets"]
        self._batch = batch_size
        self._saves = GroupedSaves(self._executions)

    async def setup(self) -> None:
        earlier = _EARLIER_DESIGN & set(await self._db.list_collection_names())
        if earlier:
            raise OutdatedDatabase(
                f"database {self._db.name!r} holds executions in the format of an earlier "
                f"version (collections {sorted(earlier)}); this version does not read them. "
                "For a local dev server: `make down && rm -rf .local/ferretdb/data`, then "
                "`make up` (docs/infrastructure.md)."
            )
        await self._flows.create_index([("name", ASCENDING), ("version", ASCENDING)], unique=True)
        executions = self._executions
        await executions.create_index(
            [("flowId", ASCENDING), ("status", ASCENDING), ("created", ASCENDING)]
        )
        # Trigger ids are unique across flows, so the trigger alone selects its waits;
        # a server that uses one index per query (SQLite) then uses this one.
        await executions.create_index([("waitTrigger", ASCENDING), *WAIT_ORDER])
        await executions.create_index([("waitKey", ASCENDING)])
        await self._keys.create_index([("created", ASCENDING)])
        await self._letters.create_index([("at", ASCENDING), ("_id", ASCENDING)])
        await self._timers.create_index([("due", ASCENDING)])
        await self._letters.create_index([("activationId", ASCENDING), ("at", ASCENDING)])
        await self._buffer.create_index(
            [("triggerId", ASCENDING), ("arrived", ASCENDING), ("_id", ASCENDING)]
        )
        await self._buffer.create_index([("key", ASCENDING)])
        await self._buffer.create_index([("due", ASCENDING)])
        await self._secrets.create_index([("flowId", ASCENDING)])
        # the activation log: newest first, by flow, by trigger (docs/design.md)
        newest = [("receivedAt", DESCENDING), ("_id", DESCENDING)]
        await self._outcomes.create_index(newest)
        await self._outcomes.create_index([("flowId", ASCENDING), *newest])
        await self._outcomes.create_index([("triggerId", ASCENDING), *newest])
