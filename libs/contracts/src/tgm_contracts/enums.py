"""Closed vocabularies shared by every service."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Service(StrEnum):
    """The six services. The value is the subject token and the database suffix."""

    GATEWAY = "gateway"
    TG_SESSION = "tg-session"
    CAMPAIGN = "campaign"
    AI = "ai"
    ANALYTICS = "analytics"
    #: Tailchat bot apps (issue 15): a channel beside Telegram, not part of the seed's catalogue.
    TAILCHAT = "tailchat"

    @property
    def database(self) -> str:
        return "tgm_" + self.value.replace("tg-", "").replace("-", "_")


#: Services that run behind the gateway and answer the `sys` fan-out.
BACKEND_SERVICES: tuple[Service, ...] = (
    Service.TG_SESSION,
    Service.CAMPAIGN,
    Service.AI,
    Service.ANALYTICS,
    Service.TAILCHAT,
)


class Domain(StrEnum):
    """The seed's nine sections, and `channels` (messaging platforms beside Telegram; not seed commands)."""

    ACCOUNT = "account"
    MESSAGING = "messaging"
    AUTOMATION = "automation"
    AI = "ai"
    CONTACTS = "contacts"
    SYSTEM = "system"
    MULTI_ROLE = "multi_role"
    ADS = "ads"
    ANALYTICS = "analytics"
    CHANNELS = "channels"


class Role(IntEnum):
    """API-key roles, ordered: a key may call any command whose least role is at or below its own."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Role) -> Role:
        if isinstance(value, Role):
            return value
        if isinstance(value, int):
            return cls(value)
        return cls[value.upper()]


class ErrorCode(StrEnum):
    """Every error a caller can see. HTTP statuses are chosen by the gateway from this code."""

    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    FLOOD_WAIT = "FLOOD_WAIT"
    TELEGRAM_ERROR = "TELEGRAM_ERROR"
    #: What a person typed into a login step was refused: a wrong or expired code, a wrong 2FA
    #: password, a phone number without an account (`details.telegramError`; `details.restart` when
    #: `login-account` must start again). The caller's input, not a failure of Telegram or of ours.
    LOGIN_REJECTED = "LOGIN_REJECTED"
    #: An upstream service (an AI provider) rejected the key TG-Matrix holds for it: not the caller's key.
    UPSTREAM_AUTH = "UPSTREAM_AUTH"
    UNAVAILABLE = "UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"


#: HTTP status the gateway answers for each error code.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.VALIDATION_ERROR: 422,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.FLOOD_WAIT: 429,
    ErrorCode.TELEGRAM_ERROR: 502,
    ErrorCode.LOGIN_REJECTED: 400,
    ErrorCode.UPSTREAM_AUTH: 502,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INTERNAL: 500,
}
