"""Sampling decided before a span is made (`schemas.tracing`): what a sampled share of
callbacks looks like in the exported traces."""

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind

from schemas.tracing import Tracing, new_provider

CALLBACKS = 4000


def _traced(ratio: float) -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = new_provider("test", ParentBased(TraceIdRatioBased(ratio)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider, "test"), exporter


def _callbacks(tracing: Tracing, count: int) -> list[str | None]:
    """`count` callbacks as the gateway traces them (accept, publish inside it); the
    headers each would send to Kafka."""
    sent = []
    for _ in range(count):
        with (
            tracing.start("accept", Tracing.from_http({}), SpanKind.SERVER),
            tracing.start("publish", kind=SpanKind.PRODUCER),
        ):
            sent.append(Tracing.kafka_headers().get("traceparent"))
    return sent


def test_a_sampling_ratio_keeps_that_share_of_callbacks_each_whole() -> None:
    tracing, exporter = _traced(0.25)
    sent = _callbacks(tracing, CALLBACKS)
    spans: list[ReadableSpan] = list(exporter.get_finished_spans())
    accepts = {s.context.span_id: s for s in spans if s.name == "accept" and s.context}
    publishes = [s for s in spans if s.name == "publish"]
    # a quarter, not a sixteenth: a new trace is sampled on the id it keeps (binomial
    # spread for 4000 callbacks: 27; these bounds are more than five of it away)
    assert 850 <= len(accepts) <= 1150
    # a sampled callback is sampled whole, an unsampled one not at all
    assert len(publishes) == len(accepts)
    assert all(p.parent is not None and p.parent.span_id in accepts for p in publishes)
    # every record names its trace; the engine samples as the flag says
    sampled = [int(header.rsplit("-", 1)[1], 16) & 1 for header in sent if header]
    assert len(sampled) == CALLBACKS
    assert sum(sampled) == len(accepts)


def test_an_unsampled_callback_is_still_in_its_callers_trace() -> None:
    tracing, exporter = _traced(1.0)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    caller = Tracing.from_http({"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"})
    with (
        tracing.start("accept", caller, SpanKind.SERVER),
        tracing.start("publish", kind=SpanKind.PRODUCER),
    ):
        header = Tracing.kafka_headers()["traceparent"]
        logged = Tracing.trace_id()
    assert exporter.get_finished_spans() == ()
    assert header.startswith(f"00-{trace_id}-")
    assert int(header.rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    assert logged == trace_id
