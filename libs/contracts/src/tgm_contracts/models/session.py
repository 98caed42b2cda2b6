"""Shared models of tg-session: accounts and their health, proxies, API credentials, IP bindings,
chats, member extraction and collected users.

Secrets (proxy passwords, MTProxy secrets, API hashes, 2FA passwords, login codes) only ever appear in
*request* models, typed as `WriteOnlySecret`: `repr()` and `str()` mask them and validation errors hide
their input, but the JSON wire form carries the value, because a request has to reach its owner. No
view or event carries a secret: views say `hasPassword`, `apiHashMasked` and the like.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    field_validator,
    model_validator,
)

from ..base import Request, Response

# --- secrets -------------------------------------------------------------------------------------


def _reveal(value: SecretStr) -> str:
    return value.get_secret_value()


def write_only_secret(
    *,
    min_length: int = 1,
    max_length: int = 256,
    pattern: str | None = None,
    normalize: Callable[[str], str] | None = None,
    what: str = "value",
) -> Any:
    """A `SecretStr` checked without echoing it, masked in repr, written in clear on the wire."""

    compiled = re.compile(pattern) if pattern else None

    def check(value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if normalize is not None:
            raw = normalize(raw)
        if len(raw) < min_length:
            raise ValueError(f"{what} must have at least {min_length} characters")
        if len(raw) > max_length:
            raise ValueError(f"{what} must have at most {max_length} characters")
        if compiled is not None and not compiled.fullmatch(raw):
            # The message describes the expected form; it never quotes the secret.
            raise ValueError(f"{what} is not in the expected form")
        return SecretStr(raw)

    return Annotated[
        SecretStr,
        AfterValidator(check),
        PlainSerializer(_reveal, return_type=str, when_used="json"),
        Field(json_schema_extra={"writeOnly": True}),
    ]


WriteOnlySecret = write_only_secret()
TwoFactorPassword = write_only_secret(max_length=256, what="password")
ApiHash = write_only_secret(
    pattern=r"[0-9a-f]{32}", normalize=lambda s: s.strip().lower(), what="apiHash (32 hexadecimal characters)"
)
LoginCode = write_only_secret(
    min_length=3,
    max_length=10,
    pattern=r"[0-9]+",
    normalize=lambda s: re.sub(r"[\s-]", "", s),
    what="login code (digits)",
)


class SecretRequest(Request):
    """A request that carries a secret: validation errors never include the input."""

    model_config = ConfigDict(hide_input_in_errors=True)


def mask_secret(value: str | None, keep: int = 4) -> str | None:
    """`********1a2b`: enough to tell two secrets apart, never enough to use one."""
    if not value:
        return None
    tail = value[-keep:] if len(value) > keep * 2 else ""
    return "*" * 8 + tail


# --- identifiers ---------------------------------------------------------------------------------


def _normalize_phone(value: Any) -> Any:
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str):
        value = re.sub(r"[\s().-]", "", value)
        if value.startswith("00"):
            value = "+" + value[2:]
        if value and not value.startswith("+"):
            value = "+" + value
    return value


Phone = Annotated[
    str,
    BeforeValidator(_normalize_phone),
    Field(
        pattern=r"^\+[1-9][0-9]{4,15}$",
        description="International phone number; spaces, dashes and brackets are dropped, `+` is added.",
        examples=["+886912345678"],
    ),
]

AccountId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
"""Account ids are subject tokens (`tgm.acct.<id>.…`), so no dots, spaces or wildcards."""

AccountIds = Annotated[
    list[AccountId],
    AfterValidator(lambda ids: list(dict.fromkeys(ids))),
    Field(min_length=1, max_length=1000, description="Account ids; duplicates are ignored."),
]

Label = Annotated[str, Field(min_length=1, max_length=64)]
TagName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[^\s,][^,]*$")]
GroupName = Annotated[str, Field(min_length=1, max_length=64)]
Color = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="`#RRGGBB`.")]

_USERNAME = re.compile(r"@?([A-Za-z][A-Za-z0-9_]{3,31})")
_TME = re.compile(r"(?:https?://)?(?:t\.me|telegram\.me|telegram\.dog)/(.+)", re.IGNORECASE)
_INVITE_HASH = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _peer_or_chat(value: Any, *, allow_phone: bool, allow_invite: bool) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an id, a username or a link")
    if isinstance(value, int):
        if value == 0:
            raise ValueError("0 is not a Telegram id")
        return value
    if not isinstance(value, str):
        raise ValueError("must be an id, a username or a link")
    text = value.strip()
    if re.fullmatch(r"-?[0-9]{1,20}", text):
        number = int(text)
        if number == 0:
            raise ValueError("0 is not a Telegram id")
        return number
    if allow_phone and text.startswith("+") and re.fullmatch(r"\+[0-9\s()-]{5,24}", text):
        return _normalize_phone(text)
    if allow_invite and text.startswith("+") and _INVITE_HASH.fullmatch(text[1:]):
        return text
    link = _TME.fullmatch(text)
    if link:
        path = link.group(1).rstrip("/")
        if allow_invite and (
            (path.startswith("+") and _INVITE_HASH.fullmatch(path[1:]))
            or (path.startswith("joinchat/") and _INVITE_HASH.fullmatch(path[9:]))
        ):
            return "+" + path.removeprefix("+").removeprefix("joinchat/")
        name = path.split("/", 1)[0].split("?", 1)[0]
        if _USERNAME.fullmatch(name):
            return "@" + name
        raise ValueError("not a t.me link to a username" + (" or an invite" if allow_invite else ""))
    if _USERNAME.fullmatch(text):
        return "@" + text.removeprefix("@")
    if allow_invite and _INVITE_HASH.fullmatch(text):  # a bare invite hash no username could be
        return "+" + text
    kinds = "a numeric id, @username, t.me link"
    if allow_phone:
        kinds += ", +phone"
    if allow_invite:
        kinds += ", invite link or +hash"
    raise ValueError(f"must be {kinds}")


PeerRef = Annotated[
    int | str,
    BeforeValidator(lambda v: _peer_or_chat(v, allow_phone=True, allow_invite=False)),
    Field(
        description="Who: a numeric user/chat id (`-100…` for channels and supergroups), `@username`, "
        "a `t.me/<username>` link, or a `+phone` of a contact. Normalised to an int, `@name` or `+phone`.",
        examples=["@alice", 777000, "+886912345678"],
    ),
]

ChatRef = Annotated[
    int | str,
    BeforeValidator(lambda v: _peer_or_chat(v, allow_phone=False, allow_invite=True)),
    Field(
        description="A group or channel: numeric chat id, `@username`, `t.me/<username>`, an invite link "
        "`t.me/+<hash>` / `t.me/joinchat/<hash>`, `+<hash>` or the bare hash. Normalised to an int, `@name` "
        "or `+hash` (a bare text that could be both is `@name`; join-group then tries it as a hash too).",
        examples=["@python", "https://t.me/+AbCdEfGh12345", -1001234567890],
    ),
]


# --- account health, roles -----------------------------------------------------------------------


class AccountState(StrEnum):
    """The health state machine of ARCHITECTURE.md section 6; every change is an event."""

    NEW = "new"
    CODE_SENT = "code_sent"
    PASSWORD_NEEDED = "password_needed"
    ACTIVE = "active"
    FLOOD_WAIT = "flood_wait"
    PEER_FLOOD = "peer_flood"
    FROZEN = "frozen"
    UNAUTHORIZED = "unauthorized"
    BANNED = "banned"
    PROXY_ERROR = "proxy_error"
    DISCONNECTED = "disconnected"

    @property
    def usable(self) -> bool:
        """Whether the account may be handed work right now (`flood_wait` depends on the time)."""
        return self is AccountState.ACTIVE

    @property
    def needs_login(self) -> bool:
        return self in (
            AccountState.NEW,
            AccountState.CODE_SENT,
            AccountState.PASSWORD_NEEDED,
            AccountState.UNAUTHORIZED,
        )


class AccountRole(StrEnum):
    """What the account is used for (the earlier client's `Listener|Sender|Explorer|AI|Backup|Unassigned`)."""

    UNASSIGNED = "unassigned"
    LISTENER = "listener"
    SENDER = "sender"
    EXPLORER = "explorer"
    AI = "ai"
    BACKUP = "backup"


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


RoleField = Annotated[AccountRole, BeforeValidator(_lower)]
"""Accepts the earlier client's capitalised names (`Sender`) too."""

LoginMethod = Literal["code", "qr", "session"]
CodeType = Literal["app", "sms", "call", "flash_call", "missed_call", "email", "fragment", "unknown"]


# --- proxies -------------------------------------------------------------------------------------

ProxyType = Literal["socks5", "socks4", "http", "mtproxy"]
ProxyKind = Literal["residential", "datacenter", "mobile", "unknown"]

_SCHEMES: dict[str, tuple[str, int]] = {
    "socks5": ("socks5", 1080),
    "socks5h": ("socks5", 1080),
    "socks": ("socks5", 1080),
    "socks4": ("socks4", 1080),
    "socks4a": ("socks4", 1080),
    "http": ("http", 8080),
    "https": ("http", 8080),
    "mtproxy": ("mtproxy", 443),
}


def parse_proxy_url(url: str) -> dict[str, Any]:
    """`socks5://user:pass@host:1080`, `http://host:3128`, `mtproxy://<secret>@host:443`,
    `tg://proxy?server=…&port=…&secret=…` or `https://t.me/proxy?…` into ProxyConfig fields."""
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if (scheme == "tg" and parts.netloc == "proxy") or (
        scheme in ("http", "https")
        and parts.netloc.lower() in ("t.me", "telegram.me")
        and parts.path == "/proxy"
    ):
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if "server" not in query or "port" not in query:
            raise ValueError("an MTProxy link needs server and port")
        return {
            "type": "mtproxy",
            "host": query["server"],
            "port": query["port"],
            "secret": query.get("secret"),
        }
    if scheme not in _SCHEMES:
        raise ValueError("proxy URL scheme must be socks5, socks4, http or mtproxy")
    if not parts.hostname:
        raise ValueError("proxy URL has no host")
    kind, default_port = _SCHEMES[scheme]
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise ValueError("proxy URL has an invalid port") from exc
    out: dict[str, Any] = {"type": kind, "host": parts.hostname, "port": port}
    if kind == "mtproxy":
        out["secret"] = unquote(parts.username) if parts.username else None
    else:
        if parts.username:
            out["username"] = unquote(parts.username)
        if parts.password:
            out["password"] = unquote(parts.password)
    return out


if TYPE_CHECKING:  # to a type checker these are the SecretStr they validate into
    ProxyPassword = SecretStr
    MtproxySecret = SecretStr
else:
    ProxyPassword = write_only_secret(max_length=255, what="proxy password")
    MtproxySecret = write_only_secret(
        min_length=16, max_length=512, pattern=r"[0-9a-fA-F]+|[A-Za-z0-9_=+/-]+", what="MTProxy secret"
    )


class ProxyConfig(SecretRequest):
    """How an account reaches Telegram. Also accepted as a URL string (`socks5://user:pass@host:1080`)."""

    type: ProxyType = "socks5"
    host: str = Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]_-]+$")
    port: int = Field(ge=1, le=65535)
    username: str | None = Field(None, min_length=1, max_length=255)
    password: ProxyPassword | None = None
    secret: MtproxySecret | None = Field(
        None, description="MTProxy secret (hex or base64), only for `type: mtproxy`."
    )
    rdns: bool = Field(True, description="Resolve Telegram's addresses through the proxy (SOCKS/HTTP).")
    country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166 code of the exit IP.")
    kind: ProxyKind = "unknown"

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, data: Any) -> Any:
        if isinstance(data, str):
            return parse_proxy_url(data)
        return data

    @field_validator("host")
    @classmethod
    def _resolvable(cls, host: str) -> str:
        # A name's labels are at most 63 characters (RFC 1035): longer ones failed inside the resolver
        # ("label too long", an INTERNAL 500 found by schemathesis). IPv6 literals have no labels.
        if ":" not in host and any(len(label) > 63 or not label for label in host.rstrip(".").split(".")):
            raise ValueError("host is not a valid host name (empty label, or one over 63 characters)")
        return host

    @model_validator(mode="after")
    def _consistent(self) -> ProxyConfig:
        if self.type == "mtproxy":
            if self.secret is None:
                raise ValueError("an MTProxy needs its secret")
            if self.username or self.password:
                raise ValueError("an MTProxy takes a secret, not a username or password")
        elif self.secret is not None:
            raise ValueError("secret is only for type mtproxy")
        if self.password is not None and not self.username:
            raise ValueError("a proxy password needs a username")
        return self

    def view(self) -> ProxyView:
        return ProxyView(
            type=self.type,
            host=self.host,
            port=self.port,
            username=self.username,
            has_password=self.password is not None,
            has_secret=self.secret is not None,
            rdns=self.rdns,
            country=self.country.upper() if self.country else None,
            kind=self.kind,
        )


