"""The callback use case: resolve the trigger, read the selector and the body (signed,
GET or JSON), authenticate the caller, and publish the activation.

A callback costs one dictionary lookup in the registry, at most one auth round trip per
token-cache miss, and one Kafka produce that must be acknowledged before the answer.
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.trace import SpanKind

from gateway.call import (
    Call,
    Deadline,
    execution_of,
    idempotency_key,
    json_body,
    new_id,
    query_data,
)
from gateway.guard import LagGuard
from gateway.limits import RateLimited, TriggerQuotas
from gateway.refusals import Refusals
from gateway.registry import Registry
from gateway.sender import Sender
from gateway.signed import Ignored, SignedBodies
from gateway.tokens import TokenCache, caller_of
from schemas.callbacks import AUTH_MESSAGE, AuthCheck, auth_refusal, check_user
from schemas.errors import ErrorCode
from schemas.events import ActivationRefused, ActivationSource, Outcome, TriggerRegistered
from schemas.flows import AuthenticationType, OnFailPolicy
from schemas.requests import RequestError
from schemas.signing import sign_user_text, sign_verification
from schemas.topics import Topics
from schemas.tracing import Tracing
from schemas.users import User

logger = logging.getLogger(__name__)

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
class BodyLimits:
    body_bytes: int
    body_seconds: float


class Callbacks:
    """Admits and publishes callbacks."""

    def __init__(
        self,
        registry: Registry,
        refresh: Callable[[], Awaitable[None]],
        tokens: TokenCache,
        signed: SignedBodies,
        sender: Sender,
        topics: Topics,
        limits: BodyLimits,
        activation_key: str | None,
        clock: Callable[[], int],
        shedding: tuple[TriggerQuotas, LagGuard | None],
        tracing: Tracing,
        refusals: Refusals,
    ) -> None:
        self._registry = registry
        self._refresh = refresh
        self._tokens = tokens
        self._signed = signed
        self._sender = sender
        self._topic = topics.activations
        self._limits = limits
        self._activation_key = activation_key
        self._now = clock
        self._quotas, self._guard = shedding
        self._tracing = tracing
        self._refusals = refusals

    async def activate(self, call: Call, source: str = _HTTP) -> str:
        """Admit and publish a callback; its activation id (also when its trigger's
        IGNORE policy dropped it). `source`: `by-name` when the caller named the flow and
        the trigger (the engine then also reaches older versions' waiting executions).

        Traced (span `accept`, in the trace the caller's `traceparent` names, with the
        span `publish` whose context the message carries to the engine) when tracing is on.
        """
        if not self._tracing.enabled:
            return await self._activate(call, source)
        attributes = {"hookflow.flow_id": call.flow_id, "hookflow.trigger_id": call.trigger_id}
        parent = Tracing.from_http(call.headers)
        with self._tracing.start("accept", parent, SpanKind.SERVER, attributes) as span:
            activation_id = await self._activate(call, source)
            span.set_attribute("hookflow.activation_id", activation_id)
            return activation_id

    async def _activate(self, call: Call, source: str) -> str:
        received = self._now()
        flow_id, trigger_id = call.flow_id, call.trigger_id
        trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            await self._refresh()  # deployed a moment ago, maybe
            trigger = self._registry.trigger(flow_id, trigger_id)
        if trigger is None:
            if self._registry.flow(flow_id) is None:
                raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
            self._report(
                call,
                (new_id(), Outcome.UNKNOWN_TRIGGER, received, source),
                "no such trigger in this flow (answered 404)",
                (404, ErrorCode.UNKNOWN_TRIGGER),
            )
            raise RequestError(404, ErrorCode.UNKNOWN_TRIGGER, "no such trigger in this flow")
        activation_id = new_id()
        try:
            return await self._admit(call, source, trigger, activation_id, received)
        except RequestError as exc:
            # a failed publish is not a refusal: its activation may reach the engine yet
            if exc.code != ErrorCode.BROKER_UNAVAILABLE:
                failed = exc if isinstance(exc, _AuthFailed) else None
                self._report(
                    call,
                    (activation_id, Outcome.REFUSED, received, source),
                    failed.reason if failed else exc.message,
                    (exc.status, exc.code),
                    failed.user if failed else None,
                )
            raise
        except Ignored as exc:
            _ignored(flow_id, trigger_id, "signature")
            self._report(call, (activation_id, Outcome.IGNORED_AUTH, received, source), str(exc))
            return activation_id

    async def _admit(
        self,
        call: Call,
        source: str,
        trigger: TriggerRegistered,
        activation_id: str,
        received: int,
    ) -> str:
        flow_id, trigger_id = call.flow_id, call.trigger_id
        execution = execution_of(call.query.get("execution") if call.query_string else None)
        key = idempotency_key(call.headers)
        # the limits count callbacks that could be accepted: a malformed one costs nothing
        if self._guard is not None:
            self._guard.check()
        if trigger.rateLimit is not None:
            wait = self._quotas.take(
                f"{trigger.flowId}/{trigger.triggerId}", trigger.rateLimit, time.monotonic()
            )
            if wait:
                raise RateLimited(
                    wait, ErrorCode.TRIGGER_RATE_LIMITED, "the trigger's rate limit is reached"
                )
        verified = None
        deadline = Deadline()
        try:
            if trigger.authenticationType == AuthenticationType.SIGNATURE:
                data, key = await self._signed.read(call, trigger, deadline)
                # `key`, the message id: a replayed message is a DUPLICATE
                verified = sign_verification(self._activation_key or "", activation_id)
            elif call.method == "GET":
                data = query_data(call.query)
            else:
                limits = self._limits
                data = await json_body(
                    call.headers, call.receive, deadline, limits.body_bytes, limits.body_seconds
                )

            token = call.headers.get("user-token")
            caller = await caller_of(self._tokens, token) if token else None
            user = caller.user if caller is not None else None
            check = check_user(trigger.authenticationType, trigger.requiredRoles, user)
            if check != AuthCheck.PASSED:
                reason = auth_refusal(trigger.authenticationType, trigger.requiredRoles, user)
                if trigger.onFailPolicy == OnFailPolicy.IGNORE:
                    _ignored(flow_id, trigger_id, "auth")
                    logged = (activation_id, Outcome.IGNORED_AUTH, received, source)
                    self._report(call, logged, reason, user=user)
                    return activation_id
                raise _AuthFailed(check.status, reason, user)

            # the user travels signed (the engine trusts no other); without an activation
            # key the token travels instead, and the engine resolves it
            signing = self._activation_key
            resolved = caller if caller is not None and signing else None
            # the ActivateTrigger message, built as bytes once (tests/unit/test_activate.py
            # checks that it is exactly what the model would write)
            message = _encode(
                {
                    "activationId": activation_id,
                    "flowId": flow_id,
                    "triggerId": trigger_id,
                    "execution": execution,
                    "data": data,
                    "user": resolved.context if resolved is not None else None,
                    "userToken": token if user and not signing else None,
                    "userSignature": (
                        sign_user_text(signing, activation_id, resolved.text)
                        if signing and resolved is not None
                        else None
                    ),
                    "signatureVerified": verified,
                    "idempotencyKey": key,
                    "source": source,
                    "receivedAt": received,
                    "replayOf": None,
                }
            )
            partition_key = execution if execution not in ("all", "any") else trigger_id
            if self._tracing.enabled:
                with self._tracing.start("publish", kind=SpanKind.PRODUCER):
                    await self._sender.send(
                        self._topic,
                        message,
                        partition_key.encode(),
                        activation_id,
                        deadline,
                        Tracing.kafka_headers(),
                    )
            else:
                await self._sender.send(
                    self._topic, message, partition_key.encode(), activation_id, deadline
                )
        finally:
            deadline.disarm()
        return activation_id

    def _report(
        self,
        call: Call,
        logged: tuple[str, Outcome, int, str],
        reason: str,
        answer: tuple[int, ErrorCode] | None = None,
        user: User | None = None,
    ) -> None:
        """Report a callback that was not published for the activation log
        (`refusals.py`): `logged` its activation id, outcome, receipt and source;
        `answer` the status and code it got (none: 200 with the activation id)."""
        if not self._refusals.enabled:
            return
        activation_id, outcome, received, source = logged
        status, code = answer or (200, None)
        length = call.headers.get("content-length", "")
        self._refusals.report(
            ActivationRefused(
                activationId=activation_id,
                flowId=call.flow_id[:200],
                triggerId=call.trigger_id[:200],
                outcome=outcome,
                reason=reason[:2000],
                status=status,
                code=code,
                receivedAt=received,
                source=ActivationSource(source),
                userId=user.objectId if user else None,
                bodySize=int(length) if length.isdigit() and len(length) < 16 else None,
                traceId=Tracing.trace_id() if self._tracing.enabled else None,
            )
        )


class _AuthFailed(RequestError):
    """The trigger's user check failed under ERROR: the contract's answer (code 1000),
    and for the log which rule failed."""

    def __init__(self, status: int, reason: str, user: User | None) -> None:
        super().__init__(status, ErrorCode.AUTH_FAILED, AUTH_MESSAGE)
        self.reason = reason
        self.user = user


def _ignored(flow_id: str, trigger_id: str, check: str) -> None:
    """Log a callback its trigger's IGNORE policy drops (answered 200, nothing accepted)."""
    logger.info(
        "callback ignored by its auth policy",
        extra={"flow_id": flow_id, "trigger_id": trigger_id, "check": check},
    )
