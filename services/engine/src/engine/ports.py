"""Every port the engine depends on: its store, events, HTTP blocks and token lookup.

The store keeps one document per execution and compares-and-sets it on `version`; the
execution carries its own wait (trigger, since, correlation key), indexed, so a resume
touches nothing else. `store.py` is the MongoDB adapter; `tests/fakes.py` the in-memory
one; both pass the same contract suite (`tests/store_contract.py`).
"""

import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.core.execution import ExecutionState, HttpCall
from schemas.activations import ActivationFilter
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    ExecutionStatus,
    RegistryRecord,
)
from schemas.flows import FlowDefinition
from schemas.sealing import SealedSecret
from schemas.users import User


@dataclass(frozen=True)
class FlowRecord:
    """A deployed flow version as stored."""

    flow_id: str
    name: str
    version: int
    created: int
    definition: FlowDefinition
    trigger_ids: dict[str, str]  # block name -> trigger id
    live: bool = True


@dataclass(frozen=True)
class Resuming:
    """An activation that chose the executions it resumes and has no outcome yet.

    Recorded before the first of them is resumed, so that a redelivery after a crash
    finishes exactly these (each execution remembers the activations it applied).
    """

    activation_id: str
    execution_ids: tuple[str, ...]


Page = tuple[list[ExecutionState], str | None]


@dataclass(frozen=True)
class TriggerSecrets:
    """A SIGNATURE trigger's sealed signing secrets, newest first; replaced as a whole by
    a compare-and-set on `version`."""

    version: int
    secrets: tuple[SealedSecret, ...]


# `Buffered.claimed_by` of an entry whose time ran out: it is being settled EXPIRED
EXPIRY = "expired"


@dataclass(frozen=True)
class Buffered:
    """An activation kept for an execution that has not begun waiting (`bufferSeconds`).

    Exactly one claimer takes it: an execution that begins waiting and whose condition
    holds, or `EXPIRY` once `expires` has passed. The store keeps when the sweep looks at
    it next: at its expiry while unclaimed, or when a claim goes stale (its claimer
    crashed before it dropped the entry).
    """

    activation_id: str
    flow_id: str
    trigger_id: str
    key: str | None  # the correlation key of its data, when the trigger's condition has one
    execution_id: str | None  # from `execution=<id>`: only that execution may take it
    data: dict[str, Any]
    user: dict[str, Any] | None
    arrived: int
    expires: int
    claimed_by: str | None = None


@dataclass(frozen=True)
class Timer:
    """A wait's deadline: `due` (epoch ms) for execution `execution_id`."""

    timer_id: str
    execution_id: str
    due: int