class ProxyView(Response):
    """A proxy as shown: never its password or secret."""

    type: ProxyType
    host: str
    port: int
    username: str | None = None
    has_password: bool = False
    has_secret: bool = False
    rdns: bool = True
    country: str | None = None
    kind: ProxyKind = "unknown"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


# --- device profile, Telegram profile ------------------------------------------------------------

DevicePlatform = Literal["android", "ios", "desktop", "macos", "web"]


class DeviceProfile(Request):
    """What the account's client reports to Telegram; unset fields are generated once and kept."""

    platform: DevicePlatform | None = None
    device_model: str | None = Field(None, min_length=1, max_length=64)
    system_version: str | None = Field(None, min_length=1, max_length=64)
    app_version: str | None = Field(None, min_length=1, max_length=64)
    lang_code: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    system_lang_code: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")


class DeviceView(Response):
    platform: DevicePlatform | None = None
    device_model: str | None = None
    system_version: str | None = None
    app_version: str | None = None
    lang_code: str | None = None
    system_lang_code: str | None = None


class TelegramProfile(Response):
    """The account's own Telegram user, as last pulled."""

    telegram_id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    bio: str | None = None
    phone: str | None = None
    premium: bool = False
    verified: bool = False
    has_photo: bool = False
    synced_at: datetime | None = None


