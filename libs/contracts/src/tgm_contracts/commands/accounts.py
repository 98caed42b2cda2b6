"""The 39 tg-session `account` commands: the fleet's accounts, their groups, tags and personas, code and
QR login, proxies and IP binding, and the developer-site credential scrape.

Errors every handler may answer besides VALIDATION_ERROR: NOT_FOUND (no such account or session),
CONFLICT (state does not allow the step, duplicate phone, proxy full), FLOOD_WAIT with `retry_after`,
TELEGRAM_ERROR with `details.telegramError` (e.g. `PHONE_NUMBER_BANNED`), LOGIN_REJECTED (400) when what
the person typed was refused (`PHONE_CODE_INVALID`, `PHONE_CODE_EXPIRED`, `PASSWORD_HASH_INVALID`; the
words to show in the message), UNAVAILABLE (no replica holds the account).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from ..base import Ack, Confirmed, Empty, HttpUrlStr, Page, PageRequest, Request, Response, refuse_null
from ..command import Command
from ..enums import Domain, Role, Service
from ..models.session import (
    AccountGroupView,
    AccountId,
    AccountIds,
    AccountSelector,
    AccountState,
    AccountView,
    ApiHash,
    BulkResult,
    CodeSource,
    Color,
    CredentialScrapeState,
    CredentialScrapeView,
    DeviceProfile,
    GroupName,
    IpBindingView,
    Label,
    LoginCode,
    LoginStep,
    PersonaTone,
    PersonaView,
    Phone,
    ProxyConfig,
    ProxyKind,
    ProxyView,
    QrLoginView,
    RoleField,
    SecretAccountSelector,
    SecretRequest,
    TagName,
    TagView,
    TelegramProfile,
    TwoFactorPassword,
    write_only_secret,
)

TS = Service.TG_SESSION
ACCOUNT = Domain.ACCOUNT

if TYPE_CHECKING:  # to a type checker these are the SecretStr they validate into
    ImportedSession = SecretStr
    SiteCode = SecretStr
else:
    ImportedSession = write_only_secret(
        min_length=100,
        max_length=4096,
        pattern=r"1[A-Za-z0-9_=+/-]+",
        normalize=str.strip,
        what="sessionString",
    )
    SiteCode = write_only_secret(
        min_length=4, max_length=64, pattern=r"[A-Za-z0-9_-]+", normalize=str.strip, what="site code"
    )
"""A Telethon StringSession (version `1`, base64): a login in itself, so it is treated as a secret."""


# --- shared request pieces -----------------------------------------------------------------------


class ApiCredentialChoice(SecretRequest):
    """Which API credential an account uses: a pool entry, a given pair (added to the pool), or neither
    (the pool assigns the least used active credential)."""

    api_credential_id: str | None = Field(None, min_length=1, max_length=64)
    api_id: int | None = Field(None, ge=1, le=2**31 - 1)
    api_hash: ApiHash | None = None

    @model_validator(mode="after")
    def _api_pair(self) -> ApiCredentialChoice:
        if (self.api_id is None) != (self.api_hash is None):
            raise ValueError("apiId and apiHash go together")
        if self.api_credential_id is not None and self.api_id is not None:
            raise ValueError("give apiCredentialId or apiId/apiHash, not both")
        return self


class AccountSettingsFields(Request):
    """Operator-side settings of an account (nothing here reaches Telegram)."""

    label: Label | None = Field(None, description="The operator's name for the account (`nickname`).")
    group: GroupName | None = None
    role: RoleField | None = None
    tags: list[TagName] | None = Field(None, max_length=50)
    persona_id: str | None = Field(None, min_length=1, max_length=64)
    notes: str | None = Field(None, max_length=2000)
    daily_send_limit: int | None = Field(None, ge=0, le=1000)
    warmup_enabled: bool | None = Field(None, description="Ramp the daily cap up over the warm-up days.")
    ai_enabled: bool | None = None
    ai_model: str | None = Field(None, min_length=1, max_length=100)
    ai_personality: str | None = Field(None, max_length=2000)


# --- accounts ------------------------------------------------------------------------------------


class AddAccountRequest(AccountSettingsFields, ApiCredentialChoice):
    """A new account; it starts in state `new` and logs in with login-account or a QR login."""

    phone: Phone
    proxy: ProxyConfig | None = Field(
        None, description="Object or URL string; required if `telegram.requireProxy`."
    )
    device: DeviceProfile | None = None
    session_string: ImportedSession | None = Field(
        None,
        description="Import an authorised Telethon StringSession instead of logging in (the earlier "
        "client's `import-session`). Stored encrypted; the account starts `disconnected` and becomes "
        "`active` once a replica has connected it and Telegram confirmed the session belongs to `phone`.",
    )


class AddAccount(
    Command,
    name="add-account",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=AddAccountRequest,
    response=AccountView,
    example={"phone": "+886912345678", "label": "sales-01", "group": "Sales", "role": "sender"},
):
    """Add a Telegram account to the fleet (CONFLICT if the phone is already there)."""


AccountSort = Literal["created_at", "phone", "label", "state", "last_active_at"]


class GetAccountsRequest(PageRequest):
    state: list[AccountState] | None = Field(None, description="Any of these states.")
    group: GroupName | None = None
    ungrouped: bool = Field(False, description="Only accounts in no group.")
    tag: TagName | None = Field(None, description="Accounts carrying this tag.")
    role: RoleField | None = None
    persona_id: str | None = None
    connected: bool | None = None
    text: str | None = Field(
        None, min_length=1, max_length=100, description="In phone, label, username, names."
    )
    ids: list[AccountId] | None = Field(None, max_length=1000, description="Only these accounts.")
    sort: AccountSort = "created_at"
    order: Literal["asc", "desc"] = "asc"


class AccountPage(Page[AccountView]):
    by_state: dict[str, int] = Field(
        default_factory=dict, description="Counts over the whole filter, per state."
    )


class GetAccounts(
    Command,
    name="get-accounts",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=GetAccountsRequest,
    response=AccountPage,
    example={"limit": 50, "state": ["active"]},
):
    """List accounts with filters (state, group, tag, role, text), a page at a time."""


class UpdateAccountRequest(AccountSelector, AccountSettingsFields, ApiCredentialChoice):
    """Only the fields present change; `null` clears a nullable field (e.g. `"proxy": null`)."""

    proxy: ProxyConfig | None = Field(
        None, description="Replace the proxy (as ip-bind without checks) or clear it."
    )
    device: DeviceProfile | None = Field(None, description="Takes effect at the next connection.")

    # An account always has a role, a limit and both switches: null would be stored and then fail
    # every read of the account, so it is refused (add-account and qr-login-create read null as the
    # default).
    _not_null = field_validator("role", "daily_send_limit", "warmup_enabled", "ai_enabled", mode="before")(
        refuse_null
    )


class UpdateAccount(
    Command,
    name="update-account",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=UpdateAccountRequest,
    response=AccountView,
):
    """Change an account's settings: label, group, role, tags, persona, limits, proxy, credential."""