class Store(Protocol):
    """Everything the engine persists."""

    async def setup(self) -> None:
        """Create indexes (idempotent)."""

    async def next_version(self, name: str) -> int:
        """Reserve the next version number of the flow called `name`."""

    async def save_flow(self, record: FlowRecord) -> None:
        """Store a new flow version and make it the live one of its name."""

    async def get_flow(self, flow_id: str) -> FlowRecord | None: ...

    async def versions_of(self, name: str) -> list[FlowRecord]:
        """Every version of the flow named `name`, newest (the live one) first."""

    def flows(self) -> AsyncIterator[FlowRecord]:
        """Every deployed flow version, oldest first."""

    async def list_flows(
        self, cursor: str | None, limit: int
    ) -> tuple[list[FlowRecord], str | None]:
        """A page of flow versions, oldest first, and the cursor of the next."""

    async def create_execution(self, state: ExecutionState) -> bool:
        """Insert a new execution at version 0; False when one with its id exists already."""

    async def get_execution(self, execution_id: str) -> ExecutionState | None: ...

    async def get_executions(self, execution_ids: list[str]) -> dict[str, ExecutionState]:
        """`get_execution` for many at once (one statement), by lower-case id: the ones
        that exist."""

    async def save_execution(self, state: ExecutionState) -> bool:
        """Store `state` over version `state.version - 1`; False when that is not the stored one."""

    async def list_executions(
        self, flow_id: str, status: ExecutionStatus | None, cursor: str | None, limit: int
    ) -> Page:
        """A page of a flow's executions in creation order, and the cursor of the next."""

    def waiting(self, wait_id: str, key: str | None = None) -> AsyncIterator[ExecutionState]:
        """Executions waiting at a trigger or a triggers group (`Flow.wait_id`; only those
        with correlation `key`, if given), in the order they began waiting."""

    async def anyone_waiting(self, wait_id: str) -> bool:
        """Whether any execution waits at the trigger or triggers group."""

    async def get_activation(self, activation_id: str) -> ActivationOutcome | Resuming | None:
        """The activation's outcome, or the resumes it began, or None when it is new."""

    async def get_activations(
        self, activation_ids: list[str]
    ) -> dict[str, ActivationOutcome | Resuming]:
        """`get_activation` for many at once (one statement): the ones that have either."""

    async def begin_resuming(self, resuming: Resuming) -> Resuming:
        """Record the executions an activation resumes; return what was recorded first."""

    async def save_outcome(self, outcome: ActivationOutcome) -> bool:
        """Store an outcome; an activation's outcome never changes once stored. False when
        one was stored already (another delivery decided it first)."""

    async def save_outcomes(self, outcomes: list[ActivationOutcome]) -> set[str]:
        """`save_outcome` for many at once (one statement, plus one per recorded choice);
        the activation ids whose outcome was stored already."""

    async def activation_record(
        self, activation_id: str
    ) -> tuple[ActivationOutcome, dict[str, Any] | None] | None:
        """A decided activation and the request it keeps (`ActivationOutcome._request`,
        while the body retention lasts)."""

    async def list_activations(
        self, where: ActivationFilter, cursor: str | None, limit: int
    ) -> tuple[list[tuple[ActivationOutcome, dict[str, Any] | None]], str | None]:
        """A page of the activation log, newest received first, and the next cursor."""

    async def activation_times(
        self, where: ActivationFilter, limit: int
    ) -> list[tuple[int, str, str]]:
        """When each matching record was received, its trigger and outcome: the newest
        `limit`, newest first (what the log's charts count)."""

    async def purge_activations(self, now: int, body_ms: int, log_ms: int) -> tuple[int, int]:
        """Forget the requests received over `body_ms` ago and the records over `log_ms`
        ago; how many of each."""

    async def remember_key(
        self, scope: str, key: str, activation_id: str, now: int, retention_ms: int
    ) -> str:
        """Bind an idempotency key to an activation; return the activation that owns it."""

    async def purge(self, now: int, retention_ms: int) -> int:
        """Delete expired idempotency keys; return how many."""

    async def due_timers(self, now: int, limit: int) -> list[Timer]:
        """Timers due at `now`, earliest first (their waits may have ended since)."""

    async def drop_timer(self, timer_id: str) -> None: ...

    async def settle_outcome(self, outcome: ActivationOutcome) -> bool:
        """Store the final outcome of a BUFFERED activation (or of one with none yet).
        False when it has another: a buffered activation is settled exactly once."""

    async def buffer(self, entry: Buffered) -> Buffered:
        """Keep an activation for a later waiter; return what is kept under its id (the
        first delivery's entry, when a redelivery keeps it again)."""

    async def buffered(
        self, trigger_id: str, key: str | None, now: int, limit: int
    ) -> list[Buffered]:
        """Unclaimed, unexpired entries of a trigger (only those with correlation `key`, if
        given), in arrival order."""

    async def claim_buffered(
        self, activation_id: str, claimer: str, now: int, stale_ms: int
    ) -> bool:
        """Take an unclaimed entry: for an execution while it has not expired, for `EXPIRY`
        once it has. The sweep looks at a claim again `stale_ms` later if it is still there."""

    async def release_buffered(self, activation_id: str, claimer: str) -> None:
        """Give back an entry `claimer` holds (its execution could not be resumed)."""

    async def drop_buffered(self, activation_id: str) -> None: ...

    async def due_buffered(self, now: int, limit: int) -> list[Buffered]:
        """Entries the sweep must look at: unclaimed and expired, or claimed and stale."""

    async def save_secrets(self, flow_id: str, trigger_id: str, secrets: TriggerSecrets) -> bool:
        """Store a trigger's secrets over `secrets.version - 1` (version 1: the first); False
        when that is not the stored version."""

    async def secrets_of(self, flow_id: str) -> dict[str, TriggerSecrets]:
        """The secrets of a flow version's SIGNATURE triggers, by trigger id."""

    async def save_dead_letter(self, letter: DeadLetter) -> None:
        """Keep a dead letter; saving one with the same id again changes nothing."""

    async def get_dead_letter(self, letter_id: str) -> DeadLetter | None: ...

    async def dead_letter_of(self, activation_id: str) -> DeadLetter | None:
        """The latest dead letter of an activation, if it has one."""

    async def list_dead_letters(
        self, cursor: str | None, limit: int
    ) -> tuple[list[DeadLetter], str | None]:
        """Dead letters in the order they were parked, a page at a time."""

    async def mark_replayed(self, letter_id: str, at: int) -> DeadLetter | None:
        """Note that a dead letter was published again; None when there is no such letter."""


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


class Publisher(Protocol):
    """Publishes what the engine decided."""

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None: ...

    async def outcomes(self, outcomes: Sequence[ActivationOutcome]) -> None:
        """Publish outcomes, acknowledged together."""

    async def registry(self, records: Sequence[RegistryRecord]) -> None: ...

    async def dead_letter(self, letter: DeadLetter) -> None: ...

    async def replay(self, letter: DeadLetter) -> None:
        """Publish a dead letter's original message to its original topic, with its key."""

    async def activation(self, command: ActivateTrigger, key: str) -> None:
        """Publish an activation (a replay of a logged one) with its partition key."""


class HttpError(Exception):
    """An http_request block got no usable response; the message is for users."""


class HttpRunner(Protocol):
    """Performs the request of an http_request block."""

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        """Return `{"status", "headers", "body"}`; raise HttpError when there is no response."""
        ...


class Evaluator(Protocol):
    """Evaluates expressions not bounded in cost, off the event loop and under a time limit."""

    async def __call__(
        self, expressions: Sequence[tuple[str, str]], context: dict[str, Any], assigns: bool
    ) -> dict[str, Any]:
        """The value of each (key, source), in order; with `assigns`, each is a variable the
        later ones see. Raise ExpressionError when one fails or runs out of time."""


class TokenResolver(Protocol):
    """Turns a raw user-token into the user it names, or None when it is not active."""

    async def resolve(self, token: str) -> User | None: ...