# --- accounts ------------------------------------------------------------------------------------


class AccountView(Response):
    """One fleet account as every screen and service sees it. No session, hash or password in it."""

    id: str
    phone: str
    label: str | None = Field(None, description="The operator's name for the account (`nickname`).")
    state: AccountState
    state_reason: str | None = Field(None, description="Why the state was entered, e.g. the Telegram error.")
    state_changed_at: datetime | None = None
    flood_wait_until: datetime | None = Field(None, description="Set while `state` is `flood_wait`.")
    cooldown_until: datetime | None = Field(None, description="End of a `peer_flood` cool-down.")
    role: AccountRole = AccountRole.UNASSIGNED
    group: str | None = Field(None, description="Name of the account group it belongs to.")
    tags: list[str] = Field(default_factory=list)
    persona_id: str | None = None
    notes: str | None = None
    profile: TelegramProfile = Field(default_factory=TelegramProfile)
    proxy: ProxyView | None = None
    api_credential_id: str | None = None
    api_id: int | None = None
    device: DeviceView = Field(default_factory=DeviceView)
    has_session: bool = Field(False, description="An (encrypted) authorised session is stored.")
    two_factor_enabled: bool | None = Field(None, description="Whether Telegram asked for a 2FA password.")
    connected: bool = False
    holder: str | None = Field(None, description="Replica id holding the account's lease, when held.")
    daily_send_limit: int = 50
    daily_send_count: int = 0
    health_score: int = Field(100, ge=0, le=100)
    warmup_enabled: bool = True
    warmup_day: int | None = Field(None, description="Day of the warm-up ramp; null once warmed up.")
    ai_enabled: bool = False
    ai_model: str | None = None
    ai_personality: str | None = None
    last_login_at: datetime | None = None
    last_active_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class AccountBrief(Response):
    """The few fields another service needs to pick or show an account."""

    id: str
    phone: str
    label: str | None = None
    state: AccountState
    role: AccountRole = AccountRole.UNASSIGNED
    group: str | None = None
    tags: list[str] = Field(default_factory=list)
    telegram_id: int | None = None
    username: str | None = None
    flood_wait_until: datetime | None = None
    holder: str | None = None
    daily_send_count: int = 0
    daily_send_limit: int = 50


