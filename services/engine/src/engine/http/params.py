"""What the management API's routes share: limits, paging, the execution's view, the
position of an expression's error."""

import re
from typing import Any

from starlette.requests import Request

from engine.core.definition import Flow
from engine.core.execution import ExecutionState
from schemas.errors import ErrorCode
from schemas.executions import ExecutionView, GroupMember, GroupWaitView, HistoryEntry
from schemas.requests import RequestError

BODY_LIMIT = 1024 * 1024
MAX_PAGE = 500
MAX_WAIT_SECONDS = 10
PUBLISH_SECONDS = 5.0

_POSITION = re.compile(r"line (\d+), column (\d+)")


def expression_error(message: str) -> dict[str, Any]:
    found = _POSITION.search(message)
    position = {"line": int(found[1]), "column": int(found[2])} if found else None
    return {"code": ErrorCode.INVALID_EXPRESSION.value, "message": message, "position": position}


def page_limit(request: Request) -> int:
    text = request.query_params.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"limit must be a number 1..{MAX_PAGE}"
        )
    return int(text)


def view(state: ExecutionState, flow: Flow | None = None) -> dict[str, Any]:
    """The management API's JSON of an execution (`flow`: its version, to name the
    members of a triggers group it waits at)."""
    return ExecutionView(
        executionId=state.execution_id,
        flowId=state.flow_id,
        status=state.status,
        waitingOn=list(state.waiting_on),
        vars=state.vars,
        results=state.results,
        history=[HistoryEntry.model_validate(entry) for entry in state.history],
        error=state.error,
        deadline=state.deadline,
        group=_group(state, flow),
        created=state.created,
        updated=state.updated,
    ).model_dump(mode="json")


def _group(state: ExecutionState, flow: Flow | None) -> GroupWaitView | None:
    if state.group is None:
        return None
    arrived = {a["triggerId"]: a for a in state.group.arrived}
    trigger_ids = flow.members(state.group.block) if flow else [*arrived, *state.waiting_on]
    names = flow.trigger_blocks if flow else {a["triggerId"]: a["name"] for a in arrived.values()}
    return GroupWaitView(
        block=state.group.block,
        since=state.group.since,
        members=[
            GroupMember(
                name=names.get(trigger_id, trigger_id),
                triggerId=trigger_id,
                arrivedAt=arrived[trigger_id]["at"] if trigger_id in arrived else None,
                activationId=arrived[trigger_id]["activationId"] if trigger_id in arrived else None,
            )
            for trigger_id in trigger_ids
        ],
    )
