"""A signed callback's body: verified over the raw bytes (a GET's raw query string)
before anything is parsed, against the trigger's current secrets."""

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.call import Call, Deadline, query_data, raw_body
from gateway.registry import Registry
from gateway.signatures import Signatures
from schemas.errors import ErrorCode
from schemas.events import TriggerRegistered
from schemas.flows import OnFailPolicy, SignatureScheme
from schemas.requests import RequestError, parse_object, require_json
from schemas.webhooks import SignatureError, message_key


class Ignored(Exception):
    """A signed callback whose check failed under its trigger's IGNORE policy (answered
    200, nothing published); the message says why."""


class SignedBodies:
    """Reads and verifies signed callbacks."""

    def __init__(
        self,
        signatures: Signatures,
        registry: Registry,
        refresh: Callable[[], Awaitable[None]],
        clock: Callable[[], int],
        body_bytes: int,
        body_seconds: float,
    ) -> None:
        self._signatures = signatures
        self._registry = registry
        self._refresh = refresh
        self._now = clock
        self._body_bytes = body_bytes
        self._body_seconds = body_seconds

    async def read(
        self, call: Call, trigger: TriggerRegistered, deadline: Deadline
    ) -> tuple[dict[str, Any], str]:
        """A signed callback's data and message id, verified over the raw bytes (a GET's
        raw query string). When the check fails: `Ignored` under IGNORE, under ERROR a
        401."""
        if call.method == "GET":
            raw = call.query_string
        else:
            require_json(call.headers.get("content-type"))
            raw = await raw_body(call.receive, deadline, self._body_bytes, self._body_seconds)
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
                raise Ignored(f"the callback's signature did not verify: {exc}") from exc
            raise RequestError(
                401,
                ErrorCode.SIGNATURE_INVALID,
                f"Unable to verify the callback's signature: {exc}",
            ) from exc
        data = query_data(call.query) if call.method == "GET" else parse_object(raw)
        event_id = data.get("id")
        if trigger.signatureScheme == SignatureScheme.STRIPE and isinstance(event_id, str):
            message_id = message_key(event_id) if event_id else message_id  # the event's id
        return data, message_id