class AccountGroupView(Response):
    id: str
    name: str
    color: str | None = None
    description: str | None = None
    account_count: int = 0


class TagView(Response):
    name: str
    color: str | None = None
    account_count: int = 0


PersonaTone = Literal["friendly", "professional", "casual", "formal", "enthusiastic", "concise"]


class PersonaView(Response):
    """A character an account can play: used by AI replies and multi-role scripts."""

    id: str
    name: str
    description: str | None = None
    personality: str | None = None
    speaking_style: str | None = None
    tone: PersonaTone | None = None
    emoji_frequency: Literal["none", "low", "medium", "high"] | None = None
    language: str | None = None
    bio: str | None = None
    custom_prompt: str | None = None
    account_count: int = 0
    updated_at: datetime | None = None


class BulkFailure(Response):
    account_id: str
    code: str = Field(description="An ErrorCode value, e.g. NOT_FOUND or CONFLICT.")
    message: str


class BulkResult(Response):
    """Outcome of a command applied to many accounts: each one succeeds or fails on its own."""

    ok: bool = Field(description="True when every account succeeded.")
    requested: int
    affected: int
    failed: list[BulkFailure] = Field(default_factory=list)


# --- API credentials -----------------------------------------------------------------------------

ApiCredentialSource = Literal["manual", "scraped", "imported"]