class UpdateAccountDataRequest(AccountSelector):
    """Profile fields pushed to Telegram; only the fields present change. The earlier client's nested
    `updates` object is accepted too."""

    first_name: str | None = Field(None, min_length=1, max_length=64)
    last_name: str | None = Field(None, max_length=64, description="Empty string removes it.")
    bio: str | None = Field(
        None, max_length=70, description="Telegram's `about`; 70 characters (140 premium)."
    )
    username: str | None = Field(
        None, pattern=r"^$|^[A-Za-z][A-Za-z0-9_]{3,31}$", description="Empty string removes the username."
    )
    photo_url: HttpUrlStr | None = Field(None, description="New profile photo.")

    @model_validator(mode="before")
    @classmethod
    def _flatten_updates(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("updates"), dict):
            data = {**{k: v for k, v in data.items() if k != "updates"}, **data["updates"]}
        return data

    @model_validator(mode="after")
    def _something(self) -> UpdateAccountDataRequest:
        if not ({"first_name", "last_name", "bio", "username", "photo_url"} & self.model_fields_set):
            raise ValueError("give at least one of firstName, lastName, bio, username, photoUrl")
        return self


class UpdateAccountData(
    Command,
    name="update-account-data",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=UpdateAccountDataRequest,
    response=AccountView,
    timeout=60,
):
    """Push profile changes (names, bio, username, photo) to Telegram and store them."""


class SyncAccountInfo(
    Command,
    name="sync-account-info",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=AccountSelector,
    response=AccountView,
    timeout=30,
):
    """Pull the account's Telegram profile (id, names, username, bio, premium) and store it."""


