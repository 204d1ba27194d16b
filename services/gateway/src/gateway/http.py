"""The gateway's endpoints: admit a callback or a start request, publish it, answer.

A callback costs one dictionary lookup in the registry, at most one auth round trip per
token-cache miss, and one Kafka produce that must be acknowledged before the answer.
"""

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.errors import MessageSizeTooLargeError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from gateway.limits import TokenBuckets
from gateway.metrics import Metrics
from gateway.registry import Registry
from gateway.signatures import Signatures
from gateway.tokens import AuthUnavailable, TokenCache
from schemas.access import ADMIN_KEY_HEADER, auth_unavailable, require_access
from schemas.callbacks import AUTH_MESSAGE, AuthCheck, Selector, check_user
from schemas.errors import ErrorCode
from schemas.events import ActivationSource, StartExecution, TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy, SignatureScheme
from schemas.requests import RequestError, internal_error_body, parse_object, require_json
from schemas.signing import sign_user, sign_verification
from schemas.topics import Topics
from schemas.users import User
from schemas.webhooks import SignatureError, message_key

logger = logging.getLogger(__name__)

# topic, message, key, correlation id (the activation or execution id)
Publish = Callable[[str, bytes, bytes, str], Awaitable[None]]

_MAX_KEY = 256
_HTTP = ActivationSource.HTTP.value
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _encode(message: dict[str, Any]) -> bytes:
    """`message` as compact JSON bytes: orjson (a fifth of json's cost), or json for
    what orjson refuses to write, an integer beyond 64 bits (the data keeps it exact)."""
    try:
        return orjson.dumps(message)
    except orjson.JSONEncodeError:
        return _JSON_ENCODER.encode(message).encode()


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    body_seconds: float
    trust_forwarded_for: bool
    publish_seconds: float = 5.0
    admin_key: str | None = None  # for /execute, with FlowAdmin user-tokens
    activation_key: str | None = None  # signs the users it resolves (schemas.signing)


ACTIVATE_PATH = "/api/automation/flow/{flowId}/trigger/{triggerId}/activate"
_ACTIVATE = re.compile(
    r"^/api/automation/flow/(?P<flowId>[^/]+)/trigger/(?P<triggerId>[^/]+)/activate$"
)


class GatewayApp(Starlette):
    """The gateway's ASGI app: Starlette, with callbacks (POST or GET on ACTIVATE_PATH)
    answered before it.

    A callback is the hot path: Starlette's middleware, router, request and response
    objects cost more CPU than the rest of a callback's work, so a callback is read
    straight from the ASGI scope (`Call`) and answered with two ASGI messages. Only that
    one route is taken here, with the same path parameters (matched as Starlette's
    `{name}` does); an unexpected error is logged and answered 500 with the contract's
    body, as the app's server-error handler answers the other routes.
    """

    def __init__(self, endpoints: "Endpoints", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "GET"):
            match = _ACTIVATE.match(scope["path"])
            if match is not None:
                try:
                    await self._endpoints.callback(Call(scope, receive, *match.groups()), send)
                except ClientDisconnect:
                    pass  # the caller left before its body arrived: nobody to answer
                except Exception:
                    logger.error("request failed", exc_info=True, extra={"path": scope["path"]})
                    with contextlib.suppress(Exception):  # unless the answer had begun
                        await JSONResponse(internal_error_body(), status_code=500)(
                            scope, receive, send
                        )
                return
        await super().__call__(scope, receive, send)


async def head_of_callback(request: Request) -> Response:
    """HEAD on ACTIVATE_PATH (Starlette allows it wherever GET is): a HEAD is a safe
    request and must not activate anything, so 405 like any other method."""
    raise HTTPException(405, headers={"Allow": "GET, POST"})


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


