"""Executions written straight to the store, to measure at scale without the time it
takes to create them through the product."""

import time
import uuid
from dataclasses import replace
from typing import Any


async def create_executions(
    mongodb: str, database: str, flow_id: str, count: int, waiting: bool
) -> list[str]:
    """Executions written as the engine writes them: waiting at the flow's trigger (with
    their correlation keys, `input.ref` = their id), or completed."""
    from pymongo import AsyncMongoClient

    from engine.core import execution as ex
    from engine.core.definition import compile_flow
    from engine.store import MongoStore, execution_to_doc
    from schemas.events import ExecutionStatus

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    record = await store.get_flow(flow_id)
    assert record is not None
    flow = compile_flow(record.definition, record.flow_id, record.trigger_ids.__getitem__)
    ids: list[str] = []
    now = int(time.time() * 1000)
    for start in range(0, count, 5000):
        docs = []
        for _ in range(min(5000, count - start)):
            execution_id = str(uuid.uuid4())
            state = ex.start(
                flow, ex.new_execution(flow, execution_id, {"ref": execution_id}, now), now
            ).state
            if not waiting:
                state = replace(
                    state, status=ExecutionStatus.COMPLETED, waiting_on=(), wait_key=None
                )
            docs.append(execution_to_doc(state))
            ids.append(execution_id)
        await client[database]["executions"].insert_many(docs, ordered=False)
    await client.close()
    return ids


async def create_timed(mongodb: str, database: str, flow_id: str, due: list[int]) -> list[str]:
    """Executions waiting at the flow's trigger with these deadlines, and their timers,
    written as the engine writes them (timers first)."""
    from pymongo import AsyncMongoClient

    from engine.core import execution as ex
    from engine.core.definition import compile_flow
    from engine.store import MongoStore, execution_to_doc

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    store = MongoStore(client[database])
    record = await store.get_flow(flow_id)
    assert record is not None
    flow = compile_flow(record.definition, record.flow_id, record.trigger_ids.__getitem__)
    now = int(time.time() * 1000)
    ids, docs, timers = [], [], []
    for deadline in due:
        execution_id = str(uuid.uuid4())
        state = ex.start(flow, ex.new_execution(flow, execution_id, {}, now), now).state
        docs.append(execution_to_doc(replace(state, deadline=deadline)))
        timers.append(
            {"_id": f"{execution_id}:{deadline}", "executionId": execution_id, "due": deadline}
        )
        ids.append(execution_id)
    for start in range(0, len(docs), 5000):
        await client[database]["timers"].insert_many(timers[start : start + 5000])
        await client[database]["executions"].insert_many(docs[start : start + 5000])
    await client.close()
    return ids


async def read_lateness(mongodb: str, database: str, due: dict[str, int]) -> list[int | None]:
    """For each execution, milliseconds from its deadline to its `timedOut` entry."""
    from pymongo import AsyncMongoClient

    from schemas import opaque

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb)
    late: dict[str, int] = {}
    ids = list(due)
    for start in range(0, len(ids), 1000):
        found = client[database]["executions"].find({"_id": {"$in": ids[start : start + 1000]}})
        async for doc in found:
            for entry in opaque.decode(doc["history"]):
                if entry["event"] == "timedOut":
                    late[doc["_id"]] = entry["at"] - due[doc["_id"]]
    await client.close()
    return [late.get(execution_id) for execution_id in ids]
