"""Real adapters of the engine's ports: Kafka publisher, HTTP blocks, auth introspection."""

from engine.adapters.auth_tokens import AuthServiceTokens
from engine.adapters.expression_workers import ExpressionWorkers
from engine.adapters.http_runner import HttpxRunner
from engine.adapters.kafka_publisher import KafkaPublisher

__all__ = ["AuthServiceTokens", "ExpressionWorkers", "HttpxRunner", "KafkaPublisher"]
