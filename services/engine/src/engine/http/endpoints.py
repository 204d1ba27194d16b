"""The engine's management API (Starlette): its routes, who may call them, health.

Every `/api/automation/...` route takes the admin key or a FlowAdmin/FlowViewer user-token
(`schemas.access`); `/healthz`, `/readyz`, `/metrics` and `/openapi.json` are open.
"""

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.catalog import Catalog
from engine.dead_letters import DeadLetters
from engine.http.executions import ExecutionRoutes
from engine.http.flows import FlowRoutes
from engine.http.letters import LetterRoutes
from engine.metrics import Metrics
from engine.ports import Evaluator, TokenResolver
from engine.usecases.queries import Queries
from schemas.access import ADMIN_KEY_HEADER, auth_unavailable, require_access
from schemas.errors import ErrorCode
from schemas.events import StartExecution
from schemas.requests import RequestError

logger = logging.getLogger(__name__)


class Endpoints(FlowRoutes, ExecutionRoutes, LetterRoutes):
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
