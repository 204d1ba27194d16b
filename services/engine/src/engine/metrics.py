"""Prometheus metrics of the engine (one registry per app, so tests stay independent)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# from acceptance at the gateway to the decision: milliseconds to minutes under a backlog
DECISION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "hookflow_engine_decisions",
            "Activations decided, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "hookflow_engine_decision_seconds",
            "Time from an activation's acceptance (receivedAt) to its decision",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.republished = Counter(
            "hookflow_engine_outcomes_republished",
            "Outcomes decided before and published again for a redelivered activation",
            registry=self.registry,
        )
        self.starts = Counter(
            "hookflow_engine_starts",
            "Start commands handled",
            registry=self.registry,
        )
        self.retries = Counter(
            "hookflow_engine_retries",
            "Records whose handling failed and was tried again, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.rewinds = Counter(
            "hookflow_engine_rewinds",
            "Partitions rewound to a record that kept failing, by topic",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hookflow_engine_dead_letters",
            "Records given up on, by topic and kind (invalid, failed)",
            ["topic", "kind"],
            registry=self.registry,
        )
        self.skipped = Counter(
            "hookflow_engine_skipped_messages",
            "Records whose dead letter could not be written either: only their position, "
            "size, SHA-256 and error were kept, by topic (alert on any)",
            ["topic"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "hookflow_engine_consumer_lag",
            "Records behind the end of each partition, after the last batch handled",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.producer_renewals = Counter(
            "hookflow_engine_kafka_producer_renewals",
            "Kafka producers that failed for good (a fatal error: the cluster refused "
            "the producer an id, or fenced it) and were made anew",
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "hookflow_engine_batch_records",
            "Records per batch taken from Kafka",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
