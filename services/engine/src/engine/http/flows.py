"""Deploying, listing, reading flows; rotating a trigger's secret; the expression tester."""

import logging

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.catalog import NotSigned, UnknownFlow, UnknownTrigger
from engine.core.definition import DefinitionError
from engine.core.expressions import ExpressionError, compile_expression
from engine.http.params import BODY_LIMIT, expression_error, page_limit
from engine.http.routes import Routes
from schemas.errors import ErrorCode
from schemas.flows import FlowDefinition, FlowVersion, IssuedSecret
from schemas.requests import RequestError, json_object

logger = logging.getLogger(__name__)


class FlowRoutes(Routes):
    """Deploying, listing, reading flows; rotating a trigger's secret; the expression tester."""

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
        limit = page_limit(request)
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
            return JSONResponse(expression_error(str(exc)), status_code=400)
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
