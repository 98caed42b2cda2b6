"""The settings document: one section per concern, each owned (stored, versioned) by one service.

`get-settings` gathers every section from its owner; `save-settings` validates a partial document
here, at the gateway, and sends each section to its owner. Defaults are conservative on purpose:
an operator who never opens the settings screen must not get an account limited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

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


def _hhmm(v: str | None) -> str | None:
    if v is None:
        return v
    hh, mm = v.split(":")
    if int(hh) > 23 or int(mm) > 59:
        raise ValueError(f"{v!r} is not a time of day HH:MM")
    return v


def _zone(v: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Taipei)") from None
    return v


class PacingSettings(SettingsModel):
    """Send limits the scheduler enforces before every dispatch (ARCHITECTURE.md section 7).

    Every limit is checked per dispatch and all must allow it. Windows slide (they are not calendar
    buckets), so a cap cannot be spent twice across a boundary; `safetyMarginSeconds` widens every
    window and every Telegram wait, so clock skew and transit time never push a send over a limit.
    Defaults sit below Telegram's observed limits on purpose: an operator who never opens this screen
    must not get an account limited. See services/campaign/README.md for the reasoning per value.
    """

    per_account_per_minute: int = Field(
        20, ge=1, le=60, description="Messages one account sends in any 60 s (Telegram tolerates ~30)."
    )
    per_account_per_hour: int = Field(
        200, ge=1, le=2000, description="Messages one account sends in any hour."
    )
    per_account_daily_non_contacts: int = Field(
        20,
        ge=0,
        le=1000,
        description="Messages one account sends in any 24 h to users who are not in a conversation with it "
        "(never wrote to it): what Telegram answers PEER_FLOOD for. 0 forbids cold messages.",
    )
    per_chat_min_interval_seconds: float = Field(
        1.0, ge=0.0, le=3600, description="Gap between two messages of one account into one chat."
    )
    per_group_per_minute: int = Field(
        18, ge=1, le=60, description="Messages one account posts in one group in any 60 s (Telegram: ~20)."
    )
    per_api_credential_per_second: float = Field(
        10.0, gt=0, le=100, description="Sends of all accounts sharing one API id, per second."
    )
    global_per_second: float = Field(25.0, gt=0, le=1000, description="Sends of the whole fleet per second.")
    jitter_min_seconds: float = Field(
        2.0, ge=0, le=600, description="Random human-like gap between two sends of one account: lower bound."
    )
    jitter_max_seconds: float = Field(8.0, ge=0, le=3600, description="Upper bound of that gap.")
    quiet_hours_start: str | None = Field(
        "01:00", pattern=r"^\d{2}:\d{2}$", description="No queued sends from here (account's local time)."
    )
    quiet_hours_end: str | None = Field("07:00", pattern=r"^\d{2}:\d{2}$", description="…until here.")
    timezone: str = Field("Asia/Taipei", description="IANA zone of the accounts' local time (quiet hours).")
    account_timezones: dict[str, str] = Field(
        default_factory=dict, description="Per-account zone overrides: account id -> IANA zone."
    )
    peer_flood_cooldown_hours: float = Field(24.0, ge=0.1, le=720)
    per_account_max_in_flight: int = Field(
        1,
        ge=1,
        le=20,
        description="Sends of one account under way at once. 1 (a person types one message at a time) also "
        "means a FLOOD_WAIT stops the very next send; raise it only when the send call is slow.",
    )
    warmup_days: int = Field(
        7,
        ge=0,
        le=60,
        description="New accounts ramp their daily non-contact cap up over these days (cap·(day+1)/(days+1)).",
    )
    safety_margin_seconds: float = Field(
        1.0, ge=0, le=60, description="Added to every window and every FLOOD_WAIT Telegram asks for."
    )
    retry_base_seconds: float = Field(
        10.0, ge=1, le=3600, description="Backoff after a failed attempt: base·2^(attempt-1)."
    )
    retry_max_seconds: float = Field(300.0, ge=1, le=86400)

    @field_validator("jitter_max_seconds")
    @classmethod
    def _jitter_order(cls, v: float, info: ValidationInfo) -> float:
        lo = info.data.get("jitter_min_seconds", 0.0)
        if v < lo:
            raise ValueError("jitterMaxSeconds must be >= jitterMinSeconds")
        return v

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _time_of_day(cls, v: str | None) -> str | None:
        return _hhmm(v)

    @model_validator(mode="after")
    def _quiet_pair(self) -> PacingSettings:
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            raise ValueError("give both quietHoursStart and quietHoursEnd, or neither")
        return self

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _zone(v)

    @field_validator("account_timezones")
    @classmethod
    def _account_tz(cls, v: dict[str, str]) -> dict[str, str]:
        for zone in v.values():
            _zone(zone)
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
    """Opt-out and per-recipient rules enforced before any send (at enqueue and again at dispatch).

    A private message whose text contains a stop word opts its writer out of every account's sends.
    Latin-script stop words match whole words or phrases, case-insensitively ("stop" matches "STOP!"
    but not "unstoppable"); Chinese ones match anywhere in the text.
    """

    stop_words: list[str] = Field(default_factory=lambda: list(DEFAULT_STOP_WORDS), max_length=500)
    per_recipient_daily_cap: int = Field(
        3, ge=1, le=100, description="Messages the whole fleet sends one user in any 24 h."
    )
    per_recipient_total_cap: int = Field(20, ge=1, le=10000, description="…and ever.")
    trigger_cooldown_seconds: int = Field(600, ge=0, le=86400, description="Per user and trigger rule.")

    @field_validator("stop_words")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        cleaned = [w.strip() for w in v]
        if any(not w or len(w) > 100 for w in cleaned):
            raise ValueError("stop words are 1 to 100 characters, not blank")
        return list(dict.fromkeys(cleaned))


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
