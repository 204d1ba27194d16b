"""Auth settings, from HOOKFLOW_AUTH_* environment variables."""

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.server import ServerSettings


class Settings(ServerSettings, BaseSettings):
    """Everything the auth service can be configured with; built once in `app.py`."""

    model_config = SettingsConfigDict(
        env_prefix="HOOKFLOW_AUTH_", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = 8082
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices(
            "HOOKFLOW_AUTH_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    mongodb_url: SecretStr = Field(
        default=SecretStr("mongodb://127.0.0.1:27217/"),
        validation_alias=AliasChoices("HOOKFLOW_AUTH_MONGODB_URL", "MONGODB_URL"),
    )
    database: str = "hookflow_auth"
    topic_prefix: str = "hookflow"
    admin_key: SecretStr | None = None  # unset: the admin endpoints answer 403
    token_ttl_days: float = 30.0
    purge_interval_seconds: float = 3600.0
    # failed logins of one account from one address: free, then delays that double
    login_backoff_free: int = Field(default=3, ge=1)
    login_backoff_base_seconds: float = 1.0
    login_backoff_max_seconds: float = 900.0
    login_limit_per_address: int = 100  # login attempts per address, whatever the account
    login_window_seconds: float = 60.0
    register_limit_per_address: int = 10  # registrations per address per window
    register_window_seconds: float = 3600.0
    # "open": anyone may register; "admin": registration needs the admin key
    registration: Literal["open", "admin"] = "open"
    password_hashes_at_once: int = Field(default=4, ge=1)  # 64 MiB of memory each
    # proxies in front of auth (addresses or networks, comma-separated: the gateway, an
    # Ingress) whose X-Forwarded-For is believed; empty: auth takes the peer's address
    trusted_proxies: str = ""
    body_limit_bytes: int = 64 * 1024
    # the internal credential: what auth's /internal/... routes require of their callers
    # (the engine and the gateways); one secret for the three, HOOKFLOW_INTERNAL_KEY
    internal_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("HOOKFLOW_AUTH_INTERNAL_KEY", "HOOKFLOW_INTERNAL_KEY"),
    )
    log_format: str = "text"
    log_level: str = "INFO"
