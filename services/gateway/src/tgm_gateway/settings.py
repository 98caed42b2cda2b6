"""Gateway configuration (env prefix TGM_GATEWAY_; NATS_URL, MONGODB_URI and TGM_DATA_DIR shared)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_runtime import RuntimeSettings


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    #: Deadline of a command when its contract names none and the settings document has not changed it.
    command_timeout_seconds: float = Field(10.0, gt=0)
    #: Requests per second a single API key may make, and its burst.
    key_rate_per_second: float = Field(50.0, gt=0)
    key_rate_burst: int = Field(200, ge=1)
    #: How long the gateway waits for every replica to answer a broadcast `sys` op.
    fanout_window_seconds: float = Field(1.0, gt=0)
    #: Print and write the first admin key when the key store is empty.
    bootstrap_admin_key: bool = True
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, exclude=True, description="NATS, database, replica id."
    )