class RemoveAccountRequest(Confirmed, AccountSelector):
    DESTROYS: ClassVar[str] = "deletes the account and its stored session, and logs it out at Telegram"

    logout: bool = Field(
        True,
        description="Log the session out at Telegram first (best effort), so no live session is left behind.",
    )


class RemoveAccount(
    Command,
    name="remove-account",
    owner=TS,
    domain=ACCOUNT,
    role=Role.ADMIN,
    request=RemoveAccountRequest,
    response=Ack,
    timeout=30,
):
    """Remove an account and its stored session from the fleet; frees its proxy and credential slot."""


class BulkDeleteAccountsRequest(Confirmed):
    DESTROYS: ClassVar[str] = (
        "deletes every listed account with its stored session, and logs them out at Telegram"
    )

    account_ids: AccountIds
    logout: bool = True


class BulkDeleteAccounts(
    Command,
    name="bulk-delete-accounts",
    owner=TS,
    domain=ACCOUNT,
    role=Role.ADMIN,
    request=BulkDeleteAccountsRequest,
    response=BulkResult,
    timeout=120,
):
    """Remove many accounts; each succeeds or fails on its own."""


class TagChange(Request):
    mode: Literal["set", "add", "remove"] = "add"
    tags: list[TagName] = Field(max_length=50)


class BatchAccountUpdates(Request):
    """Settings safe to apply to many accounts at once; only the fields present change."""

    group: GroupName | None = None
    role: RoleField | None = None
    tags: TagChange | None = None
    persona_id: str | None = Field(None, min_length=1, max_length=64)
    daily_send_limit: int | None = Field(None, ge=0, le=1000)
    warmup_enabled: bool | None = None
    ai_enabled: bool | None = None
    ai_model: str | None = Field(None, min_length=1, max_length=100)
    ai_personality: str | None = Field(None, max_length=2000)
    notes: str | None = Field(None, max_length=2000)

    _not_null = field_validator("daily_send_limit", "warmup_enabled", "ai_enabled", mode="before")(
        refuse_null
    )

    @model_validator(mode="after")
    def _something(self) -> BatchAccountUpdates:
        if not self.model_fields_set:
            raise ValueError("updates is empty")
        return self


class BatchUpdateAccountsRequest(Request):
    account_ids: AccountIds
    updates: BatchAccountUpdates


class BatchUpdateAccounts(
    Command,
    name="batch-update-accounts",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=BatchUpdateAccountsRequest,
    response=BulkResult,
):
    """Apply the same settings change to many accounts."""


class BulkAssignGroupRequest(Request):
    account_ids: AccountIds
    group: GroupName | None = Field(description="The group name; null takes the accounts out of any group.")


class BulkAssignGroup(
    Command,
    name="bulk-assign-group",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=BulkAssignGroupRequest,
    response=BulkResult,
):
    """Put many accounts in one account group (created if it does not exist), or in none."""


class BulkAssignRoleRequest(Request):
    account_ids: AccountIds
    role: RoleField


class BulkAssignRole(
    Command,
    name="bulk-assign-role",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=BulkAssignRoleRequest,
    response=BulkResult,
):
    """Give many accounts the same role."""


class AccountStatusReport(Response):
    """The outcome of probing Telegram for one account."""

    account_id: str
    state: AccountState
    previous_state: AccountState
    changed: bool
    connected: bool
    reason: str | None = Field(None, description="The Telegram error or condition behind the state.")
    latency_ms: float | None = None
    flood_wait_until: datetime | None = None
    spam_restricted: bool | None = Field(None, description="What @SpamBot-like limits report, when probed.")
    profile: TelegramProfile | None = None
    checked_at: datetime


class CheckAccountStatus(
    Command,
    name="check-account-status",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=AccountSelector,
    response=AccountStatusReport,
    timeout=30,
):
    """Probe Telegram for one account and settle its health state (evented if it changed)."""


# --- account groups, tags, personas --------------------------------------------------------------


class AccountGroupList(Response):
    groups: list[AccountGroupView]


class GetGroups(
    Command,
    name="get-groups",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=Empty,
    response=AccountGroupList,
):
    """The account groups, with how many accounts each holds."""


class AccountGroupInput(Request):
    id: str | None = Field(None, min_length=1, max_length=64, description="Omit to create a group.")
    name: GroupName
    color: Color | None = None
    description: str | None = Field(None, max_length=500)


