"""Events tg-session publishes on TGM_EVENTS (`tgm.tg-session.evt.<name>.v1`).

Login steps, account health, leases and flood waits, inbound Telegram updates (messages, edits,
joins), outbound sends, extraction progress and credential scrapes. The gateway pushes them to
WebSocket subscribers; campaign, ai and analytics consume them. No event carries a secret: no session,
hash, password or login code, and no QR image (clients render `qrUrl` or call qr-login-status).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from .enums import Service
from .events import Event
from .models.session import (
    AccountRole,
    AccountState,
    ChatKind,
    CodeType,
    CredentialScrapeState,
    ExtractionState,
    LoginMethod,
    QrLoginState,
    TelegramProfile,
    TelegramUser,
)

TS = Service.TG_SESSION


# --- accounts and health -------------------------------------------------------------------------


class AccountAdded(Event):
    """An account joined the fleet, in state `new`.

    `new` is an account's first state, so every `account-status-changed` of the account is newer than
    its `account-added`, whichever of the two arrives first: consumers never let `account-added` reset
    a state they already hold (a QR login creates the account and makes it `active` within the same
    step; analytics' account projection relies on this rule, not on arrival order)."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "account-added"

    account_id: str
    phone: str
    label: str | None = None
    role: AccountRole = AccountRole.UNASSIGNED
    group: str | None = None


class AccountRemoved(Event):
    """The account left the fleet: consumers drop its pending work."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "account-removed"

    account_id: str
    phone: str
    logged_out: bool = False


class AccountStatusChanged(Event):
    """The health state machine moved. `unauthorized`, `banned`, `frozen` and `peer_flood` are the states
    analytics raises alerts for."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "account-status-changed"

    account_id: str
    phone: str | None = None
    state: AccountState
    previous_state: AccountState | None = None
    reason: str | None = Field(
        None, description="The Telegram error or condition, e.g. AUTH_KEY_UNREGISTERED."
    )
    flood_wait_until: datetime | None = None
    cooldown_until: datetime | None = None
    holder: str | None = Field(None, description="The replica that saw the change.")
    state_at: datetime | None = Field(
        None,
        description=(
            "When tg-session recorded the change (the account's `stateChangedAt`): of two changes of one "
            "account, the one with the later `stateAt` is the current state, whatever the arrival order. "
            "Absent from older publishers: consumers fall back to `occurredAt`."
        ),
    )


class FloodWaitRecorded(Event):
    """Telegram asked an account to wait; the account is not slept, the wait is recorded as data."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "flood-wait-recorded"

    account_id: str
    seconds: int = Field(ge=0)
    until: datetime
    category: str = Field(
        description="Method category the wait applies to: send, join, resolve, search, login…"
    )
    method: str | None = Field(None, description="The Telegram method, e.g. messages.SendMessage.")
    job_id: str | None = None
    premium_wait: bool = Field(False, description="FLOOD_PREMIUM_WAIT rather than FLOOD_WAIT.")


class LeaseMoved(Event):
    """Which replica holds an account changed."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "lease-moved"

    account_id: str
    from_replica: str | None = None
    to_replica: str | None = None
    reason: Literal["acquired", "expired", "released", "rebalanced", "takeover"]


# --- login ---------------------------------------------------------------------------------------


class LoginCodeSent(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "login-code-sent"

    account_id: str
    phone: str
    code_type: CodeType = "unknown"
    next_code_type: CodeType | None = None
    code_length: int | None = None
    resend_after_seconds: int | None = None
    resent: bool = False


class LoginPasswordNeeded(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "login-password-needed"

    account_id: str | None = None
    phone: str | None = None
    method: LoginMethod = "code"
    qr_session_id: str | None = None
    password_hint: str | None = None


class QrLoginUpdated(Event):
    """A QR login moved on: refreshed token, scanned, needs password, succeeded, expired, cancelled, failed."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "qr-login-updated"

    session_id: str
    state: QrLoginState
    qr_url: str | None = Field(None, description="The current `tg://login?token=…` while pending.")
    expires_at: datetime | None = None
    account_id: str | None = None
    phone: str | None = None
    error: str | None = None


class AccountLoggedIn(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "account-logged-in"

    account_id: str
    phone: str
    method: LoginMethod
    profile: TelegramProfile = Field(default_factory=TelegramProfile)
    new_account: bool = Field(False, description="A QR login created the account.")


class LoginFailed(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "login-failed"

    account_id: str | None = None
    phone: str | None = None
    method: LoginMethod
    qr_session_id: str | None = None
    error: str = Field(description="The Telegram error name or our reason, e.g. PHONE_CODE_EXPIRED.")
    message: str
    retry_after: float | None = None
    recoverable: bool = Field(True, description="False when the login must start over (or cannot succeed).")


# --- inbound and outbound messages ---------------------------------------------------------------


class MessageReceived(Event):
    """A new message in a private chat or in a group or channel one of our accounts is in.

    `chatId` is the conversation (the other user's id in a private chat); `senderId` is who wrote it."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "message-received"

    account_id: str
    chat_kind: ChatKind
    chat_id: int
    chat_title: str | None = None
    chat_username: str | None = None
    message_id: int
    sender_id: int | None = Field(None, description="Null for anonymous channel posts.")
    sender: TelegramUser | None = None
    text: str = ""
    date: datetime
    reply_to_message_id: int | None = None
    media_kind: (
        Literal[
            "photo", "video", "document", "audio", "voice", "sticker", "contact", "location", "poll", "other"
        ]
        | None
    ) = None
    mentioned: bool = Field(False, description="The message mentions or replies to our account.")
    is_outgoing: bool = Field(False, description="Written by our account from another device.")
    forwarded: bool = False
    grouped_id: int | None = None


class MessageEdited(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "message-edited"

    account_id: str
    chat_kind: ChatKind
    chat_id: int
    message_id: int
    sender_id: int | None = None
    text: str = ""
    edit_date: datetime


class MessageSent(Event):
    """An account delivered a message (through the `send` call, or typed elsewhere and seen by us)."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "message-sent"

    account_id: str
    job_id: str | None = None
    chat_kind: ChatKind
    chat_id: int
    message_id: int
    text: str = ""
    has_media: bool = False
    reply_to_message_id: int | None = None
    sent_at: datetime
    origin: Literal["rpc", "command", "external"] = "rpc"


class MessageSendFailed(Event):
    """A `send` was refused: analytics counts failures by error, campaign already has the reply."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "message-send-failed"

    account_id: str
    job_id: str | None = None
    peer: str
    error_code: str = Field(description="An ErrorCode value: FLOOD_WAIT, TELEGRAM_ERROR, NOT_FOUND…")
    telegram_error: str | None = Field(None, description="E.g. PEER_FLOOD, USER_PRIVACY_RESTRICTED.")
    retry_after: float | None = None


class MemberJoined(Event):
    """Someone joined a group one of our accounts is in (seen by that account)."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "member-joined"

    account_id: str
    chat_id: int
    chat_title: str | None = None
    user: TelegramUser
    inviter_id: int | None = None
    via: Literal["join", "invite", "link", "request_approved", "unknown"] = "unknown"
    joined_at: datetime


class GroupJoined(Event):
    """One of our accounts joined a group or channel."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "group-joined"

    account_id: str
    chat_id: int
    chat_kind: ChatKind
    title: str
    username: str | None = None
    members_count: int | None = None


class GroupLeft(Event):
    """One of our accounts left (or was removed from) a group or channel."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "group-left"

    account_id: str
    chat_id: int
    kicked: bool = False


# --- background jobs -----------------------------------------------------------------------------


class ExtractionProgress(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "extraction-progress"

    job_id: str
    account_id: str
    chat_id: int | None = None
    progress: float = Field(ge=0, le=1)
    scanned: int
    collected: int
    skipped: int = 0
    total_estimate: int | None = None


class ExtractionFinished(Event):
    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "extraction-finished"

    job_id: str
    account_id: str
    chat_id: int | None = None
    chat_title: str | None = None
    state: ExtractionState = Field(description="completed, failed or cancelled.")
    scanned: int
    collected: int
    error: str | None = None
    duration_seconds: float


class CredentialScrapeUpdated(Event):
    """A credential scrape moved on; `waiting_code` with `codeSource: manual` asks for credential-submit-code."""

    OWNER: ClassVar[Service] = TS
    NAME: ClassVar[str] = "credential-scrape-updated"

    scrape_id: str
    account_id: str
    phone: str
    state: CredentialScrapeState
    code_source: Literal["auto", "manual"] = "auto"
    api_id: int | None = None
    credential_id: str | None = None
    error: str | None = None


__all__ = [
    "AccountAdded",
    "AccountLoggedIn",
    "AccountRemoved",
    "AccountStatusChanged",
    "CredentialScrapeUpdated",
    "ExtractionFinished",
    "ExtractionProgress",
    "FloodWaitRecorded",
    "GroupJoined",
    "GroupLeft",
    "LeaseMoved",
    "LoginCodeSent",
    "LoginFailed",
    "LoginPasswordNeeded",
    "MemberJoined",
    "MessageEdited",
    "MessageReceived",
    "MessageSendFailed",
    "MessageSent",
    "QrLoginUpdated",
]
