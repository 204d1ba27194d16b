"""In-memory stand-ins for the engine's ports, with the same semantics as the real ones."""

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from engine.core.execution import ExecutionState, HttpCall
from engine.ports import (
    EXPIRY,
    Buffered,
    FlowRecord,
    HttpError,
    Page,
    Resuming,
    Timer,
    TriggerSecrets,
    decode_cursor,
    encode_cursor,
)
from schemas.events import (
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    ExecutionStatus,
    Outcome,
    RegistryRecord,
)
from schemas.users import User

Item = TypeVar("Item")


async def _suspend() -> None:
    """A real store suspends at every call: let other tasks run, so that races happen."""
    await asyncio.sleep(0)


class InMemoryStore:
    """The Store port in a dict; passes the same contract tests as MongoStore."""

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

    async def list_flows(
        self, cursor: str | None, limit: int
    ) -> tuple[list[FlowRecord], str | None]:
        page, next_cursor = _keyset_page(
            list(self.flow_records.values()), lambda r: (r.created, r.flow_id), cursor, limit
        )
        return [replace(r, live=self.live[r.name][1] == r.flow_id) for r in page], next_cursor

    def _arm(self, state: ExecutionState) -> None:
        if state.deadline is not None and state.status == ExecutionStatus.WAITING:
            timer_id = f"{state.execution_id}:{state.deadline}"
            self.timers.setdefault(timer_id, Timer(timer_id, state.execution_id, state.deadline))

    async def due_timers(self, now: int, limit: int) -> list[Timer]:
        return sorted((t for t in self.timers.values() if t.due <= now), key=lambda t: t.due)[
            :limit
        ]

    async def drop_timer(self, timer_id: str) -> None:
        self.timers.pop(timer_id, None)

    async def create_execution(self, state: ExecutionState) -> bool:
        await _suspend()
        self._arm(state)
        if state.execution_id in self.executions:
            return False
        self.executions[state.execution_id] = copy.deepcopy(replace(state, version=0))
        return True

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        await _suspend()
        return copy.deepcopy(self.executions.get(execution_id.lower()))

    async def get_executions(self, execution_ids: list[str]) -> dict[str, ExecutionState]:
        await _suspend()
        found = {i.lower(): self.executions.get(i.lower()) for i in execution_ids}
        return {i: copy.deepcopy(state) for i, state in found.items() if state is not None}

    async def save_execution(self, state: ExecutionState) -> bool:
        await _suspend()
        self._arm(state)
        current = self.executions.get(state.execution_id)
        if current is None or current.version != state.version - 1:
            return False
        self.executions[state.execution_id] = copy.deepcopy(state)
        return True

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        matching = [
            s
            for s in self.executions.values()
            if s.flow_id == flow_id.lower() and (status is None or s.status == status)
        ]
        page, next_cursor = _keyset_page(
            matching, lambda s: (s.created, s.execution_id), cursor, limit
        )
        return copy.deepcopy(page), next_cursor

    async def waiting(
        self, trigger_id: str, key: str | None = None
    ) -> AsyncIterator[ExecutionState]:
        await _suspend()
        found = sorted(
            (
                s
                for s in self.executions.values()
                if s.status == ExecutionStatus.WAITING
                and s.waiting_on == (trigger_id,)
                and (key is None or s.wait_key == key)
            ),
            key=lambda s: (s.updated, s.execution_id),
        )
        for state in found:
            yield copy.deepcopy(state)

    async def anyone_waiting(self, trigger_id: str) -> bool:
        await _suspend()
        return any(
            s.status == ExecutionStatus.WAITING and s.waiting_on == (trigger_id,)
            for s in self.executions.values()
        )

    async def get_activation(self, activation_id: str) -> ActivationOutcome | Resuming | None:
        await _suspend()
        return self.outcomes.get(activation_id) or self.resuming.get(activation_id)

    async def get_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        found = {a: await self.get_activation(a) for a in activation_ids}
        return {a: f for a, f in found.items() if f is not None}

    async def begin_resuming(self, resuming: Resuming) -> Resuming:
        return self.resuming.setdefault(resuming.activation_id, resuming)

    async def save_outcome(self, outcome: ActivationOutcome) -> bool:
        await _suspend()
        if outcome.activationId in self.outcomes:
            return False
        self.outcomes[outcome.activationId] = outcome
        self.resuming.pop(outcome.activationId, None)
        return True

    async def save_outcomes(self, outcomes: list[ActivationOutcome]) -> set[str]:
        return {o.activationId for o in outcomes if not await self.save_outcome(o)}

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

    async def settle_outcome(self, outcome: ActivationOutcome) -> bool:
        await _suspend()
        stored = self.outcomes.get(outcome.activationId)
        if stored is not None and stored.outcome != Outcome.BUFFERED:
            return False
        self.outcomes[outcome.activationId] = outcome
        self.resuming.pop(outcome.activationId, None)
        return True

    async def buffer(self, entry: Buffered) -> Buffered:
        await _suspend()
        kept, _ = self.kept.setdefault(entry.activation_id, (entry, entry.expires))
        return kept

    async def buffered(
        self, trigger_id: str, key: str | None, now: int, limit: int
    ) -> list[Buffered]:
        await _suspend()
        found = [
            entry
            for entry, _ in self.kept.values()
            if entry.trigger_id == trigger_id
            and (key is None or entry.key == key)
            and entry.claimed_by is None
            and entry.expires > now
        ]
        return sorted(found, key=lambda e: (e.arrived, e.activation_id))[:limit]

    async def claim_buffered(
        self, activation_id: str, claimer: str, now: int, stale_ms: int
    ) -> bool:
        await _suspend()
        found = self.kept.get(activation_id)
        if found is None or found[0].claimed_by is not None:
            return False
        entry = found[0]
        if (entry.expires <= now) != (claimer == EXPIRY):
            return False
        self.kept[activation_id] = (replace(entry, claimed_by=claimer), now + stale_ms)
        return True

    async def release_buffered(self, activation_id: str, claimer: str) -> None:
        found = self.kept.get(activation_id)
        if found is not None and found[0].claimed_by == claimer:
            self.kept[activation_id] = (replace(found[0], claimed_by=None), found[0].expires)

    async def drop_buffered(self, activation_id: str) -> None:
        self.kept.pop(activation_id, None)

    async def due_buffered(self, now: int, limit: int) -> list[Buffered]:
        due = sorted((d, e.activation_id, e) for e, d in self.kept.values() if d <= now)
        return [entry for _, _, entry in due[:limit]]

    async def save_secrets(self, flow_id: str, trigger_id: str, secrets: TriggerSecrets) -> bool:
        await _suspend()
        stored = self.secrets.get(trigger_id)
        if (stored[1].version if stored else 0) != secrets.version - 1:
            return False
        self.secrets[trigger_id] = (flow_id, secrets)
        return True

    async def secrets_of(self, flow_id: str) -> dict[str, TriggerSecrets]:
        return {t: s for t, (f, s) in self.secrets.items() if f == flow_id}

    async def save_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.setdefault(letter.deadLetterId, letter)

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None:
        return self.letters.get(letter_id)

    async def dead_letter_of(self, activation_id: str) -> DeadLetter | None:
        found = [d for d in self.letters.values() if d.activationId == activation_id]
        return max(found, key=lambda d: d.at) if found else None

    async def list_dead_letters(
        self, cursor: str | None, limit: int
    ) -> tuple[list[DeadLetter], str | None]:
        return _keyset_page(
            list(self.letters.values()), lambda d: (d.at, d.deadLetterId), cursor, limit
        )

    async def mark_replayed(self, letter_id: str, at: int) -> DeadLetter | None:
        letter = self.letters.get(letter_id)
        if letter is None:
            return None
        self.letters[letter_id] = letter.model_copy(update={"replayedAt": at})
        return self.letters[letter_id]


def _keyset_page(
    items: list[Item], key: Callable[[Item], tuple[int, str]], cursor: str | None, limit: int
) -> tuple[list[Item], str | None]:
    """A page of `items` in `key` order after `cursor`, and the next cursor (as MongoStore)."""
    after = decode_cursor(cursor) if cursor else None
    found = sorted((i for i in items if after is None or key(i) > after), key=key)
    if len(found) <= limit:
        return found, None
    return found[:limit], encode_cursor(*key(found[limit - 1]))


class RecordingPublisher:
    """The Publisher port, keeping what was published."""

    def __init__(self) -> None:
        self.events: list[ExecutionEvent] = []
        self.decided: list[ActivationOutcome] = []  # the outcomes published
        self.records: list[RegistryRecord] = []
        self.dead_letters: list[DeadLetter] = []
        self.replayed: list[DeadLetter] = []

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None:
        self.events.extend(events)

    async def outcomes(self, outcomes: Sequence[ActivationOutcome]) -> None:
        self.decided.extend(outcomes)

    async def registry(self, records: Sequence[RegistryRecord]) -> None:
        self.records.extend(records)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letters.append(letter)

    async def replay(self, letter: DeadLetter) -> None:
        self.replayed.append(letter)


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
