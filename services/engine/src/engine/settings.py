"""Engine settings, from HOOKFLOW_ENGINE_* environment variables."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.server import ServerSettings


class Settings(ServerSettings, BaseSettings):
    """Everything the engine can be configured with; built once in `app.py`."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKFLOW_ENGINE_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8081
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices(
            "HOOKFLOW_ENGINE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    mongodb_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27217/"),
        validation_alias=AliasChoices("HOOKFLOW_ENGINE_MONGODB_URL", "MONGODB_URL"),
    )
    database: str = "hookflow_engine"
    # the management API's admin key; unset: only FlowAdmin/FlowViewer user-tokens
    admin_key: SecretStr | None = None
    # shared with the gateway: a `user` on an activation is trusted only with its signature
    activation_key: SecretStr | None = None
    topic_prefix: str = "hookflow"
    consumer_group: str = "engine"
    # how often the system figures (GET /api/automation/system) are read from Kafka
    system_sample_seconds: float = Field(default=5.0, gt=0)
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)  # records per batch
    consumer_batch_timeout_ms: int = Field(default=20, ge=0)  # a poll waits this long for a record
    # how long a batch's events and outcomes wait to be sent together (librdkafka's linger)
    producer_linger_ms: float = Field(default=1.0, ge=0, le=100)
    consumer_concurrency: int = Field(default=128, ge=1, le=256)  # keys handled at once
    consumer_depth: int = Field(default=4, ge=1, le=64)  # batches handled at once
    # bytes fetched per partition at a time (consumers.ConsumerConfig.fetch_bytes)
    consumer_fetch_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    consumer_attempts: int = Field(default=5, ge=1)  # tries of a record, then a dead letter
    topic_partitions: int = Field(default=6, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)  # 3 on a real cluster
    public_url: str = "http://127.0.0.1:8080"  # the gateway, as callers reach it
    auth_url: str = "http://127.0.0.1:8082"
    auth_timeout_seconds: float = 5.0
    http_max_response_bytes: int = 1024 * 1024
    # host:port pairs http_request blocks may reach although internal (docs/security.md)
    egress_allow: str = ""
    idempotency_retention_hours: float = 24.0
    # the activation log: each activation's body (data, selector, user) is kept this long
    # (0 keeps none: a privacy setting), the records themselves this long
    activation_body_retention_days: float = Field(default=7.0, ge=0)
    activation_log_retention_days: float = Field(default=30.0, gt=0)
    expression_time_limit_ms: int = Field(default=1000, ge=10)  # per guarded evaluation
    expression_workers: int = Field(default=2, ge=1)  # processes for guarded expressions
    expression_memory_mb: int = Field(default=1024, ge=0)  # per worker; 0: no limit
    timer_interval_ms: int = Field(default=500, ge=10)  # how often due timeouts are fired
    retry_backoff_seconds: float = 0.2  # after a record's first failed try, then doubled
    # the internal credential: what auth's /internal/... routes require of their callers
    # (the engine and the gateways); one secret for the three, HOOKFLOW_INTERNAL_KEY
    internal_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("HOOKFLOW_ENGINE_INTERNAL_KEY", "HOOKFLOW_INTERNAL_KEY"),
    )
    log_format: str = "text"  # or "json"
    log_level: str = "INFO"
