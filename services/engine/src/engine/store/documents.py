"""Stored forms: an execution's document (its wait in indexed fields, user payloads as
JSON text through `schemas.opaque`), the other records' documents, and the reads every
collection shares (by many ids; keyset pages)."""

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from engine.core.execution import ExecutionState, GroupWait
from engine.ports import Buffered, Resuming, decode_cursor, encode_cursor
from schemas import opaque
from schemas.events import ActivationOutcome, DeadLetter, ExecutionStatus

_STATE_FIELDS = (
    "at",
    "input",
    "vars",
    "results",
    "data",
    "user",
    "error",
    "applied",
    "steps",
    "actors",
    "returned",
    "return_value",
    "earlier",
)
WAIT_ORDER = [("waitSince", ASCENDING), ("_id", ASCENDING)]


def execution_to_doc(state: ExecutionState) -> dict[str, Any]:
    """The stored form of an execution; its wait, if any, in indexed fields: the trigger,
    or for a triggers group the group's wait id (its members in the state)."""
    if len(state.waiting_on) > 1 and state.group is None:
        raise ValueError(f"execution {state.execution_id} waits at more than one trigger")
    wait_at = state.wait_at
    waiting = wait_at is not None
    body = {name: getattr(state, name) for name in _STATE_FIELDS}
    if state.group is not None:
        body["group"] = dataclasses.asdict(state.group)
        body["waiting_on"] = list(state.waiting_on)
    return {
        "_id": state.execution_id,
        "flowId": state.flow_id,
        "status": state.status.value,
        "created": state.created,
        "updated": state.updated,
        "version": state.version,
        "waitTrigger": wait_at,
        "waitSince": state.wait_since if waiting else None,
        "waitKey": state.wait_key if waiting else None,
        "waitDeadline": state.deadline if waiting else None,
        "ownerId": state.owner_id,
        "finished": state.finished,
        "state": opaque.encode(body),
        "history": opaque.encode(list(state.history)),
    }


def execution_from_doc(doc: dict[str, Any]) -> ExecutionState:
    body = opaque.decode(doc["state"])
    trigger = doc.get("waitTrigger")
    group = body.get("group")
    return ExecutionState(
        execution_id=doc["_id"],
        flow_id=doc["flowId"],
        status=ExecutionStatus(doc["status"]),
        waiting_on=tuple(body["waiting_on"]) if group else (trigger,) if trigger else (),
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
        # stored since FlowRunner's execution API
        owner_id=doc.get("ownerId"),
        finished=doc.get("finished"),
        actors=tuple(body.get("actors", ())),
        returned=body.get("returned", False),
        return_value=body.get("return_value"),
        earlier=body.get("earlier", {}),
        group=GroupWait(group["block"], group["wait_id"], group["since"], tuple(group["arrived"]))
        if group
        else None,
    )


def outcome_to_doc(outcome: ActivationOutcome) -> dict[str, Any]:
    """An outcome's fields, none of them absent ones, and the request it keeps (as JSON
    text: the data may hold what BSON cannot)."""
    doc = outcome.model_dump(mode="json", exclude={"activationId"}, exclude_none=True)
    if outcome._request is not None:
        doc["request"] = opaque.encode(outcome._request)
    return doc


def request_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The request an outcome's document keeps (removed from `doc`), if any."""
    text = doc.pop("request", None)
    return opaque.decode(text) if text else None


def activation_from_doc(doc: dict[str, Any]) -> ActivationOutcome | Resuming:
    doc.pop("request", None)
    activation_id = doc.pop("_id")
    if "outcome" not in doc:
        return Resuming(activation_id, tuple(doc["resuming"]))
    return ActivationOutcome.model_validate({"activationId": activation_id, **doc})


def buffered_from_doc(doc: dict[str, Any]) -> Buffered:
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


def letter_from_doc(doc: dict[str, Any]) -> DeadLetter:
    return DeadLetter.model_validate({"deadLetterId": doc.pop("_id"), **doc})


IDS_PER_READ = 500


async def by_ids(
    collection: AsyncCollection[dict[str, Any]], ids: list[str]
) -> AsyncIterator[dict[str, Any]]:
    """The documents with these ids, read `IDS_PER_READ` ids per statement: the local
    server's time for one `$in` grows faster than its length (7 ms for 500 ids, 600 ms
    for 2,000)."""
    for start in range(0, len(ids), IDS_PER_READ):
        async for doc in collection.find({"_id": {"$in": ids[start : start + IDS_PER_READ]}}):
            yield doc


async def keyset_page(
    collection: AsyncCollection[dict[str, Any]],
    query: dict[str, Any],
    field: str,
    cursor: str | None,
    limit: int,
    newest_first: bool = False,
    union_of: Sequence[dict[str, Any]] = ({},),
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of documents in (`field`, `_id`) order after `cursor` (descending with
    `newest_first`), and the next cursor. `union_of`: the page of the union of `query`
    narrowed by each of these, read in order by each (an index that has the narrowing
    fields before `field` serves each in order) and merged, where `query` alone would be
    sorted whole."""
    after_op, order = ("$lt", DESCENDING) if newest_first else ("$gt", ASCENDING)
    if cursor:
        value, after = decode_cursor(cursor)
        query = {
            **query,
            "$or": [{field: {after_op: value}}, {field: value, "_id": {after_op: after}}],
        }
    sort = [(field, order), ("_id", order)]

    async def first(narrowed: dict[str, Any]) -> list[dict[str, Any]]:
        found = collection.find({**query, **narrowed}).sort(sort).limit(limit + 1)
        return [doc async for doc in found]

    parts = await asyncio.gather(*(first(narrowed) for narrowed in union_of))
    merged = heapq.merge(*parts, key=lambda doc: (doc[field], doc["_id"]), reverse=newest_first)
    # a document that moved between two narrowed sets while they were read (an execution
    # that completed) comes once
    unique = (next(same) for _, same in itertools.groupby(merged, key=lambda doc: doc["_id"]))
    docs = list(itertools.islice(unique, limit + 1))
    if len(docs) <= limit:
        return docs, None
    last = docs[limit - 1]
    return docs[:limit], encode_cursor(last[field], last["_id"])
