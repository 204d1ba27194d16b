"""In-memory stand-ins for the engine's ports, with the same semantics as the real ones."""

import copy
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from engine.core.execution import ExecutionState, HttpCall
from engine.ports import HttpError
from engine.records import FlowRecord, Wait
from engine.store import Page, decode_cursor, encode_cursor
from schemas.events import ActivationOutcome, ExecutionEvent, ExecutionStatus, RegistryRecord
from schemas.users import User


class InMemoryStore:
    """The Store port in a dict; passes the same contract tests as MongoStore."""

    def __init__(self) -> None:
        self.versions: dict[str, int] = {}
        self.live: dict[str, tuple[int, str]] = {}
        self.flow_records: dict[str, FlowRecord] = {}
        self.executions: dict[str, ExecutionState] = {}
        self.waits: dict[str, Wait] = {}
        self.outcomes: dict[str, ActivationOutcome] = {}
        self.keys: dict[str, tuple[str, int]] = {}

    async def setup(self) -> None:
        return None

    async def next_version(self, name: str) -> int:
        self.versions[name] = self.versions.get(name, 0) + 1
        return self.versions[name]

    async def save_flow(self, record: FlowRecord) -> None:
        if any(
            r.name == record.name and r.version == record.version
            for r in self.flow_records.values()
        ):
            raise ValueError("duplicate version")
        self.flow_records[record.flow_id] = record
        if record.name not in self.live or self.live[record.name][0] < record.version:
            self.live[record.name] = (record.version, record.flow_id)

    async def get_flow(self, flow_id: str) -> FlowRecord | None:
        record = self.flow_records.get(flow_id.lower())
        if record is None:
            return None
        return replace(record, live=self.live[record.name][1] == record.flow_id)

    async def flows(self) -> AsyncIterator[FlowRecord]:
        for record in sorted(self.flow_records.values(), key=lambda r: (r.created, r.flow_id)):
            yield replace(record, live=self.live[record.name][1] == record.flow_id)

    async def create_execution(self, state: ExecutionState) -> bool:
        if state.execution_id in self.executions:
            return False
        self.executions[state.execution_id] = copy.deepcopy(state)
        return True

    async def get_execution(self, execution_id: str, rev_hint: int = 0) -> ExecutionState | None:
        state = self.executions.get(execution_id.lower())
        return copy.deepcopy(state)

    async def save_execution(self, state: ExecutionState) -> bool:
        current = self.executions.get(state.execution_id)
        if current is None or current.rev != state.rev - 1:
            return False
        self.executions[state.execution_id] = copy.deepcopy(state)
        return True

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        after = decode_cursor(cursor) if cursor else None
        found = sorted(
            (
                s
                for s in self.executions.values()
                if s.flow_id == flow_id.lower()
                and (status is None or s.status == status)
                and (after is None or (s.created, s.execution_id) > after)
            ),
            key=lambda s: (s.created, s.execution_id),
        )
        if len(found) <= limit:
            return copy.deepcopy(found), None
        last = found[limit - 1]
        return copy.deepcopy(found[:limit]), encode_cursor(last.created, last.execution_id)

    async def add_waits(self, waits: list[Wait]) -> None:
        for wait in waits:
            self.waits.setdefault(wait.wait_id, replace(wait, activation_id=None))

    async def candidate_waits(
        self, flow_id: str, trigger_id: str, activation_id: str, execution_id: str | None
    ) -> AsyncIterator[Wait]:
        found = sorted(
            (
                w
                for w in self.waits.values()
                if w.flow_id == flow_id
                and w.trigger_id == trigger_id
                and w.activation_id in (None, activation_id)
                and (execution_id is None or w.execution_id == execution_id)
            ),
            key=lambda w: (w.created, w.wait_id),
        )
        for wait in found:
            yield copy.deepcopy(wait)

    async def claim(self, wait_id: str, activation_id: str, now: int) -> bool:
        wait = self.waits.get(wait_id)
        if wait is None or wait.activation_id not in (None, activation_id):
            return False
        self.waits[wait_id] = replace(wait, activation_id=activation_id)
        return True

    async def finish_claims(self, activation_id: str) -> None:
        for wait_id in [w.wait_id for w in self.waits.values() if w.activation_id == activation_id]:
            del self.waits[wait_id]

    async def release(self, wait_id: str, activation_id: str) -> None:
        wait = self.waits.get(wait_id)
        if wait is not None and wait.activation_id == activation_id:
            self.waits[wait_id] = replace(wait, activation_id=None)

    async def compact(self, limit: int = 1000) -> int:
        return 0  # finish_claims removes the waits at once here

    async def get_outcome(self, activation_id: str) -> ActivationOutcome | None:
        return self.outcomes.get(activation_id)

    async def save_outcome(self, outcome: ActivationOutcome) -> None:
        self.outcomes.setdefault(outcome.activationId, outcome)

    async def remember_key(
        self, scope: str, key: str, activation_id: str, now: int, retention_ms: int
    ) -> str:
        key_id = f"{scope}:{key}"
        owner = self.keys.get(key_id)
        if owner is None or owner[1] < now - retention_ms:
            self.keys[key_id] = (activation_id, now)
            return activation_id
        return owner[0]

    async def purge(self, now: int, retention_ms: int) -> int:
        expired = [k for k, (_, created) in self.keys.items() if created < now - retention_ms]
        for key in expired:
            del self.keys[key]
        return len(expired)


class RecordingPublisher:
    """The Publisher port, keeping what was published."""

    def __init__(self) -> None:
        self.events: list[ExecutionEvent] = []
        self.outcomes: list[ActivationOutcome] = []
        self.records: list[RegistryRecord] = []

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None:
        self.events.extend(events)

    async def outcome(self, outcome: ActivationOutcome) -> None:
        self.outcomes.append(outcome)

    async def registry(self, records: Sequence[RegistryRecord]) -> None:
        self.records.extend(records)


class ScriptedHttp:
    """The HttpRunner port: answers from a script and records the calls."""

    def __init__(self, response: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.calls: list[HttpCall] = []
        self.response = response or {"status": 200, "headers": {}, "body": None}
        self.error = error

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        self.calls.append(call)
        if self.error:
            raise HttpError(self.error)
        return self.response


class StaticTokens:
    """The TokenResolver port over a fixed token -> user table."""

    def __init__(self, users: dict[str, User] | None = None) -> None:
        self.users = users or {}
        self.asked: list[str] = []

    async def resolve(self, token: str) -> User | None:
        self.asked.append(token)
        return self.users.get(token)


class Clock:
    """A clock the test moves by hand (epoch milliseconds)."""

    def __init__(self, now: int = 1_700_000_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        self.now += 1
        return self.now
