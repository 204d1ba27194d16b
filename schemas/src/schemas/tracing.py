"""Traces across the services: W3C trace context from a caller's `traceparent`, carried in
Kafka headers from the gateway into the engine.

Off unless the standard OpenTelemetry variables ask for an exporter
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
`OTEL_TRACES_EXPORTER=otlp|console`) or a test hands a tracer provider in: then
`Tracing.enabled` is False and the callers skip every span, so that tracing off costs a
callback one attribute read. Exported over OTLP/HTTP by the SDK's batch processor.
"""

import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind
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


def provider_from_env(service: str) -> TracerProvider | None:
    """A tracer provider exporting as the OTEL_* variables ask, or None (tracing off)."""
    exporters = _exporters_asked()
    if not exporters:
        return None
    name = os.environ.get("OTEL_SERVICE_NAME") or f"hookflow-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
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
        """A span made current for a `with` block (`parent`: a context from `extract`)."""
        assert self._tracer is not None
        return self._tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=dict(attributes or {})
        )

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
