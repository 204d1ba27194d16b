"""Traces across the services: W3C trace context from a caller's `traceparent`, carried in
Kafka headers from the gateway into the engine.

Off unless the standard OpenTelemetry variables ask for an exporter
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
`OTEL_TRACES_EXPORTER=otlp|console`) or a test hands a tracer provider in: then
`Tracing.enabled` is False and the callers skip every span, so that tracing off costs a
callback one attribute read. Exported over OTLP/HTTP by the SDK's batch processor.

Sampling (`OTEL_TRACES_SAMPLER`, e.g. `parentbased_traceidratio` with `..._ARG=0.01`) is
decided before a span is made: a span the sampler drops is not made at all, only its
context (the trace's id, not sampled) is made current, so that what follows (a child, a
message's headers, the log record's trace id) is in the same trace, and the engine drops
it too. An unsampled callback then costs a few microseconds, not the SDK's bookkeeping of
a span (about 30 microseconds each).
"""

import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context as contexts
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
KAFKA_HEADERS = ("traceparent", "tracestate")


class _RecordHeaders(Getter[list[tuple[str, bytes]]]):
    """A Kafka record's headers as consumers get them: (name, bytes) pairs."""

    def get(self, carrier: list[tuple[str, bytes]], key: str) -> list[str] | None:
        found = [value.decode("latin-1") for name, value in carrier if name == key]
        return found or None

    def keys(self, carrier: list[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


_KAFKA = _RecordHeaders()


def _exporters_asked() -> list[str]:
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return []
    named = [e.strip() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if named:
        return [e for e in named if e in ("otlp", "console")]
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


class _Ids(RandomIdGenerator):
    """Random ids, but a new trace takes the id its sampling was decided on
    (`Tracing.start`): decided again on another id, a sampled ratio would be squared."""

    def __init__(self) -> None:
        self.decided: int | None = None

    def generate_trace_id(self) -> int:
        decided, self.decided = self.decided, None
        return decided if decided is not None else super().generate_trace_id()


class _Unsampled:
    """A span the sampler dropped: its context is current for a `with` block, no more."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: NonRecordingSpan) -> None:
        self._span = span

    def __enter__(self) -> NonRecordingSpan:
        self._token = contexts.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, *exc: object) -> None:
        contexts.detach(self._token)


def new_provider(service: str, sampler: Sampler | None = None) -> TracerProvider:
    """A tracer provider whose sampling `Tracing` decides before a span is made
    (`sampler`: none, the one the OTEL_* variables name); no exporter yet."""
    name = os.environ.get("OTEL_SERVICE_NAME") or f"hookflow-{service}"
    return TracerProvider(
        sampler=sampler, resource=Resource.create({"service.name": name}), id_generator=_Ids()
    )


def provider_from_env(service: str) -> TracerProvider | None:
    """A tracer provider exporting as the OTEL_* variables ask, or None (tracing off)."""
    exporters = _exporters_asked()
    if not exporters:
        return None
    provider = new_provider(service)
    for exporter in exporters:
        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


class Tracing:
    """One service's tracer, or nothing at all."""

    def __init__(self, provider: TracerProvider | None, service: str) -> None:
        self.enabled = provider is not None
        self._provider = provider
        self._tracer = provider.get_tracer(f"hookflow.{service}") if provider else None

    def start(
        self,
        name: str,
        parent: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
    ) -> Any:
        """A span made current for a `with` block (`parent`: a context from `extract`;
        none: the current one). One the sampler drops is not made (see the module)."""
        provider = self._provider
        assert provider is not None
        above = trace.get_current_span(parent).get_span_context()
        ids = provider.id_generator
        if above.is_valid:
            trace_id = above.trace_id
        elif isinstance(ids, _Ids):
            trace_id = ids.generate_trace_id()
        else:  # a provider handed in: the SDK decides on an id of its own
            return self._span(name, parent, kind, attributes)
        decision = provider.sampler.should_sample(parent, trace_id, name, kind, attributes).decision
        if decision is Decision.DROP:
            state = above.trace_state if above.is_valid else None
            random = above.trace_flags.random_trace_id if above.is_valid else True
            flags = TraceFlags(TraceFlags.RANDOM_TRACE_ID if random else TraceFlags.DEFAULT)
            dropped = SpanContext(trace_id, ids.generate_span_id(), False, flags, state)
            return _Unsampled(NonRecordingSpan(dropped))
        if isinstance(ids, _Ids) and not above.is_valid:
            ids.decided = trace_id
        return self._span(name, parent, kind, attributes)

    def _span(
        self, name: str, parent: Any, kind: SpanKind, attributes: Mapping[str, Any] | None
    ) -> Any:
        assert self._tracer is not None
        span = self._tracer.start_span(
            name, context=parent, kind=kind, attributes=dict(attributes or {})
        )
        return trace.use_span(span, end_on_exit=True)

    @staticmethod
    def from_http(headers: Mapping[str, str]) -> Any:
        """The context a caller's `traceparent` (and `tracestate`) names, if any."""
        return _PROPAGATOR.extract({k: headers[k] for k in KAFKA_HEADERS if k in headers})

    @staticmethod
    def from_kafka(headers: Iterable[tuple[str, bytes]] | None) -> Any:
        return _PROPAGATOR.extract(list(headers or ()), getter=_KAFKA)

    @staticmethod
    def kafka_headers() -> dict[str, str]:
        """The current span's context as the headers of a message to publish (or of an
        HTTP request: W3C trace context names them alike)."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier

    @staticmethod
    def trace_id() -> str | None:
        """The current trace's id (32 hex digits), when a span is recording."""
        span: Span = trace.get_current_span()
        context = span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()
