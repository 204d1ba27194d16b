"""Activation outcomes (and the choices of an `all`/`any` activation on its way) and
idempotency keys (`activations`, `idempotency_keys`)."""

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from engine.ports import Resuming
from engine.store.documents import activation_from_doc, by_ids
from engine.store.schema import Collections
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
        body = outcome.model_dump(mode="json", exclude={"activationId"})
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
        docs = [
            {"_id": o.activationId, **o.model_dump(mode="json", exclude={"activationId"})}
            for o in outcomes
        ]
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
        body = outcome.model_dump(mode="json", exclude={"activationId"})
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
