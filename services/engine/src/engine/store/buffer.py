"""The early-callback buffer (`buffer`): kept activations and their claims."""

from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from engine.ports import EXPIRY, Buffered
from engine.store.documents import buffered_from_doc
from engine.store.schema import Collections
from schemas import opaque


class BufferedActivations(Collections):
    """The early-callback buffer (`buffer`): kept activations and their claims."""

    async def buffer(self, entry: Buffered) -> Buffered:
        try:
            await self._buffer.insert_one(
                {
                    "_id": entry.activation_id,
                    "flowId": entry.flow_id,
                    "triggerId": entry.trigger_id,
                    "key": entry.key,
                    "executionId": entry.execution_id,
                    "body": opaque.encode({"data": entry.data, "user": entry.user}),
                    "arrived": entry.arrived,
                    "expires": entry.expires,
                    "claimedBy": None,
                    "due": entry.expires,
                }
            )
        except DuplicateKeyError:
            doc = await self._buffer.find_one({"_id": entry.activation_id})
            if doc is not None:
                return buffered_from_doc(doc)
        return entry

    async def buffered(
        self, trigger_id: str, key: str | None, now: int, limit: int
    ) -> list[Buffered]:
        query: dict[str, Any] = {"key": key} if key is not None else {"triggerId": trigger_id}
        query.update({"claimedBy": None, "expires": {"$gt": now}})
        found = self._buffer.find(query).sort([("arrived", ASCENDING), ("_id", ASCENDING)])
        return [
            buffered_from_doc(doc)
            async for doc in found.limit(limit)
            if doc["triggerId"] == trigger_id
        ]

    async def claim_buffered(
        self, activation_id: str, claimer: str, now: int, stale_ms: int
    ) -> bool:
        expires = {"$lte": now} if claimer == EXPIRY else {"$gt": now}
        result = await self._buffer.update_one(
            {"_id": activation_id, "claimedBy": None, "expires": expires},
            {"$set": {"claimedBy": claimer, "due": now + stale_ms}},
        )
        return result.modified_count == 1

    async def release_buffered(self, activation_id: str, claimer: str) -> None:
        doc = await self._buffer.find_one({"_id": activation_id, "claimedBy": claimer})
        if doc is not None:
            await self._buffer.update_one(
                {"_id": activation_id, "claimedBy": claimer},
                {"$set": {"claimedBy": None, "due": doc["expires"]}},
            )

    async def drop_buffered(self, activation_id: str) -> None:
        await self._buffer.delete_one({"_id": activation_id})

    async def due_buffered(self, now: int, limit: int) -> list[Buffered]:
        found = self._buffer.find({"due": {"$lte": now}}).sort("due", ASCENDING).limit(limit)
        return [buffered_from_doc(doc) async for doc in found]