class SaveGroupsRequest(Request):
    groups: list[AccountGroupInput] = Field(max_length=500)
    replace: bool = Field(
        True,
        description="The list is the whole set: groups not in it are deleted and their accounts ungrouped. "
        "False only creates and updates.",
    )

    @model_validator(mode="after")
    def _unique(self) -> SaveGroupsRequest:
        names = [g.name.casefold() for g in self.groups]
        if len(names) != len(set(names)):
            raise ValueError("group names must be unique")
        return self


class SaveGroups(
    Command,
    name="save-groups",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=SaveGroupsRequest,
    response=AccountGroupList,
):
    """Create, rename, recolour and (with replace) delete account groups; renames follow to accounts."""


class TagList(Response):
    tags: list[TagView]


class GetTags(
    Command,
    name="get-tags",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=Empty,
    response=TagList,
):
    """The account tags, with how many accounts carry each."""


class TagInput(Request):
    name: TagName
    color: Color | None = None
    rename_from: TagName | None = Field(None, description="Rename this tag on every account to `name`.")


class SaveTagsRequest(Request):
    tags: list[TagInput] = Field(max_length=1000)
    replace: bool = Field(True, description="Tags not in the list are removed from every account.")

    @model_validator(mode="before")
    @classmethod
    def _plain_names(cls, data: Any) -> Any:
        # The earlier client sent a list of names; keep accepting it.
        if isinstance(data, dict) and isinstance(data.get("tags"), list):
            data = {**data, "tags": [{"name": t} if isinstance(t, str) else t for t in data["tags"]]}
        return data

    @model_validator(mode="after")
    def _unique(self) -> SaveTagsRequest:
        names = [t.name.casefold() for t in self.tags]
        if len(names) != len(set(names)):
            raise ValueError("tag names must be unique")
        return self


class SaveTags(
    Command,
    name="save-tags",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=SaveTagsRequest,
    response=TagList,
):
    """Define the tag vocabulary (names and colours); with replace, removes tags not listed."""


class PersonaList(Response):
    personas: list[PersonaView]


class GetPersonas(
    Command,
    name="get-personas",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=Empty,
    response=PersonaList,
):
    """The personas accounts can play, with how many accounts use each."""


class PersonaInput(Request):
    id: str | None = Field(None, min_length=1, max_length=64, description="Omit to create a persona.")
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(None, max_length=1000)
    personality: str | None = Field(None, max_length=2000)
    speaking_style: str | None = Field(None, max_length=1000)
    tone: PersonaTone | None = None
    emoji_frequency: Literal["none", "low", "medium", "high"] | None = None
    language: str | None = Field(None, pattern=r"^[a-z]{2}(-[A-Za-z]{2,4})?$")
    bio: str | None = Field(None, max_length=70)
    custom_prompt: str | None = Field(None, max_length=4000)


class SavePersonasRequest(Request):
    personas: list[PersonaInput] = Field(max_length=500)
    replace: bool = Field(True, description="Personas not in the list are deleted; their accounts lose them.")

    @model_validator(mode="after")
    def _unique(self) -> SavePersonasRequest:
        names = [p.name.casefold() for p in self.personas]
        if len(names) != len(set(names)):
            raise ValueError("persona names must be unique")
        return self


class SavePersonas(
    Command,
    name="save-personas",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=SavePersonasRequest,
    response=PersonaList,
):
    """Create, update and (with replace) delete personas."""


# --- code login ----------------------------------------------------------------------------------


class LoginAccountRequest(SecretAccountSelector):
    """Starts a code login. The earlier client's one-call form (with `phoneCode`, and `twoFactorPassword`
    used only if Telegram asks for it in the same call) is accepted too. Nothing here is stored."""

    phone_code: LoginCode | None = Field(None, description="Continue with this code (as verify-code).")
    phone_code_hash: str | None = Field(None, min_length=1, max_length=255)
    two_factor_password: TwoFactorPassword | None = None
    force_sms: bool = Field(False, description="Ask Telegram for an SMS instead of an in-app code.")
    restart: bool = Field(False, description="Drop a pending login and ask for a new code.")


class LoginAccount(
    Command,
    name="login-account",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=LoginAccountRequest,
    response=LoginStep,
    timeout=30,
    example={"phone": "+886912345678"},
):
    """Start (or continue) a phone-code login; answers `done` at once for an authorised account."""


