"""The engine's storage port and its MongoDB adapter (PyMongo's async API).

Designed for MongoDB-wire servers without transactions: every state change is one
single-document atomic update. User payloads (input, vars, results, history) are
stored as JSON text through `schemas.opaque`, so any JSON survives any server.
"""

import base64
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, Protocol

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from engine.core.execution import ExecutionState
from engine.records import FlowRecord, Wait
from schemas import opaque
from schemas.events import ActivationOutcome, ExecutionStatus
from schemas.flows import FlowDefinition

Page = tuple[list[ExecutionState], str | None]


class Store(Protocol):
    """Everything the engine persists."""

    async def setup(self) -> None:
        """Create indexes (idempotent)."""

    async def next_version(self, name: str) -> int:
        """Reserve the next version number of the flow called `name`."""

    async def save_flow(self, record: FlowRecord) -> None:
        """Store a new flow version and make it the live one of its name."""

    async def get_flow(self, flow_id: str) -> FlowRecord | None: ...

    def flows(self) -> AsyncIterator[FlowRecord]:
        """Every deployed flow version, oldest first."""

    async def create_execution(self, state: ExecutionState) -> bool:
        """Insert a new execution; False when one with its id exists already."""

    async def get_execution(self, execution_id: str, rev_hint: int = 0) -> ExecutionState | None:
        """The execution's newest state; `rev_hint` is a revision known to exist."""

    async def save_execution(self, state: ExecutionState) -> bool:
        """Store revision `state.rev`, read at `state.rev - 1`; False when it exists already."""

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        """A page of a flow's executions in creation order, and the cursor of the next."""

    async def add_waits(self, waits: list[Wait]) -> None:
        """Record waits; recording one that exists already is a no-op."""

    def candidate_waits(
        self, flow_id: str, trigger_id: str, activation_id: str, execution_id: str | None
    ) -> AsyncIterator[Wait]:
        """Waits at a trigger that are unclaimed or claimed by `activation_id`, oldest first."""

    async def claim(self, wait_id: str, activation_id: str, now: int) -> bool:
        """Claim a wait for an activation; True when it is (or already was) this one's."""

    async def finish_claims(self, activation_id: str) -> None:
        """Remove the waits an activation claimed, once its outcome is stored."""

    async def release(self, wait_id: str, activation_id: str) -> None:
        """Give back a claim that could not be used."""

    async def compact(self, limit: int = 1000) -> int:
        """Remove what finished activations left behind (maintenance); return how many."""

    async def get_outcome(self, activation_id: str) -> ActivationOutcome | None: ...

    async def save_outcome(self, outcome: ActivationOutcome) -> None:
        """Store an outcome; an activation's outcome never changes once stored."""

    async def remember_key(
        self, scope: str, key: str, activation_id: str, now: int, retention_ms: int
    ) -> str:
        """Bind an idempotency key to an activation; return the activation that owns it."""

    async def purge(self, now: int, retention_ms: int) -> int:
        """Delete expired idempotency keys; return how many."""


