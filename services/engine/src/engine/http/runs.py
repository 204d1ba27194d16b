"""FlowRunner's execution API: an execution's context, status and block results, the
blocking call, and stop, with FlowRunner's shapes and codes.

Reading takes the admin key, a FlowAdmin's or FlowViewer's user-token, or the token of
a user who started the execution or resumed it; stopping, the admin key, a FlowAdmin or
the user who started it. A blocking call obeys the flow's start block, as a start does.
"""

import asyncio
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.core import execution as ex
from engine.core.definition import Flow
from engine.http.params import BODY_LIMIT
from engine.http.routes import Routes
from engine.ports import FlowRecord
from engine.usecases.stop import ENDED
from schemas.access import Access, management_access, start_refusal
from schemas.callbacks import AUTH_MESSAGE
from schemas.errors import ErrorCode
from schemas.events import ExecutionStatus, StartExecution
from schemas.flows import OnFailPolicy, StartBlock
from schemas.requests import RequestError, json_object

MAX_BLOCKING_SECONDS = 300
DEFAULT_BLOCKING_SECONDS = 5
_TIMEOUT_PARAMETER = "waitResponseTimeoutSeconds"
# the history events that are a pass of their block
_PASSES = frozenset({"block", "resumed", "timedOut", "http_response", "returned"})
_RUNNER_STATUS = {
    ExecutionStatus.RUNNING: "RUNNING",
    ExecutionStatus.WAITING: "PENDING",
    ExecutionStatus.COMPLETED: "COMPLETED",
    ExecutionStatus.FAILED: "COMPLETED",  # completion ERROR
    ExecutionStatus.TERMINATED: "TERMINATED",
}
RUNNER_STATUSES = list(dict.fromkeys(_RUNNER_STATUS.values()))


def not_found() -> RequestError:
    return RequestError(404, ErrorCode.EXECUTION_NOT_FOUND, "no such execution in this flow")


def runner_status(state: ex.ExecutionState, record: FlowRecord | None) -> dict[str, Any]:
    """An execution's status as FlowRunner answers it."""
    ended = state.status in ENDED
    finished = state.finished if ended else None
    if ended and finished is None:  # ended before the field was kept
        finished = state.updated
    failed = state.status == ExecutionStatus.FAILED
    return {
        "executionId": state.execution_id,
        "flowId": state.flow_id,
        "flowName": record.name if record else None,
        "flowVersion": record.version if record else None,
        "status": _RUNNER_STATUS[state.status],
        "startedAt": state.created,
        "finishedAt": finished,
        "durationMs": finished - state.created if finished is not None else None,
        "completion": ("ERROR" if failed else "NORMAL") if ended else None,
        "hasErrors": failed,
        "error": state.error,
    }


