"""What the management API's routes share: limits, paging, the execution's view, the
position of an expression's error."""

import re
from typing import Any

from starlette.requests import Request

from engine.core.execution import ExecutionState
from schemas.errors import ErrorCode
from schemas.executions import ExecutionView, HistoryEntry
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


def view(state: ExecutionState) -> dict[str, Any]:
    """The management API's JSON of an execution."""
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
        created=state.created,
        updated=state.updated,
    ).model_dump(mode="json")
