"""The engine's management API (Starlette): flows, executions, outcomes and dead letters.

Every `/api/automation/...` route takes the admin key or a FlowAdmin/FlowViewer user-token
(`schemas.access`); `/healthz`, `/readyz`, `/metrics` and `/openapi.json` are open.
"""

import asyncio
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.catalog import Catalog, NotSigned, UnknownFlow, UnknownTrigger
from engine.core.definition import DefinitionError
from engine.core.execution import ExecutionState
from engine.core.expressions import ExpressionError, compile_expression
from engine.dead_letters import DeadLetters, IncompleteDeadLetter, UnknownDeadLetter
from engine.metrics import Metrics
from engine.ports import Evaluator, TokenResolver
from engine.usecases.queries import Queries
from schemas.access import ADMIN_KEY_HEADER, auth_unavailable, require_access
from schemas.errors import ErrorCode
from schemas.events import ExecutionStatus, StartExecution
from schemas.executions import ExecutionView, HistoryEntry
from schemas.flows import FlowDefinition, FlowVersion, IssuedSecret
from schemas.requests import RequestError, json_object

logger = logging.getLogger(__name__)

BODY_LIMIT = 1024 * 1024
MAX_PAGE = 500
MAX_WAIT_SECONDS = 10
PUBLISH_SECONDS = 5.0


