"""Gateway settings, from HOOKFLOW_GATEWAY_* environment variables."""

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.server import ServerSettings


class Settings(ServerSettings, BaseSettings):
    """Everything the gateway can be configured with; built once in `app.py`."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKFLOW_GATEWAY_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(default=1, ge=1)
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices(
            "HOOKFLOW_GATEWAY_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    topic_prefix: str = "hookflow"
    # `/execute` takes this key or a FlowAdmin user-token; unset: user-tokens only
    admin_key: SecretStr | None = None
    # shared with the engine: it trusts a user only with this key's signature
    activation_key: SecretStr | None = None
    auth_url: str = "http://127.0.0.1:8082"
    auth_timeout_seconds: float = 3.0
    token_cache_size: int = Field(default=10_000, ge=1)
    token_cache_ttl_seconds: float = 60.0
    token_cache_negative_ttl_seconds: float = 5.0
    body_limit_bytes: int = Field(default=1024 * 1024, ge=1)
    body_timeout_seconds: float = 10.0
    publish_timeout_seconds: float = 5.0
    linger_ms: int = 1
    # a partition's pending batch of records (the producer's max_batch_size): once full,
    # each further callback waits until it is sent; the client's 16 KiB held 50 callbacks
    # of a NONE trigger and 20 with a user (a quarter of the USER trigger's throughput)
    kafka_batch_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=1024 * 1024)
    rate_limit_per_second: float = 0.0  # per client address; 0 turns the limit off
    rate_limit_burst: int = 100
    # how often each process tells the others what it admitted of rate-limited triggers
    # (their `rateLimit` is counted across every gateway): the overshoot's bound
    quota_report_seconds: float = Field(default=0.05, gt=0, le=5)
    # the lag guard: callbacks get 429 (code 4292) while the engine is behind by more
    # than this many seconds of arrivals; 0 turns it off
    lag_guard_seconds: float = Field(default=0.0, ge=0)
    lag_guard_interval_seconds: float = Field(default=1.0, gt=0)
    engine_consumer_group: str = "engine"  # whose position the lag guard reads
    # callbacks refused (or dropped by an IGNORE policy) reported to the activation log
    # at most this many a second per process; 0 reports none (`refusals.py`)
    refusal_reports_per_second: float = Field(default=100.0, ge=0)
    # proxies in front of the gateway (addresses or networks, comma-separated) whose
    # X-Forwarded-For is believed; empty: the gateway is the edge
    trusted_proxies: str = ""
    # the one origin: where the paths the engine and auth answer are passed on
    engine_url: str = "http://127.0.0.1:8081"
    upstream_timeout_seconds: float = Field(default=330.0, gt=0)  # above a blocking call's 300
    upstream_connections: int = Field(default=200, ge=1)
    app_id: str = "hookflow"  # what /api/info names the application
    registry_timeout_seconds: float = 60.0
    # the internal credential: what auth's /internal/... routes require of their callers
    # (the engine and the gateways); one secret for the three, HOOKFLOW_INTERNAL_KEY
    internal_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("HOOKFLOW_GATEWAY_INTERNAL_KEY", "HOOKFLOW_INTERNAL_KEY"),
    )
    log_format: str = "text"
    log_level: str = "INFO"
