"""The engine's outbound ports besides the store: events, HTTP blocks and token lookup."""

from collections.abc import Sequence
from typing import Any, Protocol

from engine.core.execution import HttpCall
from schemas.events import ActivationOutcome, ExecutionEvent, RegistryRecord
from schemas.users import User


class Publisher(Protocol):
    """Publishes what the engine decided."""

    async def execution_events(self, events: Sequence[ExecutionEvent]) -> None: ...

    async def outcome(self, outcome: ActivationOutcome) -> None: ...

    async def registry(self, records: Sequence[RegistryRecord]) -> None: ...


class HttpError(Exception):
    """An http_request block got no usable response; the message is for users."""


class HttpRunner(Protocol):
    """Performs the request of an http_request block."""

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        """Return `{"status", "headers", "body"}`; raise HttpError when there is no response."""
        ...


class TokenResolver(Protocol):
    """Turns a raw user-token into the user it names, or None when it is not active."""

    async def resolve(self, token: str) -> User | None: ...