class RunRoutes(Routes):
    """FlowRunner's execution API."""

    async def execution_context(self, request: Request) -> Response:
        state = await self._readable(request, None)
        return JSONResponse(
            {
                "executionId": state.execution_id,
                "flowId": state.flow_id,
                "status": _RUNNER_STATUS[state.status],
                "input": state.input,
                "vars": state.vars,
                "results": state.results,
                "user": state.user,
            }
        )

    async def execution_status(self, request: Request) -> Response:
        state = await self._readable(request, request.path_params["flowId"])
        found = await self._catalog.flow(state.flow_id)
        return JSONResponse(runner_status(state, found[0] if found else None))

    async def block_result(self, request: Request) -> Response:
        state = await self._readable(request, request.path_params["flowId"])
        alias = request.query_params.get("alias")
        if not alias:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "alias (a block's name) is needed")
        flow = await self._catalog.compiled(state.flow_id)
        passes = [e for e in state.history if e.get("block") == alias and e["event"] in _PASSES]
        if flow is None or alias not in flow.blocks or (not passes and state.status in ENDED):
            raise RequestError(
                404, ErrorCode.BLOCK_UNKNOWN, f"no block named {alias!r} ran in this execution"
            )
        if not passes:
            raise RequestError(404, ErrorCode.BLOCK_NOT_RUN, f"block {alias!r} has not run yet")
        count = len(passes)
        text = request.query_params.get("occurrence")
        occurrence = count if text is None else (int(text) if text.isdigit() else 0)
        if not 1 <= occurrence <= count:
            raise RequestError(
                400,
                ErrorCode.OCCURRENCE_OUT_OF_RANGE,
                f"occurrence must be 1..{count}: block {alias!r} ran {count} time(s)",
            )
        return JSONResponse(
            {
                "executionId": state.execution_id,
                "alias": alias,
                "executedAt": passes[occurrence - 1]["at"],
                "occurrence": occurrence,
                "occurrenceCount": count,
                "result": _result(state, alias, occurrence, count),
            }
        )

    async def stop(self, request: Request) -> Response:
        key, user = await self._caller(request)
        state = await self._queries.execution(request.path_params["executionId"])
        if state is None or state.flow_id != request.path_params["flowId"].lower():
            raise not_found()
        owner = user is not None and user.objectId == state.owner_id
        if not owner:
            self._require(management_access("POST", key, self._admin_key, user))
        if state.status in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED):
            raise RequestError(
                409, ErrorCode.EXECUTION_ENDED, f"the execution has {state.status.value} already"
            )
        who = "the admin key" if user is None else f"user {user.objectId}"
        stopped = await self._engine.stop(state.execution_id, f"stopped by {who}")
        if stopped is None:
            raise not_found()
        found = await self._catalog.flow(stopped.flow_id)
        return JSONResponse(runner_status(stopped, found[0] if found else None))

    async def blocking(self, request: Request) -> Response:
        """Start the flow (its id or name) and answer when the execution ends or reaches
        a `return` block, or 400 28118 when the wait runs out (the execution goes on)."""
        seconds = _wait_seconds(request.query_params.get(_TIMEOUT_PARAMETER))
        record, flow = await self._flow_by_id_or_name(request.path_params["flowIdOrName"])
        data = await _initial_data(request)
        key, user = await self._caller(request)
        entry = flow.blocks[flow.entry]
        rules = entry if isinstance(entry, StartBlock) else StartBlock(name="-", type="start")
        refusal = start_refusal(
            rules.authenticationType, rules.requiredRoles, key, self._admin_key, user
        )
        if refusal is not None:
            if rules.onFailPolicy == OnFailPolicy.IGNORE:
                return JSONResponse({"executionId": None, "status": None, "result": None})
            raise RequestError(refusal[0], ErrorCode.AUTH_FAILED, AUTH_MESSAGE)
        execution_id = str(uuid.uuid4())
        starter = (user, request.headers.get("user-token"))
        await self._publish_start(
            StartExecution.started_by(
                execution_id, record.flow_id, data, self._now(), starter, self._activation_key
            )
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        pause = 0.005
        while True:
            state = await self._queries.execution(execution_id)
            if state is not None and (state.returned or state.status in ENDED):
                return JSONResponse(
                    {
                        "executionId": execution_id,
                        "status": _RUNNER_STATUS[state.status],
                        "result": state.return_value,
                    }
                )
            left = deadline - loop.time()
            if left <= 0:
                raise RequestError(
                    400,
                    ErrorCode.BLOCKING_TIMEOUT,
                    f"execution {execution_id} neither ended nor returned within {seconds} s; "
                    "it goes on",
                )
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.1)

    async def _flow_by_id_or_name(self, ident: str) -> tuple[FlowRecord, Flow]:
        found = await self._catalog.flow(ident) if _looks_like_id(ident) else None
        if found is not None:
            return found
        versions = await self._catalog.versions_of(ident)
        if not versions:
            raise RequestError(
                404, ErrorCode.UNKNOWN_FLOW_NAME, f"no flow has the id or the name {ident!r}"
            )
        return versions[0]

    async def _readable(self, request: Request, flow_id: str | None) -> ex.ExecutionState:
        """The execution, if the caller may read it (its starter, a user who resumed it,
        FlowViewer, FlowAdmin, the admin key) and it is of `flow_id` (when given)."""
        key, user = await self._caller(request)
        state = await self._queries.execution(request.path_params["executionId"])
        if state is None or (flow_id is not None and state.flow_id != flow_id.lower()):
            raise not_found()
        involved = user is not None and (
            user.objectId == state.owner_id or user.objectId in state.actors
        )
        if not involved:
            self._require(management_access("GET", key, self._admin_key, user))
        return state

    @staticmethod
    def _require(access: Access) -> None:
        if access != Access.GRANTED:
            message = f"{access.message}; or the user-token of the user who started or resumed it"
            raise RequestError(access.status, ErrorCode.ACCESS_DENIED, message)


def _result(state: ex.ExecutionState, alias: str, occurrence: int, count: int) -> Any:
    """The block's result at that pass: the latest from `results`, earlier ones from
    `earlier` while kept; a block with no result (assign, branch, ...) gives data null."""
    if occurrence == count:
        return state.results.get(alias, {"data": None})
    earlier = state.earlier.get(alias, [])
    index = occurrence - (count - len(earlier))
    if 0 <= index < len(earlier) and not earlier[index].get("omitted"):
        return earlier[index]["result"]
    if alias not in state.results:
        return {"data": None}
    return {"data": None, "omitted": True}  # a pass too old, or too large, to be kept


def _wait_seconds(text: str | None) -> int:
    if text is None:
        return DEFAULT_BLOCKING_SECONDS
    if not text.isdigit() or not 1 <= int(text) <= MAX_BLOCKING_SECONDS:
        raise RequestError(
            400,
            ErrorCode.BLOCKING_INVALID,
            f"{_TIMEOUT_PARAMETER} must be a whole number of 1 to {MAX_BLOCKING_SECONDS}",
        )
    return int(text)


async def _initial_data(request: Request) -> dict[str, Any]:
    """The query (but the wait) and, for a POST, the body's object; a key in both: 28064."""
    query: dict[str, Any] = {}
    for name in request.query_params:
        if name != _TIMEOUT_PARAMETER:
            values = request.query_params.getlist(name)
            query[name] = values[0] if len(values) == 1 else values
    body: dict[str, Any] = {}
    if request.method == "POST":
        body = await json_object(request.headers.get("content-type"), request.stream(), BODY_LIMIT)
    both = sorted(set(query) & set(body))
    if both:
        raise RequestError(
            400, ErrorCode.BLOCKING_INVALID, f"in both the query and the body: {', '.join(both)}"
        )
    return {**query, **body}


def _looks_like_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
