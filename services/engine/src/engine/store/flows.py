"""Flow versions and the live version of each name (`flows`, `flow_names`)."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from engine.ports import FlowRecord
from engine.store.documents import keyset_page
from engine.store.schema import Collections
from schemas import opaque
from schemas.flows import FlowDefinition


class Flows(Collections):
    """Flow versions and the live version of each name (`flows`, `flow_names`)."""

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

    async def versions_of(self, name: str) -> list[FlowRecord]:
        docs = [doc async for doc in self._flows.find({"name": name}).sort("version", DESCENDING)]
        return [self._flow_from_doc(doc, docs[0]["_id"]) for doc in docs]

    async def flows(self) -> AsyncIterator[FlowRecord]:
        live = {d["_id"]: d.get("liveFlowId") async for d in self._names.find({})}
        async for doc in self._flows.find({}).sort([("created", ASCENDING), ("_id", ASCENDING)]):
            yield self._flow_from_doc(doc, live.get(doc["name"]))

    async def list_flows(
        self, cursor: str | None, limit: int
    ) -> tuple[list[FlowRecord], str | None]:
        docs, cursor = await keyset_page(self._flows, {}, "created", cursor, limit)
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
