"""The gateway's endpoints: a callback (from the ASGI app, `asgi.py`), a start, health
and metrics; each decodes, calls its use case, answers or counts the error."""

import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from gateway.call import Call
from gateway.callbacks import Callbacks
from gateway.limits import RateLimited, TokenBuckets
from gateway.metrics import Metrics
from gateway.registry import Registry
from gateway.starts import StartRequest, Starts
from schemas.errors import ErrorCode
from schemas.events import ActivationSource
from schemas.forwarding import TrustedProxies
from schemas.requests import RequestError, json_object


class Endpoints:
    """The gateway's HTTP endpoints: callbacks, starts, health and metrics."""

    def __init__(
        self,
        callbacks: Callbacks,
        starts: Starts,
        registry: Registry,
        metrics: Metrics,
        buckets: TokenBuckets | None,
        proxies: TrustedProxies,
        ready: Callable[[], bool],
        app_info: dict[str, object],
    ) -> None:
        self._callbacks = callbacks
        self._starts = starts
        self._registry = registry
        self._metrics = metrics
        self._buckets = buckets
        self._proxies = proxies
        self._ready = ready
        self._app_info = app_info
        self._timed = {
            route: metrics.timing(metrics.latency, route)
            for route in ("activate", "execute", "start", "activate-by-name")
        }

    async def callback(self, call: Call, send: Send) -> None:
        """Answer a callback: 200 with its activation id once Kafka has its event (or once
        its trigger's IGNORE policy dropped it), else the contract's error."""
        started = time.perf_counter()
        try:
            self._rate_limit(call.headers, call.client)
            activation_id = await self._callbacks.activate(call)
        except RequestError as exc:
            response = self._refused(exc)
            await response(call.scope, call.receive, send)
            status = exc.status
        else:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-length", b"0"),
                        (b"x-activation-id", activation_id.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            status = 200
        self._count("activate", status, started)

    async def execute(self, request: Request) -> Response:
        """`/execute`: a start answered 202, refused with 1001 (a management route)."""

        async def start() -> StartRequest:
            flow = await self._starts.flow(request.path_params["flowId"])
            return StartRequest(
                flow, request.headers, "POST", request.receive, ErrorCode.ACCESS_DENIED
            )

        return await self._start("execute", request, start, 202)

    async def activate_flow(self, request: Request) -> Response:
        """FlowRunner's start by flow id: the body is the initial data."""

        async def start() -> StartRequest:
            flow = await self._starts.flow(request.path_params["flowId"])
            return StartRequest(flow, request.headers, "POST", request.receive)

        return await self._start("start", request, start, 200)

    async def activate_by_name(self, request: Request) -> Response:
        """FlowRunner's start by name: `{"name", "initialData"}`, the live version."""

        async def start() -> StartRequest:
            body = await json_object(request.headers.get("content-type"), request.stream())
            name, data = body.get("name"), body.get("initialData")
            if not isinstance(name, str) or not name:
                raise RequestError(400, ErrorCode.INVALID_REQUEST, "name must be a flow's name")
            if data is not None and not isinstance(data, dict):
                raise RequestError(400, ErrorCode.NOT_AN_OBJECT, "initialData must be an object")
            flow = await self._starts.live_flow(name)
            return StartRequest(flow, request.headers, "POST", data or {})

        return await self._start("start", request, start, 200)

    async def _start(
        self,
        route: str,
        request: Request,
        start: Callable[[], Awaitable[StartRequest]],
        ok: int,
    ) -> Response:
        started = time.perf_counter()
        try:
            self._rate_limit(request.headers, request.client.host if request.client else None)
            execution_id = await self._starts.start(await start())
            response: Response = JSONResponse({"executionId": execution_id}, status_code=ok)
        except RequestError as exc:
            response = self._refused(exc)
        self._count(route, response.status_code, started)
        return response

    async def activate_trigger_by_name(self, request: Request) -> Response:
        """FlowRunner's activation by names: the flow's live version and its trigger of
        that name; the activation also reaches older versions' waiting executions."""
        started = time.perf_counter()
        try:
            self._rate_limit(request.headers, request.client.host if request.client else None)
            flow_name = request.query_params.get("flowName")
            trigger_name = request.query_params.get("triggerName")
            if not flow_name or not trigger_name:
                raise RequestError(
                    400, ErrorCode.INVALID_PARAMETER, "flowName and triggerName are required"
                )
            flow = await self._starts.live_flow(flow_name)
            trigger = self._registry.trigger_named(flow.flowId, trigger_name)
            if trigger is None:
                raise RequestError(
                    404,
                    ErrorCode.UNKNOWN_TRIGGER_NAME,
                    f"flow {flow_name!r} has no trigger named {trigger_name!r}",
                )
            call = Call(request.scope, request.receive, flow.flowId, trigger.triggerId)
            activation_id = await self._callbacks.activate(call, ActivationSource.BY_NAME.value)
            response = Response(status_code=200, headers={"x-activation-id": activation_id})
        except RequestError as exc:
            response = self._refused(exc)
        self._count("activate-by-name", response.status_code, started)
        return response

    async def info(self, request: Request) -> Response:
        """What the Backendless SDK reads at `initApp`."""
        return JSONResponse(self._app_info)

    def _refused(self, exc: RequestError) -> Response:
        if isinstance(exc, RateLimited):
            limit = _SHED.get(exc.code, "client")
            self._metrics.shed[limit] = self._metrics.shed.get(limit, 0) + 1
        return _error(exc)

    def _count(self, route: str, status: int, started: float) -> None:
        self._metrics.count(route, str(status))
        self._timed[route].observe(time.perf_counter() - started)

    def _rate_limit(self, headers: Mapping[str, str], client: str | None) -> None:
        if self._buckets is None:
            return
        address = self._proxies.client(client, headers.get("x-forwarded-for"))
        wait = self._buckets.take(address, time.monotonic())
        if wait:
            raise RateLimited(wait, ErrorCode.RATE_LIMITED, "too many requests; retry later")

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        if self._ready():
            return JSONResponse({"status": "ready", "flows": len(self._registry)})
        return JSONResponse(
            RequestError(503, ErrorCode.NOT_READY, "not ready").body(), status_code=503
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self._metrics.render(), media_type="text/plain; version=0.0.4")


_SHED = {ErrorCode.TRIGGER_RATE_LIMITED: "trigger", ErrorCode.OVERLOADED: "lag"}


def _error(exc: RequestError) -> Response:
    response = JSONResponse(exc.body(), status_code=exc.status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 408:
        # a client too slow to send its body does not keep the connection
        response.headers["Connection"] = "close"
    return response