class ApiCredentialView(Response):
    """A pooled Telegram API credential; the hash is shown masked only."""

    id: str
    api_id: int
    api_hash_masked: str = Field(description="`********` plus the last four characters.")
    name: str | None = None
    source: ApiCredentialSource = "manual"
    is_active: bool = True
    max_accounts: int
    accounts_in_use: int = 0
    account_ids: list[str] = Field(default_factory=list)
    last_tested_at: datetime | None = None
    last_test_ok: bool | None = None
    last_test_error: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


# --- IP binding ----------------------------------------------------------------------------------


class IpBindingView(Response):
    """An account pinned to one proxy, so Telegram always sees it from the same IP."""

    account_id: str
    phone: str | None = None
    proxy: ProxyView
    exit_ip: str | None = Field(None, description="Public IP seen through the proxy at the last check.")
    country: str | None = None
    kind: ProxyKind = "unknown"
    reason: str | None = None
    is_active: bool = True
    bound_at: datetime
    last_verified_at: datetime | None = None
    success_count: int = 0
    fail_count: int = 0
    total_requests: int = 0
    avg_latency_ms: float | None = None


# --- chats, members, extraction ------------------------------------------------------------------

ChatKind = Literal["private", "group", "supergroup", "channel", "gigagroup"]


class ChatView(Response):
    """A Telegram group or channel as one account sees it."""

    chat_id: int = Field(
        description="Marked id: `-100…` for channels and supergroups, `-…` for basic groups."
    )
    kind: ChatKind
    title: str
    username: str | None = None
    about: str | None = None
    members_count: int | None = None
    invite_link: str | None = None
    is_public: bool = False
    is_member: bool | None = None
    is_admin: bool | None = None
    verified: bool = False
    scam: bool = False
    forum: bool = False