def encode_cursor(created: int, key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, key]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Decode a page cursor; raise ValueError when it is not one of ours."""
    try:
        created, key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except Exception as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(created, int) or not isinstance(key, str):
        raise ValueError("invalid cursor")
    return created, key


_STATE_FIELDS = (
    "at",
    "input",
    "vars",
    "results",
    "data",
    "user",
    "history",
    "error",
    "applied",
    "wait_seq",
)


def revision_id(execution_id: str, rev: int) -> str:
    """The `_id` of one revision of an execution: revisions are never updated, only added."""
    return f"{execution_id}:{rev:08d}"


def execution_to_doc(state: ExecutionState) -> dict[str, Any]:
    body = {name: getattr(state, name) for name in _STATE_FIELDS}
    return {
        "_id": revision_id(state.execution_id, state.rev),
        "executionId": state.execution_id,
        "flowId": state.flow_id,
        "status": state.status.value,
        "waitingOn": list(state.waiting_on),
        "created": state.created,
        "updated": state.updated,
        "rev": state.rev,
        "state": opaque.encode(body),
    }


def execution_from_doc(doc: dict[str, Any]) -> ExecutionState:
    body = opaque.decode(doc["state"])
    return ExecutionState(
        execution_id=doc["executionId"],
        flow_id=doc["flowId"],
        status=ExecutionStatus(doc["status"]),
        waiting_on=tuple(doc["waitingOn"]),
        created=doc["created"],
        updated=doc["updated"],
        rev=doc["rev"],
        at=body["at"],
        input=body["input"],
        vars=body["vars"],
        results=body["results"],
        data=body["data"],
        user=body["user"],
        history=tuple(body["history"]),
        error=body["error"],
        applied=tuple(body["applied"]),
        wait_seq=body["wait_seq"],
    )


def _wait_from_doc(doc: dict[str, Any], activation_id: str | None) -> Wait:
    return Wait(
        wait_id=doc["_id"],
        execution_id=doc["executionId"],
        flow_id=doc["flowId"],
        trigger_id=doc["triggerId"],
        created=doc["created"],
        snapshot=opaque.decode(doc["snapshot"]),
        activation_id=activation_id,
        rev=doc.get("rev", 0),
    )


class MongoStore:
    """The Store on MongoDB 7 or FerretDB."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], batch_size: int = 200) -> None:
        self._flows = db["flows"]
        self._names = db["flow_names"]
        self._executions = db["executions"]
        self._waits = db["waits"]
        self._claims = db["claims"]
        self._finished_claims = db["finished_claims"]
        self._outcomes = db["activations"]
        self._keys = db["idempotency_keys"]
        self._batch = batch_size

    async def setup(self) -> None:
        await self._flows.create_index([("name", ASCENDING), ("version", ASCENDING)], unique=True)
        await self._executions.create_index([("flowId", ASCENDING)])
        await self._waits.create_index(
            [
                ("flowId", ASCENDING),
                ("triggerId", ASCENDING),
                ("created", ASCENDING),
                ("_id", ASCENDING),
            ]
        )
        await self._claims.create_index([("activationId", ASCENDING)])
        await self._keys.create_index([("created", ASCENDING)])

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

    # Executions, waits and claims only ever insert documents and read them back by
    # `_id`: the two operations whose cost does not grow with a collection on every
    # MongoDB-wire server (docs/design.md). An execution is a series of revisions; a
    # claim is a document of its own; finished claims and their waits are compacted
    # away in the background.

    async def create_execution(self, state: ExecutionState) -> bool:
        try:
            await self._executions.insert_one(execution_to_doc(replace(state, rev=0)))
        except DuplicateKeyError:
            return False
        return True

    async def get_execution(self, execution_id: str, rev_hint: int = 0) -> ExecutionState | None:
        doc = await self._latest_revision(execution_id.lower(), rev_hint)
        return execution_from_doc(doc) if doc else None

    async def _revision(self, execution_id: str, rev: int) -> dict[str, Any] | None:
        return await self._executions.find_one({"_id": revision_id(execution_id, rev)})

    async def _latest_revision(self, execution_id: str, hint: int) -> dict[str, Any] | None:
        """The newest revision: revisions are numbered without gaps, so search upwards."""
        low = await self._revision(execution_id, hint) if hint else None
        if low is None:
            hint, low = 0, await self._revision(execution_id, 0)
            if low is None:
                return None
        step, high_rev = 1, hint + 1
        while (high := await self._revision(execution_id, high_rev)) is not None:
            hint, low = high_rev, high
            step *= 2
            high_rev = hint + step
        while high_rev - hint > 1:  # low exists at `hint`, nothing at `high_rev`
            middle = (hint + high_rev) // 2
            found = await self._revision(execution_id, middle)
            if found is None:
                high_rev = middle
            else:
                hint, low = middle, found
        return low

    async def save_execution(self, state: ExecutionState) -> bool:
        try:
            await self._executions.insert_one(execution_to_doc(state))
        except DuplicateKeyError:
            return False  # another writer produced this revision first
        return True

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        latest: dict[str, tuple[int, int, str]] = {}  # id -> (rev, created, status)
        fields = {"executionId": 1, "rev": 1, "created": 1, "status": 1}
        async for doc in self._executions.find(
            {"flowId": flow_id.lower()}, fields, batch_size=1000
        ):
            seen = latest.get(doc["executionId"])
            if seen is None or seen[0] < doc["rev"]:
                latest[doc["executionId"]] = (doc["rev"], doc["created"], doc["status"])
        after = decode_cursor(cursor) if cursor else None
        keys = sorted(
            (created, execution_id)
            for execution_id, (_, created, state) in latest.items()
            if (status is None or state == status.value)
            and (after is None or (created, execution_id) > after)
        )
        page = []
        for _, execution_id in keys[:limit]:
            revision = await self._revision(execution_id, latest[execution_id][0])
            if revision is not None:
                page.append(execution_from_doc(revision))
        if len(keys) <= limit:
            return page, None
        return page, encode_cursor(*keys[limit - 1])

    async def add_waits(self, waits: list[Wait]) -> None:
        if not waits:
            return
        docs = [
            {
                "_id": wait.wait_id,
                "executionId": wait.execution_id,
                "flowId": wait.flow_id,
                "triggerId": wait.trigger_id,
                "created": wait.created,
                "rev": wait.rev,
                "snapshot": opaque.encode(wait.snapshot),
            }
            for wait in waits
        ]
        try:
            await self._waits.insert_many(docs, ordered=False)
        except BulkWriteError as exc:  # recorded before: a redelivery repeats the insert
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def candidate_waits(
        self, flow_id: str, trigger_id: str, activation_id: str, execution_id: str | None
    ) -> AsyncIterator[Wait]:
        execution = None
        if execution_id is not None:
            execution, wait = await self._wait_of(flow_id, trigger_id, execution_id.lower())
            docs: AsyncIterator[dict[str, Any]] = _once(wait)
        else:
            docs = self._waits.find(
                {"flowId": flow_id, "triggerId": trigger_id}, batch_size=self._batch
            ).sort([("created", ASCENDING), ("_id", ASCENDING)])
        async for doc in docs:
            owner = await self._owner(doc["_id"])
            if owner is None or (
                owner == activation_id and not await self._finished(activation_id)
            ):
                yield replace(_wait_from_doc(doc, owner), execution=execution)

    async def _wait_of(
        self, flow_id: str, trigger_id: str, execution_id: str
    ) -> tuple[ExecutionState | None, dict[str, Any] | None]:
        """The execution and its wait at one trigger, found through the execution."""
        state = await self.get_execution(execution_id)
        if state is None or state.flow_id != flow_id or trigger_id not in state.waiting_on:
            return state, None
        wait = await self._waits.find_one(
            {"_id": Wait.make_id(execution_id, trigger_id, state.wait_seq)}
        )
        return state, wait

    async def _owner(self, wait_id: str) -> str | None:
        claim = await self._claims.find_one({"_id": wait_id})
        return None if claim is None else str(claim["activationId"])

    async def _finished(self, activation_id: str) -> bool:
        return await self._finished_claims.find_one({"_id": activation_id}) is not None

    async def claim(self, wait_id: str, activation_id: str, now: int) -> bool:
        try:
            await self._claims.insert_one(
                {"_id": wait_id, "activationId": activation_id, "claimedAt": now}
            )
        except DuplicateKeyError:
            owner = await self._owner(wait_id)
            return owner == activation_id and not await self._finished(activation_id)
        return True

    async def finish_claims(self, activation_id: str) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self._finished_claims.insert_one({"_id": activation_id})

    async def release(self, wait_id: str, activation_id: str) -> None:
        await self._claims.delete_one({"_id": wait_id, "activationId": activation_id})

    async def compact(self, limit: int = 1000) -> int:
        """Delete finished claims with their waits (off the hot path); return how many.

        One round costs a fixed number of statements, whatever it removes: on a server
        that scans for every delete (docs/design.md), one scan per collection per round.
        """
        finished = [f["_id"] async for f in self._finished_claims.find({}).limit(limit)]
        if not finished:
            return 0
        claimed = [
            c["_id"]
            async for c in self._claims.find({"activationId": {"$in": finished}}, {"_id": 1})
        ]
        if claimed:
            await self._waits.delete_many({"_id": {"$in": claimed}})
            await self._claims.delete_many({"_id": {"$in": claimed}})
        await self._finished_claims.delete_many({"_id": {"$in": finished}})
        return len(claimed)

    async def get_outcome(self, activation_id: str) -> ActivationOutcome | None:
        doc = await self._outcomes.find_one({"_id": activation_id})
        if doc is None:
            return None
        doc.pop("_id")
        return ActivationOutcome.model_validate({"activationId": activation_id, **doc})

    async def save_outcome(self, outcome: ActivationOutcome) -> None:
        # An insert, not an upsert: outcomes are immutable, and an insert stays cheap on
        # servers that scan the collection for every update (docs/design.md).
        body = outcome.model_dump(mode="json", exclude={"activationId"})
        with contextlib.suppress(DuplicateKeyError):
            await self._outcomes.insert_one({"_id": outcome.activationId, **body})

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


async def _once(doc: dict[str, Any] | None) -> AsyncIterator[dict[str, Any]]:
    if doc is not None:
        yield doc
