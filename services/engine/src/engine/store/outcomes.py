"""Activation outcomes (and the choices of an `all`/`any` activation on its way) and
idempotency keys (`activations`, `idempotency_keys`)."""

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from engine.ports import Resuming
from engine.store.documents import (
    activation_from_doc,
    by_ids,
    keyset_page,
    outcome_to_doc,
    request_of,
)
from engine.store.schema import Collections
from schemas.activations import ActivationFilter
from schemas.events import ActivationOutcome, Outcome


class Outcomes(Collections):
    """Activation outcomes (and the choices of an `all`/`any` activation on its way) and"""

    async def get_activation(self, activation_id: str) -> ActivationOutcome | Resuming | None:
        doc = await self._outcomes.find_one({"_id": activation_id})
        return None if doc is None else activation_from_doc(doc)

    async def get_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        found = by_ids(self._outcomes, list(activation_ids))
        return {doc["_id"]: activation_from_doc(doc) async for doc in found}

    async def begin_resuming(self, resuming: Resuming) -> Resuming:
        try:
            await self._outcomes.insert_one(
                {"_id": resuming.activation_id, "resuming": list(resuming.execution_ids)}
            )
        except DuplicateKeyError:
            found = await self.get_activation(resuming.activation_id)
            if isinstance(found, Resuming):
                return found
        return resuming

    async def save_outcome(self, outcome: ActivationOutcome) -> bool:
        body = outcome_to_doc(outcome)
        # replaces what begin_resuming recorded, never an outcome: an upsert that finds
        # the outcome stored collides with it on _id instead
        try:
            await self._outcomes.update_one(
                {"_id": outcome.activationId, "outcome": {"$exists": False}},
                {"$set": body, "$unset": {"resuming": ""}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def save_outcomes(self, outcomes: list[ActivationOutcome]) -> set[str]:
        if len(outcomes) <= 1:  # one upsert, whether or not a choice was recorded
            return {o.activationId for o in outcomes if not await self.save_outcome(o)}
        docs = [{"_id": o.activationId, **outcome_to_doc(o)} for o in outcomes]
        try:
            await self._outcomes.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            # taken: by a recorded choice (replace it) or by an outcome (keep it)
            taken = set()
            for error in errors:
                outcome = outcomes[error["index"]]
                if not await self.save_outcome(outcome):
                    taken.add(outcome.activationId)
            return taken
        return set()

    async def settle_outcome(self, outcome: ActivationOutcome) -> bool:
        body = outcome_to_doc(outcome)
        unsettled = {
            "_id": outcome.activationId,
            "outcome": {"$in": [None, Outcome.BUFFERED.value]},
        }
        change = {"$set": body, "$unset": {"resuming": ""}}
        try:  # an upsert that finds another final outcome collides with it on _id
            await self._outcomes.update_one(unsettled, change, upsert=True)
        except DuplicateKeyError:
            # or with the BUFFERED outcome its batch stored between the upsert's lookup
            # and its insert: settled over that one, a final outcome is left as it is
            result = await self._outcomes.update_one(unsettled, change)
            return result.modified_count == 1
        return True

    async def remember_key(
        self, scope: str, key: str, activation_id: str, now: int, retention_ms: int
    ) -> str:
        key_id = f"{scope}:{key}"
        for _ in range(3):
            try:
                await self._keys.insert_one(
                    {"_id": key_id, "activationId": activation_id, "created": now}
                )
            except DuplicateKeyError:
                pass
            else:
                return activation_id
            doc = await self._keys.find_one({"_id": key_id})
            if doc is None:
                continue  # purged in between: try to insert again
            if doc["created"] >= now - retention_ms:
                return str(doc["activationId"])
            taken = await self._keys.find_one_and_update(
                {"_id": key_id, "created": doc["created"]},
                {"$set": {"activationId": activation_id, "created": now}},
                return_document=ReturnDocument.AFTER,
            )
            if taken is not None:
                return str(taken["activationId"])
        raise RuntimeError(f"idempotency key {key_id!r} keeps changing")

    async def purge(self, now: int, retention_ms: int) -> int:
        result = await self._keys.delete_many({"created": {"$lt": now - retention_ms}})
        return result.deleted_count

    async def activation_record(
        self, activation_id: str
    ) -> tuple[ActivationOutcome, dict[str, Any] | None] | None:
        doc = await self._outcomes.find_one({"_id": activation_id})
        if doc is None or "outcome" not in doc:
            return None
        request = request_of(doc)
        found = activation_from_doc(doc)
        assert isinstance(found, ActivationOutcome)
        return found, request

    async def list_activations(
        self, where: ActivationFilter, cursor: str | None, limit: int
    ) -> tuple[list[tuple[ActivationOutcome, dict[str, Any] | None]], str | None]:
        docs, cursor = await keyset_page(
            self._outcomes, _log_query(where), "receivedAt", cursor, limit, newest_first=True
        )
        page = []
        for doc in docs:
            request = request_of(doc)
            found = activation_from_doc(doc)
            if isinstance(found, ActivationOutcome):
                page.append((found, request))
        return page, cursor

    async def activation_times(
        self, where: ActivationFilter, limit: int
    ) -> list[tuple[int, str, str]]:
        found = self._outcomes.find(
            _log_query(where),
            {"_id": 0, "receivedAt": 1, "triggerId": 1, "outcome": 1},
            sort=[("receivedAt", -1)],
            limit=limit,
            batch_size=min(limit, 10_000),
        )
        return [(d["receivedAt"], d["triggerId"], d["outcome"]) async for d in found]

    async def purge_activations(self, now: int, body_ms: int, log_ms: int) -> tuple[int, int]:
        """Forget bodies older than `body_ms` and records older than `log_ms` (by when they
        were received); the numbers forgotten."""
        records = await self._outcomes.delete_many({"receivedAt": {"$lt": now - log_ms}})
        bodies = await self._outcomes.update_many(
            {"receivedAt": {"$lt": now - body_ms}, "request": {"$exists": True}},
            {"$unset": {"request": ""}},
        )
        return bodies.modified_count, records.deleted_count


def _log_query(where: ActivationFilter) -> dict[str, Any]:
    """The activation log's records `where` takes (served by its indexes: by time, by
    flow and time, by trigger and time)."""
    query: dict[str, Any] = {}
    if where.flowId:
        query["flowId"] = where.flowId.lower()
    if where.triggerId:
        query["triggerId"] = where.triggerId.lower()
    if where.outcome:
        query["outcome"] = {"$in": [o.value for o in where.outcome]}
    received: dict[str, int] = {}
    if where.since is not None:
        received["$gte"] = where.since
    if where.until is not None:
        received["$lt"] = where.until
    query["receivedAt"] = received or {"$exists": True}
    return query
