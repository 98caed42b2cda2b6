"""tg-session's own environment settings (prefix `TGM_SESSION_`).

Where Telegram lives is configuration: leave `TGM_SESSION_DC_HOST` unset in production (Telethon then
uses Telegram's own data centres and keys); point it and `TGM_SESSION_RSA_PUBLIC_KEY_FILE` at the
emulator to run the whole product offline. Operator-facing settings (proxy caps, replica capacity,
device defaults) live in the `telegram` settings section instead, editable at run time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_contracts.streams import ACCOUNT_LEASES
from tgm_runtime import RuntimeSettings


class SessionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_SESSION_", extra="ignore")

    # --- where Telegram is -------------------------------------------------------------------------
    dc_host: str | None = Field(None, description="Data centre address; unset means Telegram's own.")
    dc_port: int = Field(443, ge=1, le=65535)
    dc_id: int = Field(2, ge=1, le=1000)
    rsa_public_key_file: Path | None = Field(
        None, description="PEM of the DC's RSA public key, registered with Telethon at start."
    )

    # --- leases and connections --------------------------------------------------------------------
    lease_ttl_seconds: float = Field(ACCOUNT_LEASES.ttl_seconds or 15.0, gt=1, le=600)
    #: Renewals happen this often; None means a third of the TTL.
    heartbeat_seconds: float | None = Field(None, gt=0.2)
    claim_interval_seconds: float = Field(2.0, gt=0.05, le=60)
    #: Overrides `telegram.replicaCapacity` when set (benchmarks, tests).
    capacity: int | None = Field(None, ge=0, le=100_000)
    connect_concurrency: int = Field(16, ge=1, le=500)
    connect_timeout_seconds: float = Field(20.0, gt=0)
    request_timeout_seconds: float = Field(25.0, gt=0)
    #: Held accounts are probed (a cheap authorised call) this often, to notice revoked sessions.
    probe_interval_seconds: float = Field(120.0, gt=0.1)
    #: Held accounts catch up on missed updates at connect, shortly after live messages, and at
    #: least this often (`fleet/catchup.py`).
    catch_up_interval_seconds: float = Field(60.0, gt=0.1)
    reconnect_backoff_min_seconds: float = Field(1.0, gt=0)
    peer_flood_cooldown_hours: float = Field(24.0, gt=0, le=720)
    #: Telethon's own low-level retries before it reports a disconnect to us.
    connection_retries: int = Field(2, ge=0, le=20)

    # --- background jobs ---------------------------------------------------------------------------
    extraction_page_size: int = Field(200, ge=1, le=200)
    extraction_page_delay_seconds: float = Field(1.0, ge=0, le=600)
    worker_interval_seconds: float = Field(1.0, gt=0.05, le=60)
    qr_poll_seconds: float = Field(1.0, gt=0.05, le=30)
    scrape_code_timeout_seconds: float = Field(300.0, gt=1)

    # --- outside HTTP ------------------------------------------------------------------------------
    devsite_url: str = Field("https://my.telegram.org", description="Telegram's developer site.")
    ip_echo_url: str = Field(
        "https://api.ipify.org", description="Answers the caller's public IP as plain text (exit-IP checks)."
    )

    # --- a credential to seed the pool with --------------------------------------------------------
    api_id: int | None = Field(None, ge=1)
    api_hash: SecretStr | None = Field(None, repr=False)

    # --- the runtime's own (NATS, database, replica id) ----------------------------------------------
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings, exclude=True)

    @property
    def heartbeat(self) -> float:
        return self.heartbeat_seconds or self.lease_ttl_seconds / 3
