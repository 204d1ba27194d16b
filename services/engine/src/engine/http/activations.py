"""The activation log: list, read, replay one or every matching one."""

from datetime import datetime

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.http.params import BODY_LIMIT, page_limit
from engine.http.routes import Routes
from engine.usecases.replay import BodyNotKept, UnknownActivation
from schemas.activations import MAX_INSTANT, ActivationFilter, ReplayRequest
from schemas.errors import ErrorCode
from schemas.events import Outcome
from schemas.requests import RequestError, json_object

MAX_BUCKETS = 1440  # a day in minutes
_UNKNOWN = "no outcome for this activation (unknown, or not processed yet)"


class ActivationRoutes(Routes):
    """The activation log: list, read, replay."""

    async def activations(self, request: Request) -> Response:
        params = request.query_params
        where = ActivationFilter(
            flowId=params.get("flowId") or None,
            triggerId=params.get("triggerId") or None,
            outcome=_outcomes(params.get("outcome")),
            since=_instant(params.get("since"), "since"),
            until=_instant(params.get("until"), "until"),
        )
        try:
            page = await self._queries.activations(where, params.get("cursor"), page_limit(request))
        except ValueError as exc:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "invalid cursor") from exc
        return JSONResponse(page.model_dump(mode="json"))

    async def activation_summary(self, request: Request) -> Response:
        """Counts per trigger and outcome over time (the console's charts): the last hour
        in minutes unless `since`, `until`, `bucketSeconds` say otherwise."""
        params = request.query_params
        until = _instant(params.get("until"), "until")
        until = self._now() if until is None else until
        since = _instant(params.get("since"), "since")
        since = max(0, until - 3_600_000) if since is None else since
        bucket = params.get("bucketSeconds", "60")
        if not bucket.isdigit() or not 1 <= int(bucket) <= 86_400:
            raise RequestError(400, ErrorCode.INVALID_PARAMETER, "bucketSeconds must be 1 to 86400")
        if not since < until or (until - since) // (int(bucket) * 1000) >= MAX_BUCKETS:
            raise RequestError(
                400,
                ErrorCode.INVALID_PARAMETER,
                f"since must be before until, at most {MAX_BUCKETS} buckets apart",
            )
        where = ActivationFilter(
            flowId=params.get("flowId") or None,
            triggerId=params.get("triggerId") or None,
            outcome=_outcomes(params.get("outcome")),
            since=since,
            until=until,
        )
        summary = await self._queries.activation_summary(where, int(bucket))
        return JSONResponse(summary.model_dump(mode="json"))

    async def get_activation(self, request: Request) -> Response:
        found = await self._queries.activation_record(request.path_params["activationId"].lower())
        if found is None:
            raise RequestError(404, ErrorCode.UNKNOWN_ACTIVATION, _UNKNOWN)
        return JSONResponse(found.model_dump(mode="json"))

    async def replay_activation(self, request: Request) -> Response:
        try:
            replayed = await self._engine.replay(request.path_params["activationId"].lower())
        except UnknownActivation as exc:
            raise RequestError(404, ErrorCode.UNKNOWN_ACTIVATION, _UNKNOWN) from exc
        except BodyNotKept as exc:
            raise RequestError(409, ErrorCode.CONFLICT, str(exc)) from exc
        return JSONResponse(replayed.model_dump(mode="json"), status_code=202)

    async def replay_activations(self, request: Request) -> Response:
        body = await json_object(
            request.headers.get("content-type"), request.stream(), limit=BODY_LIMIT
        )
        try:
            where = ReplayRequest.model_validate(body)
        except ValidationError as exc:
            raise RequestError(
                400, ErrorCode.INVALID_REQUEST, f"not a replay request: {_first(exc)}"
            ) from exc
        if not (where.flowId or where.triggerId):
            raise RequestError(
                400, ErrorCode.INVALID_REQUEST, "name the flowId or the triggerId to replay"
            )
        answer = await self._engine.replay_matching(where)
        return JSONResponse(answer.model_dump(mode="json"), status_code=202)


def _outcomes(text: str | None) -> list[Outcome] | None:
    """`outcome=NO_WAITER,FILTERED`: any of them."""
    if not text:
        return None
    try:
        return [Outcome(part.strip().upper()) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        known = ", ".join(o.value for o in Outcome)
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"outcome must be among {known}"
        ) from exc


def _instant(text: str | None, name: str) -> int | None:
    """Epoch milliseconds, or an ISO 8601 time with its offset, from 1970 on."""
    if not text:
        return None
    if text.isascii() and text.isdigit():
        # more digits than 64 bits hold is out of range, not a number to convert
        return _in_range(int(text) if len(text) <= 19 else MAX_INSTANT + 1, name)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RequestError(
            400,
            ErrorCode.INVALID_PARAMETER,
            f"{name} must be epoch milliseconds or an ISO 8601 time",
        ) from exc
    if moment.tzinfo is None:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"{name} must name its offset (Z or +hh:mm)"
        )
    return _in_range(int(moment.timestamp() * 1000), name)


def _in_range(instant: int, name: str) -> int:
    if not 0 <= instant <= MAX_INSTANT:
        raise RequestError(
            400, ErrorCode.INVALID_PARAMETER, f"{name} must be from 1970 to {MAX_INSTANT} ms"
        )
    return instant


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])
