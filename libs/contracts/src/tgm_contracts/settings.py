"""The settings document: one section per concern, each owned (stored, versioned) by one service.

`get-settings` gathers every section from its owner; `save-settings` validates a partial document
here, at the gateway, and sends each section to its owner. Defaults are conservative on purpose:
an operator who never opens the settings screen must not get an account limited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from .base import Response, WireModel
from .enums import Service


class SettingsModel(WireModel):
    model_config = {"extra": "forbid"}


class GeneralSettings(SettingsModel):
    """Console-wide preferences."""

    language: Literal["zh-TW", "zh-CN", "en"] = "zh-TW"
    timezone: str = Field("Asia/Taipei", description="IANA zone for reports and quiet hours.")
    command_timeout_seconds: float = Field(10.0, gt=0, le=300, description="Gateway deadline for a command.")


class TelegramSettings(SettingsModel):
    """How tg-session connects accounts (ARCHITECTURE.md section 6)."""

    max_accounts_per_proxy: int = Field(3, ge=1, le=50)
    require_proxy: bool = False
    replica_capacity: int = Field(
        500, ge=1, le=5000, description="Accounts one tg-session replica holds at most."
    )
    reconnect_backoff_max_seconds: float = Field(300, ge=5, le=3600)
    device_model: str = "TG-Matrix"
    system_version: str = "1.0"
    app_version: str = "1.0"
    lang_code: str = "en"


class PacingSettings(SettingsModel):
    """Send limits the scheduler enforces before every dispatch (ARCHITECTURE.md section 7)."""

    per_account_per_minute: int = Field(20, ge=1, le=60)
    per_account_per_hour: int = Field(200, ge=1, le=2000)
    per_account_daily_non_contacts: int = Field(50, ge=0, le=1000)
    per_chat_min_interval_seconds: float = Field(1.0, ge=0.0, le=3600)
    per_group_per_minute: int = Field(20, ge=1, le=60)
    per_api_credential_per_second: float = Field(10.0, gt=0, le=100)
    global_per_second: float = Field(25.0, gt=0, le=1000)
    jitter_min_seconds: float = Field(2.0, ge=0, le=600)
    jitter_max_seconds: float = Field(8.0, ge=0, le=3600)
    quiet_hours_start: str | None = Field("01:00", pattern=r"^\d{2}:\d{2}$")
    quiet_hours_end: str | None = Field("07:00", pattern=r"^\d{2}:\d{2}$")
    peer_flood_cooldown_hours: float = Field(24.0, ge=0.1, le=720)
    warmup_days: int = Field(
        7, ge=0, le=60, description="New accounts ramp their daily cap up over these days."
    )

    @field_validator("jitter_max_seconds")
    @classmethod
    def _jitter_order(cls, v: float, info: ValidationInfo) -> float:
        lo = info.data.get("jitter_min_seconds", 0.0)
        if v < lo:
            raise ValueError("jitterMaxSeconds must be >= jitterMinSeconds")
        return v


DEFAULT_STOP_WORDS: list[str] = [
    "stop",
    "unsubscribe",
    "opt out",
    "optout",
    "do not contact",
    "remove me",
    "退訂",
    "退订",
    "取消訂閱",
    "取消订阅",
    "不要再發",
    "不要再发",
    "停止",
    "別再發",
    "别再发",
]


class ComplianceSettings(SettingsModel):
    """Opt-out and per-recipient rules enforced before any send."""

    stop_words: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP_WORDS))
    per_recipient_daily_cap: int = Field(3, ge=1, le=100)
    per_recipient_total_cap: int = Field(20, ge=1, le=10000)
    trigger_cooldown_seconds: int = Field(600, ge=0, le=86400, description="Per user and trigger rule.")


class AiDefaults(SettingsModel):
    """Fleet-wide AI behaviour; provider credentials live in `save-ai-settings`."""

    auto_reply: bool = False
    handoff_confidence_below: float = Field(0.35, ge=0, le=1)
    max_reply_chars: int = Field(800, ge=20, le=4000)


class AnalyticsSettings(SettingsModel):
    log_retention_days: int = Field(30, ge=1, le=3650)
    event_retention_days: int = Field(90, ge=1, le=3650)
    alert_flood_waits_per_hour: int = Field(10, ge=1, le=10000)


#: section name -> (owner, model). The gateway and the owners read this table; nobody else.
SETTINGS_SECTIONS: dict[str, tuple[Service, type[SettingsModel]]] = {
    "general": (Service.GATEWAY, GeneralSettings),
    "telegram": (Service.TG_SESSION, TelegramSettings),
    "pacing": (Service.CAMPAIGN, PacingSettings),
    "compliance": (Service.CAMPAIGN, ComplianceSettings),
    "ai": (Service.AI, AiDefaults),
    "analytics": (Service.ANALYTICS, AnalyticsSettings),
}


def sections_of(service: Service) -> dict[str, type[SettingsModel]]:
    return {name: model for name, (owner, model) in SETTINGS_SECTIONS.items() if owner is service}


class SettingsSection(Response):
    section: str
    owner: Service
    version: int = Field(0, description="Increments on every save; 0 means never saved (defaults).")
    values: dict
    updated_at: datetime | None = None
