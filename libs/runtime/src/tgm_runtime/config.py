"""Settings every service reads from its environment."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_", extra="ignore")

    #: The NATS server, or a cluster's servers comma-separated (`nats://n0:4222,nats://n1:4222,...`): the
    #: client connects to one of them and, when that one goes away, reconnects to another (nats_servers).
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=AliasChoices("NATS_URL", "TGM_NATS_URL"))
    mongodb_uri: str = Field(
        "mongodb://127.0.0.1:27017/?directConnection=true",
        validation_alias=AliasChoices("MONGODB_URI", "TGM_MONGODB_URI"),
    )
    #: Prefix of database names; the database is `<prefix><service>` (e.g. `tgm_session`).
    database_prefix: str = ""
    data_dir: Path = Path(".tgm")
    master_key: str | None = Field(None, repr=False)
    master_key_file: Path | None = None
    #: Old master keys (base64, comma-separated) still accepted for decryption while secrets rotate.
    previous_master_keys: str | None = Field(None, repr=False)
    #: The key command signatures are made and checked with (busauth.py; base64, 32+ bytes); unset, it
    #: is derived from the master key, which every service of a deployment shares.
    bus_key: str | None = Field(None, repr=False)
    replica_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
    health_host: str = "127.0.0.1"
    #: Port of the service's /healthz, /readyz and /metrics; 0 disables the HTTP side.
    health_port: int = 0
    log_level: str = "INFO"
    #: Copies JetStream keeps of streams, KV buckets and object stores this service creates (3 on a
    #: production cluster; 1 on the embedded single server).
    js_replicas: int = Field(1, ge=1, le=5)
    #: OTLP/HTTP endpoint for traces (e.g. http://127.0.0.1:4318); unset, no span is made (tracing.py).
    otlp_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("TGM_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    #: Share of traces recorded when tracing is on (parent-based: a service follows its caller).
    trace_sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    #: How long stopping waits for background work (each of: periodic rounds, spawned tasks).
    stop_timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("nats_url")
    @classmethod
    def _some_server(cls, v: str) -> str:
        if not [u for u in v.split(",") if u.strip()]:
            raise ValueError(
                "NATS_URL names no server (expected nats://host:port, or several comma-separated)"
            )
        return v

    @property
    def nats_servers(self) -> list[str]:
        """`nats_url` as the client's server pool (nats-py takes a comma-separated string as one
        malformed URL). Given a cluster's one URL, a client learns the others only from that server's
        INFO: started while that server is down, it cannot connect at all."""
        return [u.strip() for u in self.nats_url.split(",") if u.strip()]
