"""Executions, changed only by a compare-and-set on `{_id, version}`, and the timers
of their waits (`executions`, `timers`)."""

from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from engine.core.execution import ExecutionState
from engine.ports import Page, Timer
from engine.store.documents import (
    WAIT_ORDER,
    by_ids,
    execution_from_doc,
    execution_to_doc,
    keyset_page,
)
from engine.store.schema import Collections
from schemas.events import ExecutionStatus


class Executions(Collections):
    """Executions, changed only by a compare-and-set on `{_id, version}`, and the timers"""

    async def create_execution(self, state: ExecutionState) -> bool:
        doc = execution_to_doc(state)
        doc["version"] = 0
        await self._arm(doc)
        try:
            await self._executions.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        doc = await self._executions.find_one({"_id": execution_id.lower()})
        return execution_from_doc(doc) if doc else None

    async def get_executions(self, execution_ids: list[str]) -> dict[str, ExecutionState]:
        ids = [i.lower() for i in execution_ids]
        return {doc["_id"]: execution_from_doc(doc) async for doc in by_ids(self._executions, ids)}

    async def save_execution(self, state: ExecutionState) -> bool:
        doc = execution_to_doc(state)
        await self._arm(doc)
        return await self._saves.save(doc)

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        # one page per status, merged: the index (flowId, status, created) serves each
        # in order, where the flow's executions as a whole would be sorted in memory
        statuses = [status] if status is not None else list(ExecutionStatus)
        docs, cursor = await keyset_page(
            self._executions,
            {"flowId": flow_id.lower()},
            "created",
            cursor,
            limit,
            union_of=[{"status": s.value} for s in statuses],
        )
        return [execution_from_doc(doc) for doc in docs], cursor

    async def waiting(self, wait_id: str, key: str | None = None) -> AsyncIterator[ExecutionState]:
        query = {"waitKey": key} if key is not None else {"waitTrigger": wait_id}
        async for doc in self._executions.find(query, batch_size=self._batch).sort(WAIT_ORDER):
            if doc["waitTrigger"] == wait_id:
                yield execution_from_doc(doc)

    async def anyone_waiting(self, wait_id: str) -> bool:
        found = await self._executions.find_one({"waitTrigger": wait_id}, {"_id": 1})
        return found is not None

    async def _arm(self, doc: dict[str, Any]) -> None:
        """A wait with a deadline gets its timer before the execution is written: a crash in
        between leaves a timer that finds nothing to do, never a wait without a timer."""
        due = doc.get("waitDeadline")
        if due is not None:
            await self._timers.update_one(
                {"_id": f"{doc['_id']}:{due}"},
                {"$setOnInsert": {"executionId": doc["_id"], "due": due}},
                upsert=True,
            )

    async def due_timers(self, now: int, limit: int) -> list[Timer]:
        found = self._timers.find({"due": {"$lte": now}}).sort("due", ASCENDING).limit(limit)
        return [Timer(doc["_id"], doc["executionId"], doc["due"]) async for doc in found]

    async def drop_timer(self, timer_id: str) -> None:
        await self._timers.delete_one({"_id": timer_id})
