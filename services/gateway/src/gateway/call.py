"""A request as the gateway reads it: a callback's headers, query and body straight
from the ASGI scope, the one deadline of its phases, and the parameters it carries."""

import asyncio
import os
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from schemas.callbacks import Selector
from schemas.errors import ErrorCode
from schemas.requests import RequestError, parse_object, require_json

MAX_KEY = 256  # the longest idempotency key


class Call:
    """A callback as the ASGI server handed it over: its headers read once into a dict
    (lower-case names, as ASGI servers give them; the first of repeated headers wins,
    as with Starlette's `Headers.get`), its query string parsed only when present."""

    __slots__ = ("_query", "flow_id", "headers", "method", "receive", "scope", "trigger_id")

    def __init__(self, scope: Scope, receive: Receive, flow_id: str, trigger_id: str) -> None:
        self.scope = scope
        self.receive = receive
        self.method: str = scope["method"]
        self.flow_id = flow_id.lower()
        self.trigger_id = trigger_id.lower()
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        self.headers = headers
        self._query: QueryParams | None = None

    @property
    def query(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def query_string(self) -> bytes:
        raw: bytes = self.scope.get("query_string", b"")
        return raw

    @property
    def client(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None


class Deadline:
    """A request's one timeout, armed for one phase at a time (the body, then the
    publish) and off in between; on expiry it cancels the request's task, and the phase
    turns that into its error. One timer handle per phase: asyncio.timeout's
    rescheduling cost a tenth of a callback's CPU."""

    __slots__ = ("_handle", "_task", "expired")

    def __init__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False

    def arm(self, seconds: float) -> None:
        self.disarm()
        self._handle = asyncio.get_running_loop().call_later(seconds, self._expire)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _expire(self) -> None:
        self._handle = None
        self.expired = True
        self._task.cancel()

    def timed_out(self) -> bool:
        """Whether a CancelledError being handled is this deadline's (then taken back)."""
        if not self.expired:
            return False
        self.expired = False
        self._task.uncancel()
        return True


def new_id() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) writes it, at a third of
    its cost: 16 bytes from the OS, formatted once."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request's body from its ASGI messages, refused (413) as soon as it exceeds
    `limit` bytes, never buffering more."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(
                413, ErrorCode.BODY_TOO_LARGE, f"the body is larger than the limit of {limit} bytes"
            )
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def execution_of(value: str | None) -> str:
    try:
        return str(Selector.parse(value))
    except ValueError as exc:
        raise RequestError(400, ErrorCode.INVALID_PARAMETER, str(exc)) from exc


def query_data(query: QueryParams) -> dict[str, Any]:
    """A GET callback's data: its query string as an object, without `execution`; a key
    given more than once is a list of its values, in order."""
    data: dict[str, Any] = {}
    for key, value in query.multi_items():
        if key == "execution":
            continue
        if key in data:
            data[key] = [*data[key], value] if isinstance(data[key], list) else [data[key], value]
        else:
            data[key] = value
    return data


def idempotency_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("idempotency-key") or headers.get("x-idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"Idempotency-Key must be 1 to {MAX_KEY} characters"
        )
    return key


async def raw_body(receive: Receive, deadline: Deadline, limit: int, seconds: float) -> bytes:
    """The body, at most `limit` bytes of it, within `seconds` (else 413 or 408)."""
    deadline.arm(seconds)
    try:
        raw = await read_body(receive, limit)
    except asyncio.CancelledError:
        if deadline.timed_out():
            raise RequestError(
                408, ErrorCode.REQUEST_TIMEOUT, "the body did not arrive in time"
            ) from None
        raise
    finally:
        deadline.disarm()
    return raw


async def json_body(
    headers: Mapping[str, str], receive: Receive, deadline: Deadline, limit: int, seconds: float
) -> dict[str, Any]:
    """The body as a JSON object, read as `raw_body` reads it."""
    require_json(headers.get("content-type"))
    return parse_object(await raw_body(receive, deadline, limit, seconds))