Presence = Literal["online", "recently", "last_week", "last_month", "long_ago", "hidden", "unknown"]


class TelegramUser(Response):
    """A Telegram user as seen by one account (no access hash: it is only valid for that account)."""

    user_id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = Field(None, description="Only when Telegram shows it to the account.")
    is_bot: bool = False
    is_premium: bool = False
    is_verified: bool = False
    is_scam: bool = False
    is_deleted: bool = False
    is_contact: bool = False
    lang_code: str | None = None
    presence: Presence = "unknown"
    last_online_at: datetime | None = None


MemberRole = Literal["creator", "admin", "member", "restricted", "banned", "left"]


class GroupMemberView(TelegramUser):
    role: MemberRole = "member"
    joined_at: datetime | None = None


class CollectedUserView(TelegramUser):
    """A user gathered by member extraction, with where and when."""

    id: str
    source_chat_id: int
    source_chat_title: str | None = None
    job_id: str | None = None
    account_id: str | None = None
    member_role: MemberRole = "member"
    collected_at: datetime
    last_message_at: datetime | None = Field(
        None, description="For `messages` extraction: the last post seen."
    )


ExtractionSource = Literal["participants", "messages"]
ExtractionState = Literal["queued", "running", "completed", "failed", "cancelled"]


class ExtractionFilters(Request):
    """Which members to keep. Defaults keep real people only."""

    exclude_bots: bool = True
    exclude_deleted: bool = True
    include_fleet: bool = Field(
        False,
        description=(
            "Also collect the fleet's own accounts (by Telegram user id or phone); left out by default: "
            "they are not members to reach, and their phones would leave in the export."
        ),
    )
    exclude_admins: bool = False
    require_username: bool = Field(False, description="Keep only users who have a username.")
    require_photo: bool = False
    premium_only: bool = False
    active_within_days: int | None = Field(
        None,
        ge=1,
        le=365,
        description="Keep users seen within this many days (`recently` counts as 3, `last_week` 7, "
        "`last_month` 30); users with hidden presence are dropped.",
    )
    online_only: bool = False
    skip_already_collected: bool = Field(True, description="Skip users collected before from the same chat.")
    query: str | None = Field(None, min_length=1, max_length=64, description="Telegram member search text.")


class ExtractionJobView(Response):
    """A background member extraction; resumable after a restart."""

    job_id: str
    account_id: str
    chat: ChatView | None = Field(None, description="Resolved once the job has started.")
    chat_ref: str = Field(description="The chat as it was asked for.")
    source: ExtractionSource = "participants"
    filters: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = None
    state: ExtractionState
    progress: float = Field(0.0, ge=0, le=1)
    scanned: int = 0
    collected: int = 0
    skipped: int = 0
    total_estimate: int | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime | None = None


class CreatedGroupView(Response):
    """A group or channel made by one of our accounts."""

    id: str
    account_id: str
    chat: ChatView
    invite_link: str | None = None
    invited: list[int] = Field(default_factory=list, description="User ids added on creation.")
    failed_invites: list[dict[str, str]] = Field(
        default_factory=list, description="`{peer, error}` for every member who could not be added."
    )
    created_at: datetime


# --- login flows ---------------------------------------------------------------------------------

LoginNext = Literal["code", "password", "done"]


class LoginStep(Response):
    """Where a code login stands after a step, and what the operator must give next."""

    account_id: str
    phone: str
    state: AccountState
    next: LoginNext = Field(description="`code`: call verify-code; `password`: submit-2fa-password; `done`.")
    phone_code_hash: str | None = Field(None, description="Telegram's hash of the sent code (not a secret).")
    code_type: CodeType | None = Field(None, description="How the code was delivered.")
    next_code_type: CodeType | None = Field(None, description="How resend-code would deliver it.")
    code_length: int | None = None
    resend_after_seconds: int | None = Field(None, description="Telegram's timeout before resend-code works.")
    password_hint: str | None = None
    account: AccountView | None = Field(None, description="The account once `next` is `done`.")
    message: str | None = None


