"""What the in-memory store's parts share: the data, and the suspension a real store
makes at every call."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from engine.core.execution import ExecutionState
from engine.ports import (
    Buffered,
    FlowRecord,
    Resuming,
    Timer,
    TriggerSecrets,
    decode_cursor,
    encode_cursor,
)
from schemas.events import (
    ActivationOutcome,
    DeadLetter,
)

Item = TypeVar("Item")


async def suspend() -> None:
    """A real store suspends at every call: let other tasks run, so that races happen."""
    await asyncio.sleep(0)


class Data:
    """The in-memory store's data, one dict per collection."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.live: dict[str, tuple[int, str]] = {}
        self.flow_records: dict[str, FlowRecord] = {}
        self.executions: dict[str, ExecutionState] = {}
        self.outcomes: dict[str, ActivationOutcome] = {}
        self.resuming: dict[str, Resuming] = {}
        self.keys: dict[str, tuple[str, int]] = {}
        self.letters: dict[str, DeadLetter] = {}
        self.timers: dict[str, Timer] = {}
        self.kept: dict[str, tuple[Buffered, int]] = {}  # activation id -> entry, due
        self.secrets: dict[str, tuple[str, TriggerSecrets]] = {}  # trigger id -> flow, secrets

    async def setup(self) -> None:
        return None


def keyset_page(
    items: list[Item], key: Callable[[Item], tuple[int, str]], cursor: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """A page of `items` in `key` order after `cursor`, and the next cursor (as MongoStore)."""
    after = decode_cursor(cursor) if cursor else None
    found = sorted((i for i in items if after is None or key(i) > after), key=key)
    if len(found) <= limit:
        return found, None
    return found[:limit], encode_cursor(*key(found[limit - 1]))
