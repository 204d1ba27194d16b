"""The gateway's endpoints: a callback (from the ASGI app, `asgi.py`), a start, health
and metrics; each decodes, calls its use case, answers or counts the error."""

import math
import time
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Send

from gateway.call import Call
from gateway.callbacks import Callbacks
from gateway.execute import Executions
from gateway.limits import TokenBuckets
from gateway.metrics import Metrics
from gateway.registry import Registry
from schemas.errors import ErrorCode
from schemas.requests import RequestError


class Endpoints:
    """The gateway's HTTP endpoints: callbacks, starts, health and metrics."""

    def __init__(
        self,
        callbacks: Callbacks,
        executions: Executions,
        registry: Registry,
        metrics: Metrics,
        buckets: TokenBuckets | None,
        trust_forwarded_for: bool,
        ready: Callable[[], bool],
    ) -> None:
        self._callbacks = callbacks
        self._executions = executions
        self._registry = registry
        self._metrics = metrics
        self._buckets = buckets
        self._trust_forwarded_for = trust_forwarded_for
        self._ready = ready
        self._timed = {
            route: metrics.timing(metrics.latency, route) for route in ("activate", "execute")
        }

    async def callback(self, call: Call, send: Send) -> None:
        """Answer a callback: 200 with its activation id once Kafka has its event (or once
        its trigger's IGNORE policy dropped it), else the contract's error."""
        started = time.perf_counter()
        try:
            self._rate_limit(call.headers, call.client)
            activation_id = await self._callbacks.activate(call)
        except RequestError as exc:
            response = _error(exc)
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
        started = time.perf_counter()
        try:
            self._rate_limit(request.headers, request.client.host if request.client else None)
            execution_id = await self._executions.start(request)
            response: Response = JSONResponse({"executionId": execution_id}, status_code=202)
        except RequestError as exc:
            response = _error(exc)
        self._count("execute", response.status_code, started)
        return response

    def _count(self, route: str, status: int, started: float) -> None:
        self._metrics.count(route, str(status))
        self._timed[route].observe(time.perf_counter() - started)

    def _rate_limit(self, headers: Mapping[str, str], client: str | None) -> None:
        if self._buckets is None:
            return
        forwarded = headers.get("x-forwarded-for")
        if forwarded and self._trust_forwarded_for:
            address = forwarded.split(",")[0].strip()
        else:
            address = client or "unknown"
        wait = self._buckets.take(address, time.monotonic())
        if wait:
            raise RateLimited(max(1, math.ceil(wait)))

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


class RateLimited(RequestError):
    """429: the client's address spent its tokens; it may retry after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(429, ErrorCode.RATE_LIMITED, "too many requests; retry later")
        self.retry_after = retry_after


def _error(exc: RequestError) -> Response:
    response = JSONResponse(exc.body(), status_code=exc.status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if exc.status == 408:
        # a client too slow to send its body does not keep the connection
        response.headers["Connection"] = "close"
    return response