QrLoginState = Literal["pending", "scanned", "password_needed", "success", "expired", "cancelled", "failed"]


class QrLoginView(Response):
    """A QR login session: show `qrUrl` (or the image) to the phone that logs in, before `expiresAt`."""

    session_id: str
    state: QrLoginState
    qr_url: str | None = Field(None, description="`tg://login?token=…`; null once the session is over.")
    qr_image_base64: str | None = Field(
        None, description="The QR code of `qrUrl`, base64 without a data: prefix."
    )
    qr_image_mime: Literal["image/png", "image/svg+xml"] | None = None
    expires_at: datetime | None = None
    expires_in: int | None = Field(None, description="Seconds left until the token expires.")
    account_id: str | None = Field(None, description="The account logging in or created on success.")
    phone: str | None = None
    profile: TelegramProfile | None = None
    password_hint: str | None = None
    device: DeviceView | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


# --- credential scrape ---------------------------------------------------------------------------

CredentialScrapeState = Literal[
    "starting",
    "waiting_code",
    "submitting_code",
    "reading_app",
    "creating_app",
    "completed",
    "failed",
    "cancelled",
]
CodeSource = Literal["auto", "manual"]


class ScrapeLogLine(Response):
    at: datetime
    level: Literal["info", "warning", "error"] = "info"
    message: str


class CredentialScrapeView(Response):
    """A run of the developer-site flow that reads or creates an account's api_id/api_hash."""

    scrape_id: str
    account_id: str
    phone: str
    state: CredentialScrapeState
    code_source: CodeSource = "auto"
    api_id: int | None = None
    api_hash_masked: str | None = None
    credential_id: str | None = Field(None, description="The pool entry the result was stored as.")
    app_title: str | None = None
    created_app: bool | None = Field(None, description="True when no app existed and one was created.")
    error: str | None = None
    log: list[ScrapeLogLine] = Field(default_factory=list, description="The latest steps, oldest first.")
    started_at: datetime
    updated_at: datetime | None = None
    finished_at: datetime | None = None


class AccountSelector(Request):
    """One account, by id (the earlier client also sent `id`) or by phone."""

    account_id: AccountId | None = Field(
        None,
        validation_alias=AliasChoices("accountId", "account_id", "id"),
        serialization_alias="accountId",
        description="The account id (`id` is accepted too).",
    )
    phone: Phone | None = Field(None, description="The account's phone, instead of its id.")

    @model_validator(mode="after")
    def _one_account(self) -> AccountSelector:
        if self.account_id is None and self.phone is None:
            raise ValueError("accountId or phone is required")
        return self


class SecretAccountSelector(AccountSelector, SecretRequest):
    """An account selector on a request that also carries a secret."""


__all__ = [
    "AccountBrief",
    "AccountGroupView",
    "AccountRole",
    "AccountSelector",
    "AccountState",
    "AccountView",
    "ApiCredentialView",
    "ApiHash",
    "BulkResult",
    "ChatRef",
    "ChatView",
    "CollectedUserView",
    "CreatedGroupView",
    "CredentialScrapeView",
    "DeviceProfile",
    "ExtractionFilters",
    "ExtractionJobView",
    "GroupMemberView",
    "IpBindingView",
    "LoginStep",
    "PeerRef",
    "PersonaView",
    "Phone",
    "ProxyConfig",
    "ProxyView",
    "QrLoginView",
    "SecretRequest",
    "TagView",
    "TelegramProfile",
    "TelegramUser",
    "WriteOnlySecret",
    "mask_secret",
    "parse_proxy_url",
]
