"""Start an execution through the gateway (`/execute`): the admin key or a FlowAdmin's
user-token, a flow this gateway knows, a JSON body; the start is published to Kafka."""

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from gateway.call import Deadline, json_body, new_id
from gateway.registry import Registry
from gateway.sender import Sender
from gateway.tokens import TokenCache, user_of
from schemas.access import ADMIN_KEY_HEADER, require_access
from schemas.errors import ErrorCode
from schemas.events import StartExecution
from schemas.requests import RequestError
from schemas.topics import Topics


class Executions:
    """Admits and publishes start requests."""

    def __init__(
        self,
        registry: Registry,
        refresh: Callable[[], Awaitable[None]],
        tokens: TokenCache,
        sender: Sender,
        topics: Topics,
        admin_key: str | None,
        body: tuple[int, float],
        clock: Callable[[], int],
    ) -> None:
        self._registry = registry
        self._refresh = refresh
        self._tokens = tokens
        self._sender = sender
        self._topic = topics.execution_starts
        self._admin_key = admin_key
        self._body_bytes, self._body_seconds = body
        self._now = clock

    async def start(self, request: Request) -> str:
        """Publish a start of the request's flow; the new execution's id."""
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        user = await user_of(self._tokens, token) if key is None and token else None
        require_access(request.method, key, self._admin_key, user)
        flow_id = request.path_params["flowId"].lower()
        if self._registry.flow(flow_id) is None:
            await self._refresh()  # deployed a moment ago, maybe
        if self._registry.flow(flow_id) is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
        deadline = Deadline()
        try:
            data = await json_body(
                request.headers, request.receive, deadline, self._body_bytes, self._body_seconds
            )
            execution_id = new_id()
            command = StartExecution(
                executionId=execution_id, flowId=flow_id, input=data, requestedAt=self._now()
            )
            await self._sender.send(
                self._topic,
                command.model_dump_json().encode(),
                execution_id.encode(),
                execution_id,
                deadline,
            )
        finally:
            deadline.disarm()
        return execution_id
