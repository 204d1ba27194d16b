"""The engine's store on MongoDB 6+ (PyMongo's async API); the port is in `ports.py`.

One document per execution, changed only by a compare-and-set on `{_id, version}`. The
execution's wait lives on it in indexed fields (`waitTrigger`, `waitSince`, `waitKey`),
so beginning or ending a wait is part of that same single-document write. Outcomes and
idempotency keys are read and written by `_id`. User payloads (input, vars, results,
history) are stored as JSON text through `schemas.opaque`, so any JSON survives any
server. A resume by execution id costs 4 statements, a NO_WAITER decision 3
(`tests/integration/test_store_mongo.py` counts them); compare-and-sets made while
another is on its way are sent together (`_GroupedSaves`).
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from engine.core.execution import ExecutionState
from engine.ports import (
    EXPIRY,
    Buffered,
    FlowRecord,
    Page,
    Resuming,
    Timer,
    TriggerSecrets,
    decode_cursor,
    encode_cursor,
)
from schemas import opaque
from schemas.events import ActivationOutcome, DeadLetter, ExecutionStatus, Outcome
from schemas.flows import FlowDefinition
from schemas.sealing import SealedSecret

_STATE_FIELDS = ("at", "input", "vars", "results", "data", "user", "error", "applied", "steps")
_ORDER = [("waitSince", ASCENDING), ("_id", ASCENDING)]


def execution_to_doc(state: ExecutionState) -> dict[str, Any]:
    """The stored form of an execution; its single wait, if any, in indexed fields."""
    if len(state.waiting_on) > 1:
        raise ValueError(f"execution {state.execution_id} waits at more than one trigger")
    waiting = state.status == ExecutionStatus.WAITING and bool(state.waiting_on)
    return {
        "_id": state.execution_id,
        "flowId": state.flow_id,
        "status": state.status.value,
        "created": state.created,
        "updated": state.updated,
        "version": state.version,
        "waitTrigger": state.waiting_on[0] if waiting else None,
        "waitSince": state.updated if waiting else None,
        "waitKey": state.wait_key if waiting else None,
        "waitDeadline": state.deadline if waiting else None,
        "state": opaque.encode({name: getattr(state, name) for name in _STATE_FIELDS}),
        "history": opaque.encode(list(state.history)),
    }


def execution_from_doc(doc: dict[str, Any]) -> ExecutionState:
    body = opaque.decode(doc["state"])
    trigger = doc.get("waitTrigger")
    return ExecutionState(
        execution_id=doc["_id"],
        flow_id=doc["flowId"],
        status=ExecutionStatus(doc["status"]),
        waiting_on=(trigger,) if trigger else (),
        created=doc["created"],
        updated=doc["updated"],
        version=doc["version"],
        wait_key=doc.get("waitKey"),
        deadline=doc.get("waitDeadline"),
        at=body["at"],
        input=body["input"],
        vars=body["vars"],
        results=body["results"],
        data=body["data"],
        user=body["user"],
        history=tuple(opaque.decode(doc["history"])),
        error=body["error"],
        applied=tuple(body["applied"]),
        steps=body.get("steps", 0),  # stored since the step budget counts across resumes
    )


@dataclass
class _Save:
    filter: dict[str, Any]
    update: dict[str, Any]
    execution_id: str
    write_id: str
    done: "asyncio.Future[bool]"


class _GroupedSaves:
    """Compare-and-sets of executions, sent together when they are made together.

    A save made while none is on its way is sent at once, alone; saves made meanwhile
    wait for it and go in one unordered bulk write (group commit: no wait is added, and
    under load one round trip carries many, which costs the server and the client a
    fraction of as many single updates). A bulk write reports how many documents it
    changed, not which: when that is fewer than it sent (another writer won a race),
    each save stamped its document with a random `writeId`, and a save won if the stored
    document bears its stamp.
    """

    def __init__(self, executions: AsyncCollection[dict[str, Any]]) -> None:
        self._executions = executions
        self._queue: list[_Save] = []
        self._sending: asyncio.Task[None] | None = None

    async def save(self, doc: dict[str, Any]) -> bool:
        execution_id = doc.pop("_id")
        write_id = doc["writeId"] = os.urandom(8).hex()
        save = _Save(
            {"_id": execution_id, "version": doc["version"] - 1},
            {"$set": doc},
            execution_id,
            write_id,
            asyncio.get_running_loop().create_future(),
        )
        self._queue.append(save)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send())
        return await save.done

    async def _send(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                await self._write(group)
            except BaseException as exc:  # each save's caller gets the error
                for save in group:
                    if not save.done.done():
                        save.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _write(self, group: list[_Save]) -> None:
        if len(group) == 1:
            (save,) = group
            single = await self._executions.update_one(save.filter, save.update)
            save.done.set_result(single.modified_count == 1)
            return
        try:
            result = await self._executions.bulk_write(
                [UpdateOne(save.filter, save.update) for save in group], ordered=False
            )
            changed, errors = result.modified_count, {}
        except BulkWriteError as exc:  # one statement's error is its save's alone
            changed = exc.details.get("nModified", 0)
            errors = {error["index"]: error for error in exc.details.get("writeErrors", [])}
        pending = []
        for index, save in enumerate(group):
            if index in errors:
                save.done.set_exception(BulkWriteError({"writeErrors": [errors[index]]}))
            else:
                pending.append(save)
        if changed == len(pending):
            for save in pending:
                save.done.set_result(True)
            return
        stamps = {
            doc["_id"]: doc.get("writeId")
            async for doc in self._executions.find(
                {"_id": {"$in": list({save.execution_id for save in pending})}}, {"writeId": 1}
            )
        }
        for save in pending:
            save.done.set_result(stamps.get(save.execution_id) == save.write_id)


_IDS_PER_READ = 500


async def _by_ids(
    collection: AsyncCollection[dict[str, Any]], ids: list[str]
) -> AsyncIterator[dict[str, Any]]:
    """The documents with these ids, read `_IDS_PER_READ` ids per statement: the local
    server's time for one `$in` grows faster than its length (7 ms for 500 ids, 600 ms
    for 2,000)."""
    for start in range(0, len(ids), _IDS_PER_READ):
        async for doc in collection.find({"_id": {"$in": ids[start : start + _IDS_PER_READ]}}):
            yield doc


# collections of the earlier insert-only design: executions as revision series
_EARLIER_DESIGN = frozenset({"waits", "claims", "finished_claims"})


class OutdatedDatabase(RuntimeError):
    """The database holds data in a format this engine does not read."""


def _activation_from_doc(doc: dict[str, Any]) -> ActivationOutcome | Resuming:
    activation_id = doc.pop("_id")
    if "outcome" not in doc:
        return Resuming(activation_id, tuple(doc["resuming"]))
    return ActivationOutcome.model_validate({"activationId": activation_id, **doc})


class MongoStore:
    """The Store on MongoDB 6+ (or the project's patched FerretDB)."""

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
        self._saves = _GroupedSaves(self._executions)

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
        await executions.create_index([("waitTrigger", ASCENDING), *_ORDER])
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

    async def next_version(self, name: str) -> int:
        doc = await self._names.find_one_and_update(
            {"_id": name},
            {"$inc": {"version": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # an upsert always returns the document
        return int(doc["version"])

    async def save_flow(self, record: FlowRecord) -> None:
        await self._flows.insert_one(
            {
                "_id": record.flow_id,
                "name": record.name,
                "version": record.version,
                "created": record.created,
                "definition": opaque.encode(
                    record.definition.model_dump(mode="json", by_alias=True, exclude_none=True)
                ),
                # block names are user text: never use them as keys of a stored document
                "triggers": [{"block": b, "triggerId": t} for b, t in record.trigger_ids.items()],
            }
        )
        # The newest version is live; a slower concurrent deploy of an older one cannot win
        # (its upsert collides with the existing name document instead).
        with contextlib.suppress(DuplicateKeyError):
            await self._names.update_one(
                {
                    "_id": record.name,
                    "$or": [
                        {"liveVersion": {"$exists": False}},
                        {"liveVersion": {"$lt": record.version}},
                    ],
                },
                {"$set": {"liveVersion": record.version, "liveFlowId": record.flow_id}},
                upsert=True,
            )

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        doc = await self._flows.find_one({"_id": flow_id.lower()})
        if doc is None:
            return None
        names = await self._names.find_one({"_id": doc["name"]})
        return self._flow_from_doc(doc, live_flow_id=(names or {}).get("liveFlowId"))

    async def flows(self) -> AsyncIterator[FlowRecord]:
        live = {d["_id"]: d.get("liveFlowId") async for d in self._names.find({})}
        async for doc in self._flows.find({}).sort([("created", ASCENDING), ("_id", ASCENDING)]):
            yield self._flow_from_doc(doc, live.get(doc["name"]))

    async def list_flows(
        self, cursor: str | None, limit: int
    ) -> tuple[list[FlowRecord], str | None]:
        docs, cursor = await _keyset_page(self._flows, {}, "created", cursor, limit)
        names = list({doc["name"] for doc in docs})
        live = {
            d["_id"]: d.get("liveFlowId") async for d in self._names.find({"_id": {"$in": names}})
        }
        return [self._flow_from_doc(doc, live.get(doc["name"])) for doc in docs], cursor

    @staticmethod
    def _flow_from_doc(doc: dict[str, Any], live_flow_id: str | None) -> FlowRecord:
        return FlowRecord(
            flow_id=doc["_id"],
            name=doc["name"],
            version=doc["version"],
            created=doc["created"],
            definition=FlowDefinition.model_validate(opaque.decode(doc["definition"])),
            trigger_ids={t["block"]: t["triggerId"] for t in doc["triggers"]},
            live=live_flow_id == doc["_id"],
        )

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
        return {doc["_id"]: execution_from_doc(doc) async for doc in _by_ids(self._executions, ids)}

    async def save_execution(self, state: ExecutionState) -> bool:
        doc = execution_to_doc(state)
        await self._arm(doc)
        return await self._saves.save(doc)

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        query: dict[str, Any] = {"flowId": flow_id.lower()}
        if status is not None:
            query["status"] = status.value
        docs, cursor = await _keyset_page(self._executions, query, "created", cursor, limit)
        return [execution_from_doc(doc) for doc in docs], cursor

    async def waiting(
        self, trigger_id: str, key: str | None = None
    ) -> AsyncIterator[ExecutionState]:
        query = {"waitKey": key} if key is not None else {"waitTrigger": trigger_id}
        async for doc in self._executions.find(query, batch_size=self._batch).sort(_ORDER):
            if doc["waitTrigger"] == trigger_id:
                yield execution_from_doc(doc)

    async def anyone_waiting(self, trigger_id: str) -> bool:
        found = await self._executions.find_one({"waitTrigger": trigger_id}, {"_id": 1})
        return found is not None

    async def get_activation(self, activation_id: str) -> ActivationOutcome | Resuming | None:
        doc = await self._outcomes.find_one({"_id": activation_id})
        return None if doc is None else _activation_from_doc(doc)

    async def get_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        found = _by_ids(self._outcomes, list(activation_ids))
        return {doc["_id"]: _activation_from_doc(doc) async for doc in found}

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
                return _buffered_from_doc(doc)
        return entry

    async def buffered(
        self, trigger_id: str, key: str | None, now: int, limit: int
    ) -> list[Buffered]:
        query: dict[str, Any] = {"key": key} if key is not None else {"triggerId": trigger_id}
        query.update({"claimedBy": None, "expires": {"$gt": now}})
        found = self._buffer.find(query).sort([("arrived", ASCENDING), ("_id", ASCENDING)])
        return [
            _buffered_from_doc(doc)
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
        return [_buffered_from_doc(doc) async for doc in found]

    async def save_secrets(self, flow_id: str, trigger_id: str, secrets: TriggerSecrets) -> bool:
        body = {
            "flowId": flow_id,
            "version": secrets.version,
            "secrets": [s.model_dump(mode="json") for s in secrets.secrets],
        }
        if secrets.version == 1:
            try:
                await self._secrets.insert_one({"_id": trigger_id, **body})
            except DuplicateKeyError:
                return False
            return True
        result = await self._secrets.update_one(
            {"_id": trigger_id, "version": secrets.version - 1}, {"$set": body}
        )
        return result.modified_count == 1

    async def secrets_of(self, flow_id: str) -> dict[str, TriggerSecrets]:
        return {
            doc["_id"]: TriggerSecrets(
                doc["version"], tuple(SealedSecret.model_validate(s) for s in doc["secrets"])
            )
            async for doc in self._secrets.find({"flowId": flow_id})
        }

    async def save_dead_letter(self, letter: DeadLetter) -> None:
        body = letter.model_dump(mode="json", exclude={"deadLetterId"})
        with contextlib.suppress(DuplicateKeyError):
            await self._letters.insert_one({"_id": letter.deadLetterId, **body})

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        doc = await self._letters.find_one({"_id": letter_id})
        return None if doc is None else _letter_from_doc(doc)

    async def dead_letter_of(self, activation_id: str) -> DeadLetter | None:
        found = self._letters.find({"activationId": activation_id}).sort("at", -1).limit(1)
        async for doc in found:
            return _letter_from_doc(doc)
        return None

    async def list_dead_letters(
        self, cursor: str | None, limit: int
    ) -> tuple[list[DeadLetter], str | None]:
        docs, cursor = await _keyset_page(self._letters, {}, "at", cursor, limit)
        return [_letter_from_doc(doc) for doc in docs], cursor

    async def mark_replayed(self, letter_id: str, at: int) -> DeadLetter | None:
        doc = await self._letters.find_one_and_update(
            {"_id": letter_id},
            {"$set": {"replayedAt": at}},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _letter_from_doc(doc)


async def _keyset_page(
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    field: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of documents in (`field`, `_id`) order after `cursor`, and the next cursor."""
    if cursor:
        value, after = decode_cursor(cursor)
        query = {**query, "$or": [{field: {"$gt": value}}, {field: value, "_id": {"$gt": after}}]}
    found = collection.find(query).sort([(field, ASCENDING), ("_id", ASCENDING)])
    docs = [doc async for doc in found.limit(limit + 1)]
    if len(docs) <= limit:
        return docs, None
    last = docs[limit - 1]
    return docs[:limit], encode_cursor(last[field], last["_id"])


def _buffered_from_doc(doc: dict[str, Any]) -> Buffered:
    body = opaque.decode(doc["body"])
    return Buffered(
        activation_id=doc["_id"],
        flow_id=doc["flowId"],
        trigger_id=doc["triggerId"],
        key=doc["key"],
        execution_id=doc["executionId"],
        data=body["data"],
        user=body["user"],
        arrived=doc["arrived"],
        expires=doc["expires"],
        claimed_by=doc["claimedBy"],
    )


def _letter_from_doc(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter.model_validate({"deadLetterId": doc.pop("_id"), **doc})