class Endpoints:
    """The HTTP endpoints over the flow catalogue, the store and the start-command publisher."""

    def __init__(
        self,
        catalog: Catalog,
        queries: Queries,
        letters: DeadLetters,
        request_start: Callable[[StartExecution], Awaitable[None]],
        clock: Callable[[], int],
        ready: Callable[[], Awaitable[bool]],
        metrics: Metrics,
        tokens: TokenResolver,
        admin_key: str | None,
        evaluate: Evaluator,
    ) -> None:
        self._evaluate = evaluate
        self._tokens = tokens
        self._admin_key = admin_key
        self._catalog = catalog
        self._queries = queries
        self._letters = letters
        self._request_start = request_start
        self._now = clock
        self._ready = ready
        self._metrics = metrics

    def routes(self) -> list[Route]:
        return [
            Route("/api/automation/flows", self._guard(self.deploy), methods=["POST"]),
            Route("/api/automation/flows", self._guard(self.flows), methods=["GET"]),
            Route(
                "/api/automation/expressions/evaluate",
                self._guard(self.evaluate),
                methods=["POST"],
            ),
            Route("/api/automation/flows/{flowId}", self._guard(self.get_flow)),
            Route(
                "/api/automation/flows/{flowId}/triggers/{triggerId}/secret",
                self._guard(self.rotate_secret),
                methods=["POST"],
            ),
            Route(
                "/api/automation/flow/{flowId}/execute", self._guard(self.execute), methods=["POST"]
            ),
            Route("/api/automation/flow/{flowId}/executions", self._guard(self.executions)),
            Route("/api/automation/executions/{executionId}", self._guard(self.get_execution)),
            Route("/api/automation/activations/{activationId}", self._guard(self.get_activation)),
            Route("/api/automation/dead-letters", self._guard(self.dead_letters)),
            Route("/api/automation/dead-letters/{deadLetterId}", self._guard(self.dead_letter)),
            Route(
                "/api/automation/dead-letters/{deadLetterId}/replay",
                self._guard(self.replay),
                methods=["POST"],
            ),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics),
        ]

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            try:
                await self._authorize(request)
                return await handler(request)
            except RequestError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return guarded

    async def _authorize(self, request: Request) -> None:
        key = request.headers.get(ADMIN_KEY_HEADER)
        token = request.headers.get("user-token")
        user = None
        if key is None and token:
            try:
                user = await self._tokens.resolve(token)
            except Exception as exc:  # the auth service did not answer
                logger.warning("auth service unavailable", extra={"error": repr(exc)})
                raise auth_unavailable() from exc
        require_access(request.method, key, self._admin_key, user)

    async def deploy(self, request: Request) -> Response:
        body = await json_object(request.headers.get("content-type"), request.stream(), BODY_LIMIT)
        try:
            definition = FlowDefinition.model_validate(body)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
            raise RequestError(
                400, ErrorCode.INVALID_DEFINITION, "invalid flow definition: " + "; ".join(problems)
            ) from exc
        try:
            deployed = await self._catalog.deploy(definition)
        except DefinitionError as exc:
            raise RequestError(
                400,
                ErrorCode.INVALID_DEFINITION,
                "invalid flow definition: " + "; ".join(exc.problems),
            ) from exc
        # signingSecret only where one was issued
        return JSONResponse(deployed.model_dump(exclude_none=True), status_code=201)

    async def flows(self, request: Request) -> Response:
        """Every deployed version, oldest first, a page at a time (what the console lists)."""
        limit = _limit(request)
        try:
            records, cursor = await self._queries.flows(request.query_params.get("cursor"), limit)
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        page = [
            {
                **self._catalog.describe(r, self._catalog.of(r)).model_dump(exclude_none=True),
                "live": r.live,
                "created": r.created,
            }
            for r in records
        ]
        return JSONResponse({"flows": page, "next": cursor})

    async def evaluate(self, request: Request) -> Response:
        """Evaluate a CEL expression on a context, under the run-time cost budget."""
        body = await json_object(request.headers.get("content-type"), request.stream(), BODY_LIMIT)
        source, context = body.get("expression"), body.get("context", {})
        if not isinstance(source, str) or not source.strip():
            raise RequestError(
                400, ErrorCode.INVALID_REQUEST, "expression must be a non-empty string"
            )
        if not isinstance(context, dict):
            raise RequestError(400, ErrorCode.INVALID_REQUEST, "context must be a JSON object")
        try:
            compile_expression(source)  # the budget and syntax, with a position
            values = await self._evaluate([("value", source)], context, assigns=False)
        except ExpressionError as exc:
            return JSONResponse(_expression_error(str(exc)), status_code=400)
        return JSONResponse({"value": values["value"]})

    async def rotate_secret(self, request: Request) -> Response:
        flow_id, trigger_id = request.path_params["flowId"], request.path_params["triggerId"]
        try:
            rotated = await self._catalog.rotate_secret(flow_id, trigger_id)
        except UnknownFlow as exc:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow") from exc
        except UnknownTrigger as exc:
            raise RequestError(
                404, ErrorCode.UNKNOWN_TRIGGER, "no such trigger in this flow"
            ) from exc
        except NotSigned as exc:
            raise RequestError(409, ErrorCode.CONFLICT, f"{exc}: it has no signing secret") from exc
        answer = IssuedSecret(
            flowId=rotated.flow_id,
            triggerId=rotated.trigger_id,
            signingSecret=rotated.secret,
            previousSecretsValidUntil=rotated.previous_valid_until,
        )
        return JSONResponse(answer.model_dump(), status_code=201)

    async def get_flow(self, request: Request) -> Response:
        found = await self._catalog.flow(request.path_params["flowId"])
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_FLOW, "no such flow")
        record, flow = found
        deployed = self._catalog.describe(record, flow)
        view = FlowVersion(
            **deployed.model_dump(),
            live=record.live,
            created=record.created,
            definition=record.definition,
        )
        return JSONResponse(view.model_dump(mode="json", by_alias=True, exclude_none=True))

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
        try:
            async with asyncio.timeout(PUBLISH_SECONDS):
                await self._request_start(command)
        except MessageSizeTooLargeError:
            raise RequestError(
                413, ErrorCode.BODY_TOO_LARGE, "the input is too large for the broker"
            ) from None
        except (KafkaError, TimeoutError) as exc:
            logger.warning("start not published", extra={"error": repr(exc)})
            raise RequestError(
                503,
                ErrorCode.BROKER_UNAVAILABLE,
                "the start was not accepted: the broker is unavailable; retry later",
            ) from exc
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
                "status must be running, waiting, completed or failed",
            ) from exc
        limit = _limit(request)
        try:
            page, cursor = await self._queries.executions(
                request.path_params["flowId"], status, request.query_params.get("cursor"), limit
            )
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        return JSONResponse({"executions": [view(s) for s in page], "next": cursor})

    async def get_execution(self, request: Request) -> Response:
        state = await self._queries.execution(request.path_params["executionId"])
        if state is None:
            raise RequestError(404, ErrorCode.UNKNOWN_EXECUTION, "no such execution")
        return JSONResponse(view(state))

    async def get_activation(self, request: Request) -> Response:
        activation_id = request.path_params["activationId"].lower()
        outcome = await self._queries.activation(activation_id)
        if outcome is None:
            raise RequestError(
                404,
                ErrorCode.UNKNOWN_ACTIVATION,
                "no outcome for this activation (unknown, or not processed yet)",
            )
        return JSONResponse(outcome.model_dump(mode="json"))

    async def dead_letters(self, request: Request) -> Response:
        limit = _limit(request)
        try:
            letters, cursor = await self._letters.list(request.query_params.get("cursor"), limit)
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        return JSONResponse(
            {"deadLetters": [d.model_dump(mode="json") for d in letters], "next": cursor}
        )

    async def dead_letter(self, request: Request) -> Response:
        letter = await self._letters.get(request.path_params["deadLetterId"].lower())
        if letter is None:
            raise RequestError(404, ErrorCode.UNKNOWN_DEAD_LETTER, "no such dead letter")
        return JSONResponse(letter.model_dump(mode="json"))

    async def replay(self, request: Request) -> Response:
        try:
            letter = await self._letters.replay(request.path_params["deadLetterId"].lower())
        except UnknownDeadLetter as exc:
            raise RequestError(404, ErrorCode.UNKNOWN_DEAD_LETTER, "no such dead letter") from exc
        except IncompleteDeadLetter as exc:
            raise RequestError(409, ErrorCode.CONFLICT, str(exc)) from exc
        return JSONResponse(letter.model_dump(mode="json"), status_code=202)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(self, request: Request) -> Response:
        return Response(self._metrics.render(), media_type="text/plain; version=0.0.4")

    async def readyz(self, request: Request) -> Response:
        if await self._ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse(
            RequestError(503, ErrorCode.NOT_READY, "not ready").body(), status_code=503
        )


_POSITION = re.compile(r"line (\d+), column (\d+)")


def _expression_error(message: str) -> dict[str, Any]:
    found = _POSITION.search(message)
    position = {"line": int(found[1]), "column": int(found[2])} if found else None
    return {"code": ErrorCode.INVALID_EXPRESSION.value, "message": message, "position": position}


def _limit(request: Request) -> int:
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
