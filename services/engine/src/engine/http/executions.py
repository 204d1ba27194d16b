"""Starting and reading executions; an activation's outcome."""

import asyncio
import logging
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.http.params import (
    BODY_LIMIT,
    MAX_WAIT_SECONDS,
    page_limit,
    view,
)
from engine.http.routes import Routes
from schemas.errors import ErrorCode
from schemas.events import ExecutionStatus, StartExecution
from schemas.requests import RequestError, json_object

logger = logging.getLogger(__name__)


class ExecutionRoutes(Routes):
    """Starting and reading executions; an activation's outcome."""

    async def execute(self, request: Request) -> Response:
        """Request a start; with `wait=<seconds>` (at most 10), answer once the execution
        exists (a start is carried out asynchronously), or when the time is up."""
        text = request.query_params.get("wait", "0")
        if not text.isdigit() or int(text) > MAX_WAIT_SECONDS:
            raise RequestError(
                400, ErrorCode.INVALID_PARAMETER, f"wait must be 0..{MAX_WAIT_SECONDS} seconds"
            )
        body = await json_object(request.headers.get("content-type"), request.stream(), BODY_LIMIT)
        found = await self._catalog.flow(request.path_params["flowId"])
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
        execution_id = str(uuid.uuid4())
        command = StartExecution(
            executionId=execution_id, flowId=found[0].flow_id, input=body, requestedAt=self._now()
        )
        await self._publish_start(command)
        deadline = asyncio.get_running_loop().time() + int(text)
        while asyncio.get_running_loop().time() < deadline:
            if await self._queries.execution(execution_id) is not None:
                break
            await asyncio.sleep(0.05)
        return JSONResponse({"executionId": execution_id}, status_code=202)

    async def executions(self, request: Request) -> Response:
        status_text = request.query_params.get("status")
        try:
            status = ExecutionStatus(status_text.lower()) if status_text else None
        except ValueError as exc:
            raise RequestError(
                400,
                ErrorCode.INVALID_PARAMETER,
                "status must be running, waiting, completed, failed or terminated",
            ) from exc
        limit = page_limit(request)
        try:
            page, cursor = await self._queries.executions(
                request.path_params["flowId"], status, request.query_params.get("cursor"), limit
            )
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        flow = await self._catalog.compiled(request.path_params["flowId"])
        return JSONResponse({"executions": [view(s, flow) for s in page], "next": cursor})

    async def get_execution(self, request: Request) -> Response:
        state = await self._queries.execution(request.path_params["executionId"])
        if state is None:
            raise RequestError(404, ErrorCode.UNKNOWN_EXECUTION, "no such execution")
        flow = await self._catalog.compiled(state.flow_id) if state.group else None
        return JSONResponse(view(state, flow))
