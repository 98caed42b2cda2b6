"""Gateway configuration (env prefix TGM_GATEWAY_; NATS_URL, MONGODB_URI and TGM_DATA_DIR shared)."""

from __future__ import annotations

from pathlib import Path

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
    #: How often the gateway asks which services are up (presence.py: the catalogue's `unserved`).
    presence_seconds: float = Field(5.0, gt=0, le=300)
    #: Largest request body (HTTP) or WebSocket text frame, in bytes. The largest legitimate command is a
    #: document upload to `rag-add-document` (a 5 MB PDF is about 6.8 MB as base64); 16 MiB leaves room
    #: and matches uvicorn's own WebSocket frame limit. A body under this limit that is still larger than
    #: the bus carries (NATS max_payload, 8 MB in the stack) is refused when it is sent (bus.py).
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    #: Deepest nesting of arrays and objects accepted in a body (the payload object itself is level 1).
    max_json_depth: int = Field(64, ge=2, le=500)
    #: Largest body of a channel callback (Tailchat's, unauthenticated but for the URL's token): its
    #: callbacks are a few hundred bytes, so the cap is far below `max_body_bytes`.
    callback_max_body_bytes: int = Field(64 * 1024, ge=1024)
    #: How long a looked-up key is trusted before it is read again (revocation reaches every replica
    #: and every open WebSocket within this), and how long an unknown key id is remembered as unknown.
    key_cache_seconds: float = Field(1.0, gt=0)
    key_miss_cache_seconds: float = Field(10.0, gt=0)
    #: Most key ids remembered (found or not); the least recently used is forgotten first.
    key_cache_entries: int = Field(10_000, ge=10)
    #: Failed authentications (a key that does not authenticate) per client address: a burst, then
    #: this many per second; beyond it the address gets 429 without any key lookup.
    failed_auth_burst: int = Field(20, ge=1)
    failed_auth_per_second: float = Field(1.0, gt=0)
    #: How often an open WebSocket checks that its key still authenticates.
    ws_key_check_seconds: float = Field(1.0, gt=0)
    #: The audit trail (audit/service.py): how long an entry is kept, and how often what was recorded
    #: is written (a gateway killed in between loses at most that much of the trail).
    audit_retention_days: int = Field(90, ge=1, le=3650)
    audit_flush_seconds: float = Field(0.5, gt=0, le=60)
    #: The largest export `GET /api/v1/exports/...` serves (exports/handlers.py), in bytes.
    export_max_bytes: int = Field(1024 * 1024 * 1024, ge=1024)
    #: The largest file `POST /api/v1/uploads` takes (uploads/handlers.py), in bytes: by default the
    #: largest document ai reads (30 MiB).
    upload_max_bytes: int = Field(30 * 1024 * 1024, ge=1024)
    #: Print and write the first admin key when the key store is empty.
    bootstrap_admin_key: bool = True
    #: The first admin key's file (TGM_ADMIN_KEY_FILE; created once with a new key when missing). Unset:
    #: a first start writes `<TGM_DATA_DIR>/admin.key` instead (keys/service.py).
    admin_key_file: Path | None = Field(None, validation_alias="TGM_ADMIN_KEY_FILE")
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, exclude=True, description="NATS, database, replica id."
    )
