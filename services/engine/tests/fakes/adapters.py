"""The other ports of the engine, recorded, scripted or fixed."""

from collections.abc import Sequence
from typing import Any

from engine.core.execution import HttpCall
from engine.ports import (
    HttpError,
)
from schemas.events import (
    ActivateTrigger,
    ActivationOutcome,
    DeadLetter,
    ExecutionEvent,
    RegistryRecord,
)
from schemas.users import User


class RecordingPublisher:
    """The Publisher port, keeping what was published."""

    def __init__(self) -> None:
        self.events: list[ExecutionEvent] = []
        self.decided: list[ActivationOutcome] = []  # the outcomes published
        self.records: list[RegistryRecord] = []
        self.dead_letters: list[DeadLetter] = []
        self.replayed: list[DeadLetter] = []
        self.activations: list[tuple[ActivateTrigger, str]] = []  # replays, with their key

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

    async def activation(self, command: ActivateTrigger, key: str) -> None:
        self.activations.append((command, key))


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
