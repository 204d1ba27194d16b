"""Kafka topic names, the one place where they are spelled; and the brokers' addresses."""

from dataclasses import dataclass

DEFAULT_PREFIX = "hookflow"

ACTIVATIONS = "activations"
EXECUTION_STARTS = "execution-starts"
EXECUTION_EVENTS = "execution-events"
ACTIVATION_OUTCOMES = "activation-outcomes"
FLOW_REGISTRY = "flow-registry"
AUTH_EVENTS = "auth-events"
DEAD_LETTERS = "dead-letters"
QUOTA_USAGE = "quota-usage"
ACTIVATION_REFUSALS = "activation-refusals"

ALL = (
    ACTIVATIONS,
    EXECUTION_STARTS,
    EXECUTION_EVENTS,
    ACTIVATION_OUTCOMES,
    FLOW_REGISTRY,
    AUTH_EVENTS,
    DEAD_LETTERS,
    QUOTA_USAGE,
    ACTIVATION_REFUSALS,
)
COMPACTED = frozenset({FLOW_REGISTRY})
# one partition, read by every gateway from its end: what it holds is soon worthless
SHORT_LIVED = {QUOTA_USAGE: {"retention.ms": "60000"}}
PARTITIONED = frozenset(ALL) - COMPACTED - SHORT_LIVED.keys()  # the rest have one partition


@dataclass(frozen=True)
class Topics:
    """Full topic names under a configurable prefix (one prefix per deployment or test)."""

    prefix: str = DEFAULT_PREFIX

    def name(self, base: str) -> str:
        """Return the full name of the topic `base` (one of the constants above)."""
        if base not in ALL:
            raise ValueError(f"unknown topic {base!r}")
        return f"{self.prefix}.{base}" if self.prefix else base

    @property
    def activations(self) -> str:
        return self.name(ACTIVATIONS)

    @property
    def execution_starts(self) -> str:
        return self.name(EXECUTION_STARTS)

    @property
    def execution_events(self) -> str:
        return self.name(EXECUTION_EVENTS)

    @property
    def activation_outcomes(self) -> str:
        return self.name(ACTIVATION_OUTCOMES)

    @property
    def flow_registry(self) -> str:
        return self.name(FLOW_REGISTRY)

    @property
    def auth_events(self) -> str:
        return self.name(AUTH_EVENTS)

    @property
    def dead_letters(self) -> str:
        return self.name(DEAD_LETTERS)

    @property
    def quota_usage(self) -> str:
        return self.name(QUOTA_USAGE)

    @property
    def activation_refusals(self) -> str:
        return self.name(ACTIVATION_REFUSALS)


def bootstrap_servers(value: str) -> list[str]:
    """`host:port,host:port` as the list FastStream's broker takes (given one string, it
    would try the whole as a single address)."""
    return [server.strip() for server in value.split(",") if server.strip()]
