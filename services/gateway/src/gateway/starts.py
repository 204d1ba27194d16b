"""Start executions through the gateway: by flow id (`/execute`, `/activate`) or by the
flow's name (`/activate-by-name`, its live version), under the flow's start block's
rules (`authenticationType`, `requiredRoles`, `onFailPolicy`); the start is published
to Kafka with the user who asked, who becomes the execution's `user` and `ownerId`."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Receive

from gateway.call import Deadline, json_body, new_id
from gateway.registry import Registry
from gateway.sender import Sender
from gateway.tokens import TokenCache, caller_of
from schemas.access import ADMIN_KEY_HEADER, start_refusal
from schemas.callbacks import AUTH_MESSAGE
from schemas.errors import ErrorCode
from schemas.events import FlowVersionRegistered, StartExecution
from schemas.flows import OnFailPolicy, StartRules
from schemas.requests import RequestError
from schemas.topics import Topics
from schemas.users import User

_ADMIN_ONLY = StartRules()  # a flow without a start block: the admin's, as before


@dataclass(frozen=True)
class StartRequest:
    """What a start request brings: its flow, headers, and how its body is read."""

    flow: FlowVersionRegistered
    headers: Headers
    method: str
    # the initial data: read from the body (JSON), or given (activate-by-name)
    body: Receive | dict[str, Any]
    # the contract's code for a refused caller: 1001 on `/execute` (a management
    # route since the second wave), 1000 on FlowRunner's routes
    refused_code: ErrorCode = ErrorCode.AUTH_FAILED


class Starts:
    """Admits and publishes start requests."""

    def __init__(
        self,
        registry: Registry,
        refresh: Callable[[], Awaitable[None]],
        tokens: TokenCache,
        sender: Sender,
        topics: Topics,
        keys: tuple[str | None, str | None],  # the admin key, the activation key
        body: tuple[int, float],
        clock: Callable[[], int],
    ) -> None:
        self._registry = registry
        self._refresh = refresh
        self._tokens = tokens
        self._sender = sender
        self._topic = topics.execution_starts
        self._admin_key, self._activation_key = keys
        self._body_bytes, self._body_seconds = body
        self._now = clock

    async def flow(self, flow_id: str) -> FlowVersionRegistered:
        found = self._registry.flow(flow_id)
        if found is None:
            await self._refresh()  # deployed a moment ago, maybe
            found = self._registry.flow(flow_id)
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
        return found

    async def live_flow(self, name: str) -> FlowVersionRegistered:
        found = self._registry.live_flow(name)
        if found is None:
            await self._refresh()
            found = self._registry.live_flow(name)
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW_NAME, f"no flow is named {name!r}")
        return found

    async def start(self, request: StartRequest) -> str | None:
        """Publish a start; the new execution's id, or None when the start block's IGNORE
        policy dropped a caller who failed its rules."""
        admitted, user = await self._admit(request)
        if not admitted:
            return None
        deadline = Deadline()
        try:
            if isinstance(request.body, dict):
                data = request.body
            else:
                data = await json_body(
                    request.headers, request.body, deadline, self._body_bytes, self._body_seconds
                )
            execution_id = new_id()
            command = StartExecution.started_by(
                execution_id,
                request.flow.flowId,
                data,
                self._now(),
                (user, request.headers.get("user-token")),
                self._activation_key,
            )
            await self._sender.send(
                self._topic,
                command.model_dump_json(exclude_none=True).encode(),
                execution_id.encode(),
                execution_id,
                deadline,
            )
        finally:
            deadline.disarm()
        return execution_id

    async def _admit(self, request: StartRequest) -> tuple[bool, User | None]:
        """Whether the caller may start the flow (False: IGNORE drops the request), and
        its user (None: none); raises the refusal under ERROR."""
        rules = request.flow.start or _ADMIN_ONLY
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        caller = await caller_of(self._tokens, token) if token else None
        user = caller.user if caller is not None else None
        refusal = start_refusal(
            rules.authenticationType, rules.requiredRoles, key, self._admin_key, user
        )
        if refusal is None:
            return True, user
        if rules.onFailPolicy == OnFailPolicy.IGNORE:
            return False, None
        status, message = refusal
        code = request.refused_code
        raise RequestError(
            status, code, message if code == ErrorCode.ACCESS_DENIED else AUTH_MESSAGE
        )