class VerifyCodeRequest(SecretAccountSelector):
    phone_code: LoginCode
    phone_code_hash: str | None = Field(
        None, min_length=1, max_length=255, description="Defaults to the pending login's hash."
    )
    two_factor_password: TwoFactorPassword | None = Field(
        None, description="Used at once if Telegram asks for it; never stored."
    )


class VerifyCode(
    Command,
    name="verify-code",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=VerifyCodeRequest,
    response=LoginStep,
    timeout=30,
    example={"phone": "+886912345678", "phoneCode": "12345"},
):
    """Sign in with the code Telegram sent; answers `password` when 2FA is on."""


class ResendCodeRequest(AccountSelector):
    phone_code_hash: str | None = Field(None, min_length=1, max_length=255)


class ResendCode(
    Command,
    name="resend-code",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=ResendCodeRequest,
    response=LoginStep,
    timeout=30,
):
    """Ask Telegram to send the login code again, by the next delivery type."""


class SubmitTwoFactorPasswordRequest(SecretAccountSelector):
    password: TwoFactorPassword = Field(
        validation_alias=AliasChoices("password", "twoFactorPassword", "two_factor_password"),
        serialization_alias="password",
        description="The account's cloud password (SRP); never stored or logged.",
    )


class SubmitTwoFactorPassword(
    Command,
    name="submit-2fa-password",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=SubmitTwoFactorPasswordRequest,
    response=LoginStep,
    timeout=30,
):
    """Finish a login that needs the 2FA password."""


class LogoutAccountRequest(Confirmed, AccountSelector):
    DESTROYS: ClassVar[str] = "ends the account's Telegram session and deletes the stored session"

    keep_account: bool = Field(True, description="Keep the account (state `new`); false also removes it.")


class LogoutAccount(
    Command,
    name="logout-account",
    owner=TS,
    domain=ACCOUNT,
    role=Role.ADMIN,
    request=LogoutAccountRequest,
    response=AccountView,
    timeout=30,
):
    """Log the account out at Telegram and destroy its stored session."""


# --- QR login ------------------------------------------------------------------------------------

QrImageFormat = Literal["png", "svg"]


class QrLoginCreateRequest(ApiCredentialChoice, AccountSettingsFields):
    account_id: AccountId | None = Field(
        None,
        description="Re-authorise this account; otherwise an account is created when the login succeeds.",
    )
    proxy: ProxyConfig | None = None
    device: DeviceProfile | None = None
    two_factor_password: TwoFactorPassword | None = Field(
        None, description="Used if the scanning account has 2FA; held in memory for this session only."
    )
    image_format: QrImageFormat = "png"
    image_size: int = Field(256, ge=128, le=1024, description="Pixels per side of a PNG.")


class QrLoginCreate(
    Command,
    name="qr-login-create",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=QrLoginCreateRequest,
    response=QrLoginView,
    timeout=30,
):
    """Start a QR login: a `tg://login?token=…` URL and its QR image, valid until `expiresAt`."""


class QrSessionRequest(Request):
    session_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_-]+$")


class QrLoginStatusRequest(QrSessionRequest):
    include_image: bool = Field(False, description="Also render the current QR image.")
    image_format: QrImageFormat = "png"


class QrLoginStatus(
    Command,
    name="qr-login-status",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=QrLoginStatusRequest,
    response=QrLoginView,
):
    """Where a QR login stands: pending, scanned, password_needed, success, expired, cancelled, failed."""


class QrLoginRefreshRequest(QrSessionRequest):
    image_format: QrImageFormat = "png"
    image_size: int = Field(256, ge=128, le=1024)


class QrLoginRefresh(
    Command,
    name="qr-login-refresh",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=QrLoginRefreshRequest,
    response=QrLoginView,
    timeout=30,
):
    """Get a fresh token and image for a pending QR login (before or after expiry)."""


class QrLoginSubmit2faRequest(QrSessionRequest, SecretRequest):
    password: TwoFactorPassword


class QrLoginSubmit2fa(
    Command,
    name="qr-login-submit-2fa",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=QrLoginSubmit2faRequest,
    response=QrLoginView,
    timeout=30,
):
    """Finish a scanned QR login whose account has 2FA."""


class QrLoginCancel(
    Command,
    name="qr-login-cancel",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=QrSessionRequest,
    response=QrLoginView,
):
    """Abandon a QR login; its token stops being served."""


# --- proxies and IP binding ----------------------------------------------------------------------


