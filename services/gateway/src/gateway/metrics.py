"""Prometheus metrics of the gateway (one registry per app, so tests stay independent).

Counted on the hot path as plain numbers: every request runs on the one event loop of
its worker, so a count needs no lock, and prometheus_client's locked children cost a
callback more than the rest of its bookkeeping. The registry turns the numbers into
the usual counter and histogram families when scraped.
"""

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# the bucket labels as prometheus_client writes them
_BOUNDS = {bound: repr(bound) for bound in LATENCY_BUCKETS} | {float("inf"): "+Inf"}


class Timing:
    """One histogram child: counts per bucket (not cumulative) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics(Collector):
    def __init__(self, auth_lookups: Callable[[], Mapping[str, int]] = dict) -> None:
        self.requests: dict[tuple[str, str], int] = {}  # (route, outcome) -> count
        self.latency: dict[str, Timing] = {}  # route ->
        self.publish_latency: dict[str, Timing] = {}  # topic ->
        self._auth_lookups = auth_lookups  # result (hit, miss) -> count
        self.shed: dict[str, int] = {}  # limit (client, trigger, lag) -> callbacks refused
        self.quota_reports = {"sent": 0, "received": 0}
        self.refusal_reports: dict[str, int] = {}  # result (sent, dropped, failed) ->
        self.engine_lag: Callable[[], float] | None = None  # with the lag guard on
        self.producer_renewals = 0  # Kafka clients made anew (librdkafka's fatal error)
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def count(self, route: str, outcome: str) -> None:
        key = (route, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1

    def producer_renewed(self) -> None:
        """The producer's delivery thread: one more client made anew."""
        self.producer_renewals += 1

    def timing(self, family: dict[str, Timing], label: str) -> Timing:
        """The child of `family` for `label`, made on first use; callers keep it."""
        child = family.get(label)
        if child is None:
            child = family[label] = Timing()
        return child

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "hookflow_gateway_requests",
            "Requests by route and outcome",
            labels=["route", "outcome"],
        )
        for (route, outcome), value in sorted(self.requests.items()):
            requests.add_metric([route, outcome], value)
        yield requests
        yield _histogram(
            "hookflow_gateway_request_seconds", "Request latency by route", "route", self.latency
        )
        yield _histogram(
            "hookflow_gateway_kafka_publish_seconds",
            "Time until Kafka acknowledged an event",
            "topic",
            self.publish_latency,
        )
        lookups = CounterMetricFamily(
            "hookflow_gateway_auth_lookups",
            "Token lookups by result: hit (answered from the cache) or miss",
            labels=["result"],
        )
        for result, value in sorted(self._auth_lookups().items()):
            lookups.add_metric([result], value)
        yield lookups
        shed = CounterMetricFamily(
            "hookflow_gateway_shed",
            "Requests answered 429 by the limit that refused them: client (per address), "
            "trigger (its rateLimit, across every gateway), lag (the lag guard)",
            labels=["limit"],
        )
        for limit, value in sorted(self.shed.items()):
            shed.add_metric([limit], value)
        yield shed
        reports = CounterMetricFamily(
            "hookflow_gateway_quota_reports",
            "Rate-limit reports: sent by this process, received from the others",
            labels=["direction"],
        )
        for direction, value in sorted(self.quota_reports.items()):
            reports.add_metric([direction], value)
        yield reports
        refusals = CounterMetricFamily(
            "hookflow_gateway_refusal_reports",
            "Refused callbacks reported to the activation log: sent, dropped (over the "
            "report rate or the queue) or failed (the broker did not take the report)",
            labels=["result"],
        )
        for result, value in sorted(self.refusal_reports.items()):
            refusals.add_metric([result], value)
        yield refusals
        yield CounterMetricFamily(
            "hookflow_gateway_kafka_producer_renewals",
            "Kafka producers that failed for good (a fatal error: the cluster refused "
            "the producer an id, or fenced it) and were made anew",
            value=self.producer_renewals,
        )
        if self.engine_lag is not None:
            yield GaugeMetricFamily(
                "hookflow_gateway_engine_lag_seconds",
                "The age of the oldest callback the engine has not committed, as the lag "
                "guard last read it",
                value=self.engine_lag(),
            )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _histogram(name: str, documentation: str, label: str, family: dict[str, Timing]) -> Metric:
    metric = HistogramMetricFamily(name, documentation, labels=[label])
    for value, child in sorted(family.items()):
        cumulative, buckets = 0, []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), child.counts, strict=True):
            cumulative += count
            buckets.append((_BOUNDS[bound], float(cumulative)))
        metric.add_metric([value], buckets, child.total)
    return metric
