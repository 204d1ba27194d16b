"""Compare-and-sets of executions made together, sent together (group commit)."""

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError


@dataclass
class _Save:
    filter: dict[str, Any]
    update: dict[str, Any]
    execution_id: str
    write_id: str
    done: "asyncio.Future[bool]"


class GroupedSaves:
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
