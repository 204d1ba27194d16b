"""The gateway's endpoints: admit a callback or a start request, publish it, answer.

A callback costs one dictionary lookup in the registry, at most one auth round trip per
token-cache miss, and one Kafka produce that must be acknowledged before the answer.
"""

import asyncio
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.limits import TokenBuckets
from gateway.metrics import Metrics
from gateway.registry import Registry
from gateway.signatures import Signatures
from gateway.tokens import AuthUnavailable, TokenCache
from schemas.access import ADMIN_KEY_HEADER, auth_unavailable, require_access
from schemas.callbacks import AUTH_MESSAGE, AuthCheck, Selector, check_user
from schemas.errors import ErrorCode
from schemas.events import ActivationSource, StartExecution, TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy
from schemas.requests import RequestError, parse_object, read_limited, require_json
from schemas.signing import sign_user, sign_verification
from schemas.topics import Topics
from schemas.users import User
from schemas.webhooks import SignatureError

logger = logging.getLogger(__name__)

Publish = Callable[[str, bytes, bytes], Awaitable[None]]  # topic, message, key

_MAX_KEY = 256


class BrokerUnavailable(Exception):
    """Kafka did not acknowledge the event in time; nothing was accepted."""


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


class CallbackRoute:
    """ASGI middleware that answers callbacks (POST or GET on ACTIVATE_PATH) itself.

    A callback is the hot path: routing it through Starlette's router and exception
    middleware costs about a third of the gateway's CPU per request. Only that one
    route is taken here, with the same endpoint and the same path parameters (matched
    as Starlette's `{name}` does); an unexpected error still reaches the app's
    server-error handler, which sits outside this middleware.
    """

    def __init__(self, app: ASGIApp, endpoints: "Endpoints") -> None:
        self._app = app
        self._endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "GET"):
            match = _ACTIVATE.match(scope["path"])
            if match is not None:
                scope["path_params"] = match.groupdict()
                response = await self._endpoints.activate(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


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
        # metric children bound once: a label lookup per request costs more than the count
        self._publish_latency = {
            topic: metrics.publish_latency.labels(topic)
            for topic in (topics.activations, topics.execution_starts)
        }
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed = {route: metrics.latency.labels(route) for route in ("activate", "execute")}

    async def activate(self, request: Request) -> Response:
        return await self._measured("activate", request, self._activate)

    async def execute(self, request: Request) -> Response:
        return await self._measured("execute", request, self._execute)

    async def _measured(
        self, route: str, request: Request, handler: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        try:
            self._rate_limit(request)
            response = await handler(request)
            outcome = str(response.status_code)
        except RequestError as exc:
            response, outcome = JSONResponse(exc.body(), status_code=exc.status), str(exc.status)
            if exc.code == ErrorCode.RATE_LIMITED:
                response.headers["Retry-After"] = request.state.retry_after
        counter = self._counted.get((route, outcome))
        if counter is None:
            counter = self._counted[(route, outcome)] = self._metrics.requests.labels(
                route, outcome
            )
        counter.inc()
        self._timed[route].observe(time.perf_counter() - started)
        return response

    def _rate_limit(self, request: Request) -> None:
        if self._buckets is None:
            return
        wait = self._buckets.take(self._address(request), time.monotonic())
        if wait:
            request.state.retry_after = str(max(1, math.ceil(wait)))
            raise RequestError(429, ErrorCode.RATE_LIMITED, "too many requests; retry later")

    def _address(self, request: Request) -> str:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded and self._limits.trust_forwarded_for:
            return forwarded.split(",")[0].strip()
        return request.client.host if request.client else "unknown"

    async def _activate(self, request: Request) -> Response:
        flow_id = request.path_params["flowId"].lower()
        trigger_id = request.path_params["triggerId"].lower()
        trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            await self._refresh()  # deployed a moment ago, maybe
            trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            if self._registry.flow(flow_id) is None:
                raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
            raise RequestError(404, ErrorCode.UNKNOWN_TRIGGER, "no such trigger in this flow")
        execution = _execution(request.query_params.get("execution"))
        key = _idempotency_key(request)
        activation_id = str(uuid.uuid4())
        verified = None
        async with self._deadline() as deadline:
            if trigger.authenticationType == AuthenticationType.SIGNATURE:
                signed = await self._signed(request, trigger, deadline)
                if signed is None:
                    return _ignored(activation_id, flow_id, trigger_id, "signature")
                data, message_id = signed
                key = message_id or key  # a replayed message is a DUPLICATE
                verified = sign_verification(self._limits.activation_key or "", activation_id)
            elif request.method == "GET":
                data = _query_data(request)
            else:
                data = await self._body(request, deadline)

            token = request.headers.get("user-token")
            user = await self._user(token) if token else None
            check = check_user(trigger.authenticationType, trigger.requiredRoles, user)
            if check != AuthCheck.PASSED:
                if trigger.onFailPolicy == OnFailPolicy.IGNORE:
                    return _ignored(activation_id, flow_id, trigger_id, "auth")
                raise RequestError(check.status, ErrorCode.AUTH_FAILED, AUTH_MESSAGE)

            # the user travels signed (the engine trusts no other); without an activation
            # key the token travels instead, and the engine resolves it
            signing = self._limits.activation_key
            resolved = user.as_context() if user and signing else None
            # the ActivateTrigger message, built as bytes once (tests/unit/test_activate.py
            # checks that it is exactly what the model would write)
            message = json.dumps(
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
                    "source": ActivationSource.HTTP.value,
                    "receivedAt": self._now(),
                },
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
            partition_key = execution if execution not in ("all", "any") else trigger_id
            await self._send(self._topics.activations, message, partition_key.encode(), deadline)
        return Response(status_code=200, headers={"X-Activation-Id": activation_id})

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
        async with self._deadline() as deadline:
            data = await self._body(request, deadline)
            execution_id = str(uuid.uuid4())
            command = StartExecution(
                executionId=execution_id, flowId=flow_id, input=data, requestedAt=self._now()
            )
            await self._send(
                self._topics.execution_starts,
                command.model_dump_json().encode(),
                execution_id.encode(),
                deadline,
            )
        return JSONResponse({"executionId": execution_id}, status_code=202)

    def _deadline(self) -> asyncio.Timeout:
        """The request's one timeout: set for its body, off in between (the token lookup
        has its own), then set again for the publish."""
        return asyncio.timeout(self._limits.body_seconds)

    async def _body(self, request: Request, deadline: asyncio.Timeout) -> dict[str, Any]:
        require_json(request.headers.get("content-type"))
        return parse_object(await self._raw(request, deadline))

    async def _raw(self, request: Request, deadline: asyncio.Timeout) -> bytes:
        try:
            raw = await read_limited(request.stream(), self._limits.body_bytes)
        except asyncio.CancelledError:
            if deadline.expired():
                raise RequestError(
                    408, ErrorCode.REQUEST_TIMEOUT, "the body did not arrive in time"
                ) from None
            raise
        deadline.reschedule(None)
        return raw

    async def _signed(
        self, request: Request, trigger: TriggerRegistered, deadline: asyncio.Timeout
    ) -> tuple[dict[str, Any], str | None] | None:
        """A signed callback's data and message id (if it has one), verified over the raw
        bytes (a GET's raw query string). None when the check failed under IGNORE; under
        ERROR that is a 401."""
        if request.method == "GET":
            raw = request.scope.get("query_string", b"")
        else:
            require_json(request.headers.get("content-type"))
            raw = await self._raw(request, deadline)
        try:
            try:
                message_id = self._signatures.verify(trigger, request.headers, raw, self._now())
            except SignatureError:
                # a secret rotated a moment ago, maybe: read the registry up to its end
                await self._refresh()
                trigger = self._registry.trigger(trigger.flowId, trigger.triggerId) or trigger
                message_id = self._signatures.verify(trigger, request.headers, raw, self._now())
        except SignatureError as exc:
            if trigger.onFailPolicy == OnFailPolicy.IGNORE:
                return None
            raise RequestError(
                401,
                ErrorCode.SIGNATURE_INVALID,
                f"Unable to verify the callback's signature: {exc}",
            ) from exc
        data = _query_data(request) if request.method == "GET" else parse_object(raw)
        if message_id is None and isinstance(data.get("id"), str):  # stripe: the event's id
            message_id = data["id"][:256] or None
        return data, message_id

    async def _user(self, token: str) -> User | None:
        try:
            return await self._tokens.user(token)
        except AuthUnavailable as exc:
            logger.warning("auth service unavailable", extra={"error": str(exc)})
            raise auth_unavailable() from exc

    async def _send(self, topic: str, body: bytes, key: bytes, deadline: asyncio.Timeout) -> None:
        started = time.perf_counter()
        deadline.reschedule(asyncio.get_running_loop().time() + self._limits.publish_seconds)
        try:
            await self._publish(topic, body, key)
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
            if not deadline.expired():
                raise
            raise self._unavailable(topic, exc) from None
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


def _ignored(activation_id: str, flow_id: str, trigger_id: str, check: str) -> Response:
    """The answer to a callback its trigger's IGNORE policy drops: 200, nothing accepted."""
    logger.info(
        "callback ignored by its auth policy",
        extra={"flow_id": flow_id, "trigger_id": trigger_id, "check": check},
    )
    return Response(status_code=200, headers={"X-Activation-Id": activation_id})


def _execution(value: str | None) -> str:
    try:
        return str(Selector.parse(value))
    except ValueError as exc:
        raise RequestError(400, ErrorCode.INVALID_PARAMETER, str(exc)) from exc


def _query_data(request: Request) -> dict[str, Any]:
    """A GET callback's data: its query string as an object, without `execution`; a key
    given more than once is a list of its values, in order."""
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key == "execution":
            continue
        if key in data:
            data[key] = [*data[key], value] if isinstance(data[key], list) else [data[key], value]
        else:
            data[key] = value
    return data


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key") or request.headers.get("x-idempotency-key")
    if key is not None and not 0 < len(key) <= _MAX_KEY:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"Idempotency-Key must be 1 to {_MAX_KEY} characters"
        )
    return key