class Endpoints:
    """The gateway's HTTP endpoints: callbacks, starts, health and metrics."""

    def __init__(
        self,
        registry: Registry,
        tokens: TokenCache,
        publish: Publish,
        topics: Topics,
        metrics: Metrics,
        limits: Limits,
        buckets: TokenBuckets | None,
        clock: Callable[[], int],
        ready: Callable[[], bool],
        refresh: Callable[[], Awaitable[None]],
    ) -> None:
        self._registry = registry
        self._refresh = refresh
        self._tokens = tokens
        self._publish = publish
        self._topics = topics
        self._metrics = metrics
        self._limits = limits
        self._buckets = buckets
        self._now = clock
        self._ready = ready
        self._signatures = Signatures(limits.activation_key)
        # histogram children bound once: a label lookup per request costs more than the count
        self._publish_latency = {
            topic: metrics.timing(metrics.publish_latency, topic)
            for topic in (topics.activations, topics.execution_starts)
        }
        self._timed = {
            route: metrics.timing(metrics.latency, route) for route in ("activate", "execute")
        }

    async def callback(self, call: Call, send: Send) -> None:
        """Answer a callback: 200 with its activation id once Kafka has its event (or once
        its trigger's IGNORE policy dropped it), else the contract's error."""
        started = time.perf_counter()
        try:
            self._rate_limit(call.headers, call.client)
            activation_id = await self._activate(call)
        except RequestError as exc:
            response = _error(exc)
            await response(call.scope, call.receive, send)
            status = exc.status
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", b"0"),
                        (b"x-activation-id", activation_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            status = 200
        self._count("activate", status, started)

    async def execute(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            self._rate_limit(request.headers, request.client.host if request.client else None)
            response = await self._execute(request)
        except RequestError as exc:
            response = _error(exc)
        self._count("execute", response.status_code, started)
        return response

    def _count(self, route: str, status: int, started: float) -> None:
        self._metrics.count(route, str(status))
        self._timed[route].observe(time.perf_counter() - started)

    def _rate_limit(self, headers: Mapping[str, str], client: str | None) -> None:
        if self._buckets is None:
            return
        forwarded = headers.get("x-forwarded-for")
        if forwarded and self._limits.trust_forwarded_for:
            address = forwarded.split(",")[0].strip()
        else:
            address = client or "unknown"
        wait = self._buckets.take(address, time.monotonic())
        if wait:
            raise RateLimited(max(1, math.ceil(wait)))

    async def _activate(self, call: Call) -> str:
        """Admit and publish a callback; its activation id."""
        flow_id, trigger_id = call.flow_id, call.trigger_id
        trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            await self._refresh()  # deployed a moment ago, maybe
            trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            if self._registry.flow(flow_id) is None:
                raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
            raise RequestError(404, ErrorCode.UNKNOWN_TRIGGER, "no such trigger in this flow")
        execution = _execution(call.query.get("execution") if call.query_string else None)
        key = _idempotency_key(call.headers)
        activation_id = new_id()
        verified = None
        deadline = Deadline()
        try:
            if trigger.authenticationType == AuthenticationType.SIGNATURE:
                signed = await self._signed(call, trigger, deadline)
                if signed is None:
                    _ignored(flow_id, trigger_id, "signature")
                    return activation_id
                data, message_id = signed
                key = message_id  # a replayed message is a DUPLICATE
                verified = sign_verification(self._limits.activation_key or "", activation_id)
            elif call.method == "GET":
                data = _query_data(call.query)
            else:
                data = await self._body(call.headers, call.receive, deadline)

            token = call.headers.get("user-token")
            user = await self._user(token) if token else None
            check = check_user(trigger.authenticationType, trigger.requiredRoles, user)
            if check != AuthCheck.PASSED:
                if trigger.onFailPolicy == OnFailPolicy.IGNORE:
                    _ignored(flow_id, trigger_id, "auth")
                    return activation_id
                raise RequestError(check.status, ErrorCode.AUTH_FAILED, AUTH_MESSAGE)

            # the user travels signed (the engine trusts no other); without an activation
            # key the token travels instead, and the engine resolves it
            signing = self._limits.activation_key
            resolved = user.as_context() if user and signing else None
            # the ActivateTrigger message, built as bytes once (tests/unit/test_activate.py
            # checks that it is exactly what the model would write)
            message = _encode(
                {
                    "activationId": activation_id,
                    "flowId": flow_id,
                    "triggerId": trigger_id,
                    "execution": execution,
                    "data": data,
                    "user": resolved,
                    "userToken": token if user and not signing else None,
                    "userSignature": (
                        sign_user(signing, activation_id, resolved)
                        if signing and resolved is not None
                        else None
                    ),
                    "signatureVerified": verified,
                    "idempotencyKey": key,
                    "source": _HTTP,
                    "receivedAt": self._now(),
                }
            )
            partition_key = execution if execution not in ("all", "any") else trigger_id
            await self._send(
                self._topics.activations, message, partition_key.encode(), activation_id, deadline
            )
        finally:
            deadline.disarm()
        return activation_id

    async def _execute(self, request: Request) -> Response:
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        user = await self._user(token) if key is None and token else None
        require_access(request.method, key, self._limits.admin_key, user)
        flow_id = request.path_params["flowId"].lower()
        if self._registry.flow(flow_id) is None:
            await self._refresh()  # deployed a moment ago, maybe
        if self._registry.flow(flow_id) is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
        deadline = Deadline()
        try:
            data = await self._body(request.headers, request.receive, deadline)
            execution_id = new_id()
            command = StartExecution(
                executionId=execution_id, flowId=flow_id, input=data, requestedAt=self._now()
            )
            await self._send(
                self._topics.execution_starts,
                command.model_dump_json().encode(),
                execution_id.encode(),
                execution_id,
                deadline,
            )
        finally:
            deadline.disarm()
        return JSONResponse({"executionId": execution_id}, status_code=202)

    async def _body(
        self, headers: Mapping[str, str], receive: Receive, deadline: Deadline
    ) -> dict[str, Any]:
        require_json(headers.get("content-type"))
        return parse_object(await self._raw(receive, deadline))

    async def _raw(self, receive: Receive, deadline: Deadline) -> bytes:
        """The body, at most `body_bytes` of it, within `body_seconds` (else 413 or 408)."""
        deadline.arm(self._limits.body_seconds)
        try:
            raw = await read_body(receive, self._limits.body_bytes)
        except asyncio.CancelledError:
            if deadline.timed_out():
                raise RequestError(
                    408, ErrorCode.REQUEST_TIMEOUT, "the body did not arrive in time"
                ) from None
            raise
        finally:
            deadline.disarm()
        return raw

    async def _signed(
        self, call: Call, trigger: TriggerRegistered, deadline: Deadline
    ) -> tuple[dict[str, Any], str] | None:
        """A signed callback's data and message id, verified over the raw
        bytes (a GET's raw query string). None when the check failed under IGNORE; under
        ERROR that is a 401."""
        if call.method == "GET":
            raw = call.query_string
        else:
            require_json(call.headers.get("content-type"))
            raw = await self._raw(call.receive, deadline)
        try:
            try:
                message_id = self._signatures.verify(trigger, call.headers, raw, self._now())
            except SignatureError:
                # a secret rotated a moment ago, maybe: read the registry up to its end
                await self._refresh()
                trigger = self._registry.trigger(trigger.flowId, trigger.triggerId) or trigger
                message_id = self._signatures.verify(trigger, call.headers, raw, self._now())
        except SignatureError as exc:
            if trigger.onFailPolicy == OnFailPolicy.IGNORE:
                return None
            raise RequestError(
                401,
                ErrorCode.SIGNATURE_INVALID,
                f"Unable to verify the callback's signature: {exc}",
            ) from exc
        data = _query_data(call.query) if call.method == "GET" else parse_object(raw)
        event_id = data.get("id")
        if trigger.signatureScheme == SignatureScheme.STRIPE and isinstance(event_id, str):
            message_id = message_key(event_id) if event_id else message_id  # the event's id
        return data, message_id

    async def _user(self, token: str) -> User | None:
        try:
            return await self._tokens.user(token)
        except AuthUnavailable as exc:
            logger.warning("auth service unavailable", extra={"error": str(exc)})
            raise auth_unavailable() from exc

    async def _send(
        self, topic: str, body: bytes, key: bytes, correlation_id: str, deadline: Deadline
    ) -> None:
        started = time.perf_counter()
        deadline.arm(self._limits.publish_seconds)
        try:
            await self._publish(topic, body, key, correlation_id)
        except MessageSizeTooLargeError:
            # the client's doing, not the broker's: retrying the same body cannot help
            raise RequestError(
                413,
                ErrorCode.BODY_TOO_LARGE,
                f"the request is too large for the broker ({len(body)} bytes as an event)",
            ) from None
        except Exception as exc:
            raise self._unavailable(topic, exc) from exc
        except asyncio.CancelledError as exc:
            if not deadline.timed_out():
                raise
            raise self._unavailable(topic, exc) from None
        finally:
            deadline.disarm()
        self._publish_latency[topic].observe(time.perf_counter() - started)

    @staticmethod
    def _unavailable(topic: str, exc: BaseException) -> RequestError:
        logger.warning("publish failed", extra={"topic": topic, "error": repr(exc)})
        return RequestError(
            503,
            ErrorCode.BROKER_UNAVAILABLE,
            "the request was not accepted: the broker is unavailable; "
            "retry later (with the same Idempotency-Key)",
        )

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self._ready():
            return JSONResponse({"status": "ready", "flows": len(self._registry)})
        return JSONResponse(
            RequestError(503, ErrorCode.NOT_READY, "not ready").body(), status_code=503
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self._metrics.render(), media_type="text/plain; version=0.0.4")


class RateLimited(RequestError):
    """429: the client's address spent its tokens; it may retry after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, ErrorCode.RATE_LIMITED, "too many requests; retry later")
        self.retry_after = retry_after


def _error(exc: RequestError) -> Response:
    response = JSONResponse(exc.body(), status_code=exc.status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 408:
        # a client too slow to send its body does not keep the connection
        response.headers["Connection"] = "close"
    return response


def _ignored(flow_id: str, trigger_id: str, check: str) -> None:
    """Log a callback its trigger's IGNORE policy drops (answered 200, nothing accepted)."""
    logger.info(
        "callback ignored by its auth policy",
        extra={"flow_id": flow_id, "trigger_id": trigger_id, "check": check},
    )


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


def _execution(value: str | None) -> str:
    try:
        return str(Selector.parse(value))
    except ValueError as exc:
        raise RequestError(400, ErrorCode.INVALID_PARAMETER, str(exc)) from exc


def _query_data(query: QueryParams) -> dict[str, Any]:
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


def _idempotency_key(headers: Mapping[str, str]) -> str | None:
    key = headers.get("idempotency-key") or headers.get("x-idempotency-key")
    if key is not None and not 0 < len(key) <= _MAX_KEY:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"Idempotency-Key must be 1 to {_MAX_KEY} characters"
        )
    return key
