"""The store and the HTTP blocks seen by traces: each call a span inside the decision
that made it (span `decide`), named `store.<call>` and `http_request`. Wrapped around the
real adapters only when tracing is on (`app.py`)."""

import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from engine.core.state import HttpCall
from engine.ports import HttpRunner
from schemas.tracing import Tracing


class TracedStore:
    """Any store: its coroutine calls made within a recording span get a child span."""

    def __init__(self, store: Any, tracing: Tracing) -> None:
        self._store = store
        self._tracing = tracing

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not inspect.iscoroutinefunction(found):
            return found
        tracing = self._tracing

        @functools.wraps(found)
        async def traced(*args: Any, **kwargs: Any) -> Any:
            if not trace.get_current_span().is_recording():
                return await found(*args, **kwargs)  # not within a decision: no span
            with tracing.start(f"store.{name}", kind=SpanKind.CLIENT):
                return await found(*args, **kwargs)

        setattr(self, name, traced)  # made once per call name
        return traced


class TracedHttp:
    """An HttpRunner whose requests are spans; the request carries the trace onward."""

    def __init__(self, runner: HttpRunner, tracing: Tracing) -> None:
        self._runner: Callable[[HttpCall], Awaitable[dict[str, Any]]] = runner
        self._tracing = tracing

    async def __call__(self, call: HttpCall) -> dict[str, Any]:
        attributes = {"http.request.method": call.method, "hookflow.block": call.block}
        with self._tracing.start("http_request", kind=SpanKind.CLIENT, attributes=attributes):
            headers = {**call.headers, **Tracing.kafka_headers()}  # W3C: the same headers
            return await self._runner(dataclasses.replace(call, headers=headers))