class ProxyTestRequest(ProxyConfig):
    """The proxy itself (flat, as the earlier client sent it) and how long to try."""

    timeout_seconds: float = Field(10.0, gt=0, le=60)
    check_telegram: bool = Field(True, description="Also open a connection to a Telegram DC through it.")


class ProxyTestResult(Response):
    ok: bool
    proxy: ProxyView
    latency_ms: float | None = Field(None, description="Time to connect through the proxy.")
    exit_ip: str | None = None
    telegram_reachable: bool | None = None
    telegram_latency_ms: float | None = None
    error: str | None = None
    error_kind: Literal["dns", "connect", "auth", "protocol", "timeout", "telegram"] | None = None
    tested_at: datetime


class TestProxy(
    Command,
    name="test-proxy",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=ProxyTestRequest,
    response=ProxyTestResult,
    timeout=75,
):
    """Connect through a SOCKS5/SOCKS4/HTTP/MTProxy proxy: latency, exit IP, Telegram reachability."""

    __test__ = False  # not a pytest class, despite its name


class IpBindRequest(AccountSelector):
    proxy: ProxyConfig
    country: str | None = Field(
        None,
        pattern=r"^[A-Za-z]{2}$",
        validation_alias=AliasChoices("country", "proxyCountry"),
        serialization_alias="country",
    )
    kind: ProxyKind = Field(
        "unknown", validation_alias=AliasChoices("kind", "proxyKind"), serialization_alias="kind"
    )
    reason: str | None = Field(None, max_length=200)
    verify: bool = Field(True, description="Test the proxy before binding; refuse to bind a dead one.")
    reconnect: bool = Field(True, description="Move the live connection onto the proxy now.")


class IpBind(
    Command,
    name="ip-bind",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=IpBindRequest,
    response=IpBindingView,
    timeout=75,
):
    """Pin an account to a proxy (CONFLICT past `telegram.maxAccountsPerProxy` accounts per exit)."""


class IpUnbindRequest(AccountSelector):
    reason: str | None = Field(None, max_length=200)
    reconnect: bool = Field(True, description="Reconnect without a proxy now (refused if one is required).")


class IpUnbind(
    Command,
    name="ip-unbind",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=IpUnbindRequest,
    response=Ack,
    timeout=30,
):
    """Release an account's proxy binding (kept in the change history)."""


class IpBindingInfo(Response):
    account_id: str
    binding: IpBindingView | None = None


class IpGetBinding(
    Command,
    name="ip-get-binding",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=AccountSelector,
    response=IpBindingInfo,
):
    """An account's current proxy binding, or null."""


class IpGetAllBindingsRequest(PageRequest):
    active_only: bool = True
    proxy_host: str | None = Field(None, min_length=1, max_length=253)
    country: str | None = Field(None, pattern=r"^[A-Za-z]{2}$")
    kind: ProxyKind | None = None


class IpGetAllBindings(
    Command,
    name="ip-get-all-bindings",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=IpGetAllBindingsRequest,
    response=Page[IpBindingView],
):
    """Every account-to-proxy binding, filterable by proxy, country and kind."""


class IpVerification(Response):
    account_id: str
    is_valid: bool = Field(description="The account's traffic leaves through its bound proxy.")
    proxy_reachable: bool
    exit_ip: str | None = None
    expected_exit_ip: str | None = Field(None, description="The exit IP recorded at binding time.")
    ip_changed: bool = False
    latency_ms: float | None = None
    error: str | None = None
    checked_at: datetime


class IpVerifyBinding(
    Command,
    name="ip-verify-binding",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=AccountSelector,
    response=IpVerification,
    timeout=75,
):
    """Check that the account's traffic really leaves through its proxy, and at the recorded exit IP."""


class ProxyUsage(Response):
    proxy: ProxyView
    accounts: int
    account_ids: list[str] = Field(default_factory=list)
    over_capacity: bool = False
    failures: int = 0
    avg_latency_ms: float | None = None
    last_error: str | None = None


class IpChange(Response):
    account_id: str
    action: Literal["bind", "unbind", "rebind"]
    from_proxy: str | None = Field(None, description="`host:port` before.")
    to_proxy: str | None = Field(None, description="`host:port` after.")
    reason: str | None = None
    at: datetime


