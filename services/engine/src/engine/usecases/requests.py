"""Do what the pure core asks for: HTTP calls and expressions run in a worker."""

from collections.abc import Callable
from dataclasses import replace

from engine.core import execution as ex
from engine.core.definition import Flow
from engine.core.expressions import ExpressionError
from engine.ports import Evaluator, HttpError, HttpRunner


class Requests:
    """Runs a step's requests until the core asks for no more."""

    def __init__(self, http: HttpRunner, expressions: Evaluator, clock: Callable[[], int]) -> None:
        self._http = http
        self._expressions = expressions
        self._now = clock

    async def run(self, flow: Flow, step: ex.Step) -> ex.Step:
        """Do what the core asked for (HTTP calls, guarded expressions) until it asks no more."""
        events = list(step.events)
        while step.http is not None or step.evaluation is not None:
            if step.evaluation is not None:
                request = step.evaluation
                sources = [(key, e.source) for key, e in request.expressions]
                try:
                    values = await self._expressions(sources, request.context, request.assigns)
                except ExpressionError as exc:
                    step = ex.fail_evaluation(
                        flow, step.state, request.block, str(exc), self._now()
                    )
                else:
                    step = ex.complete_evaluation(
                        flow, step.state, request.block, values, self._now()
                    )
            elif step.http is not None:
                call = step.http
                try:
                    response = await self._http(call)
                except HttpError as exc:
                    step = ex.fail_http(flow, step.state, call.block, str(exc), self._now())
                else:
                    step = ex.complete_http(flow, step.state, call.block, response, self._now())
            events.extend(step.events)
        return replace(step, events=events)
