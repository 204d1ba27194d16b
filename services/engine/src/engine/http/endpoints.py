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
from engine.http.activations import ActivationRoutes
from engine.http.executions import ExecutionRoutes
from engine.http.flows import FlowRoutes
from engine.http.letters import LetterRoutes
from engine.http.runs import RunRoutes
from engine.metrics import Metrics
from engine.ports import Evaluator, TokenResolver
from engine.usecases import Engine
from engine.usecases.queries import Queries
from schemas.access import require_access
from schemas.errors import ErrorCode
from schemas.events import StartExecution
from schemas.requests import RequestError
from schemas.system import SystemFigures

logger = logging.getLogger(__name__)


class Endpoints(FlowRoutes, ExecutionRoutes, ActivationRoutes, LetterRoutes, RunRoutes):
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
        keys: tuple[str | None, str | None],  # the admin key, the activation key
        evaluate: Evaluator,
        engine: Engine,
        system: Callable[[], SystemFigures],
    ) -> None:
        self._engine = engine
        self._system = system
        self._activation_key = keys[1]
        self._evaluate = evaluate
        self._tokens = tokens
        self._admin_key = keys[0]
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
            Route("/api/automation/activations", self._guard(self.activations)),
            Route("/api/automation/activations/summary", self._guard(self.activation_summary)),
            Route(
                "/api/automation/activations/replay",
                self._guard(self.replay_activations),
                methods=["POST"],
            ),
            Route("/api/automation/activations/{activationId}", self._guard(self.get_activation)),
            Route(
                "/api/automation/activations/{activationId}/replay",
                self._guard(self.replay_activation),
                methods=["POST"],
            ),
            Route("/api/automation/system", self._guard(self.system)),
            Route("/api/automation/dead-letters", self._guard(self.dead_letters)),
            Route("/api/automation/dead-letters/{deadLetterId}", self._guard(self.dead_letter)),
            Route(
                "/api/automation/dead-letters/{deadLetterId}/replay",
                self._guard(self.replay),
                methods=["POST"],
            ),
            *self._runs(),
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/metrics", self.metrics),
        ]

    async def system(self, request: Request) -> Response:
        """The deployment's figures over the last hour, from Kafka's offsets."""
        return JSONResponse(self._system().model_dump(mode="json"))

    def _runs(self) -> list[Route]:
        """FlowRunner's execution API: each route checks its caller itself (`runs.py`)."""
        flow = "/api/automation/flow"
        execution = flow + "/{flowId}/execution/{executionId}"
        answer = self._answer
        return [
            Route(flow + "/execution-context/{executionId}", answer(self.execution_context)),
            Route(execution, answer(self.execution_status)),
            Route(execution + "/block/result", answer(self.block_result)),
            Route(execution + "/stop", answer(self.stop), methods=["POST"]),
            Route(
                flow + "/{flowIdOrName}/activate-blocking",
                answer(self.blocking),
                methods=["GET", "POST"],
            ),
        ]

    @staticmethod
    def _answer(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def answered(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestError as exc:
                return JSONResponse(exc.body(), status_code=exc.status)

        return answered

    def _guard(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """The management API's check of the caller, then the handler."""

        async def guarded(request: Request) -> Response:
            await self._authorize(request)
            return await handler(request)

        return self._answer(guarded)

    async def _authorize(self, request: Request) -> None:
        key, user = await self._caller(request)
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