class IpStatistics(Response):
    total_bindings: int
    active_bindings: int
    inactive_bindings: int
    accounts_without_proxy: int
    max_accounts_per_proxy: int
    by_country: dict[str, int] = Field(default_factory=dict)
    by_kind: dict[str, int] = Field(default_factory=dict)
    by_type: dict[str, int] = Field(default_factory=dict, description="socks5/socks4/http/mtproxy counts.")
    proxies: list[ProxyUsage] = Field(default_factory=list)
    avg_latency_ms: float | None = None
    total_changes: int = 0
    recent_changes: list[IpChange] = Field(default_factory=list)


class IpGetStatistics(
    Command,
    name="ip-get-statistics",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=Empty,
    response=IpStatistics,
):
    """Accounts per proxy, failures, latency, and the recent binding changes."""


# --- credential scrape ---------------------------------------------------------------------------


class CredentialStartScrapeRequest(AccountSelector):
    code_source: CodeSource = Field(
        "auto",
        description="`auto` reads the code from the account's own incoming messages (it must be logged in); "
        "`manual` waits for credential-submit-code.",
    )
    proxy: ProxyConfig | None = Field(
        None, description="Reach the site through this proxy; the account's otherwise."
    )
    app_title: str = Field(
        "TG-Matrix", min_length=5, max_length=64, description="Used if an app must be created."
    )
    app_short_name: str = Field("tgmatrix", min_length=5, max_length=32, pattern=r"^[A-Za-z0-9]+$")
    app_platform: Literal["android", "ios", "desktop", "web", "other"] = "desktop"
    app_url: HttpUrlStr | None = Field(None, max_length=200)
    app_description: str | None = Field(None, max_length=200)
    add_to_pool: bool = Field(True, description="Store the credential in the API credential pool.")
    max_accounts: int = Field(5, ge=1, le=100, description="Pool cap for the stored credential.")
    assign_to_account: bool = Field(True, description="Make the account use the scraped credential.")


class CredentialStartScrape(
    Command,
    name="credential-start-scrape",
    owner=TS,
    domain=ACCOUNT,
    role=Role.ADMIN,
    request=CredentialStartScrapeRequest,
    response=CredentialScrapeView,
    timeout=30,
):
    """Start reading (or creating) the account's api_id/api_hash on the developer site; runs in the background."""


class CredentialSubmitCodeRequest(SecretAccountSelector):
    code: SiteCode = Field(description="The code Telegram sent for the developer site (letters and digits).")
    scrape_id: str | None = Field(
        None, min_length=1, max_length=64, description="Defaults to the account's run."
    )

    @model_validator(mode="after")
    def _one_account(self) -> CredentialSubmitCodeRequest:
        # A scrape id alone names the run (and so the account).
        if self.account_id is None and self.phone is None and self.scrape_id is None:
            raise ValueError("scrapeId, accountId or phone is required")
        return self


class CredentialSubmitCode(
    Command,
    name="credential-submit-code",
    owner=TS,
    domain=ACCOUNT,
    role=Role.ADMIN,
    request=CredentialSubmitCodeRequest,
    response=CredentialScrapeView,
    timeout=60,
):
    """Give the developer-site code by hand to a scrape waiting for it."""


class CredentialScrapeRef(AccountSelector):
    scrape_id: str | None = Field(
        None, min_length=1, max_length=64, description="Defaults to the latest run."
    )

    @model_validator(mode="after")
    def _one_account(self) -> CredentialScrapeRef:
        if self.account_id is None and self.phone is None and self.scrape_id is None:
            raise ValueError("scrapeId, accountId or phone is required")
        return self


class CredentialGetStatus(
    Command,
    name="credential-get-status",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=CredentialScrapeRef,
    response=CredentialScrapeView,
):
    """Where an account's latest (or a given) credential scrape stands, with its recent log."""


class CredentialGetAllRequest(PageRequest):
    state: list[CredentialScrapeState] | None = None
    account_id: AccountId | None = None


class CredentialGetAll(
    Command,
    name="credential-get-all",
    owner=TS,
    domain=ACCOUNT,
    role=Role.VIEWER,
    request=CredentialGetAllRequest,
    response=Page[CredentialScrapeView],
):
    """Every credential scrape run and what it produced (hashes masked), newest first."""


class CredentialCancelScrape(
    Command,
    name="credential-cancel-scrape",
    owner=TS,
    domain=ACCOUNT,
    role=Role.OPERATOR,
    request=CredentialScrapeRef,
    response=CredentialScrapeView,
):
    """Stop a running credential scrape."""
