"""Internal calls tg-session offers to other services.

Account-addressed (`tgm.acct.<account_id>.<name>.v1`, answered by whichever replica holds the account;
no responder means no replica holds it: retry later):

- `send`: deliver one message, effectively once per `jobId`;
- `resolve-peer`: turn a username, phone or id into a peer the account can reach;
- `get-history`: read recent messages of a chat as the account sees them;
- `mark-read`: mark a chat read (after an automated reply, as a person would).

- commands that need the account's live Telegram client (join-group, check-account-status, …) are
  forwarded by whichever replica received them to the holder under the command's own name and models
  (`check-status`, `update-profile`, `sync-info`, `join-group`, `leave-group`, `search-groups`,
  `get-group-members`, `create-group`, `verify-proxy`, `logout`), plus `reload` (reconnect after the
  session, proxy or device changed);
- `qr-login` and `credential-scrape` are addressed by a QR session id (`qr_…`) or a scrape id (`cs_…`)
  instead of an account id: the replica running that login or scrape serves them.

Pool-wide (`tgm.tg-session.rpc.<name>.v1`, any replica):

- `pick-accounts`: choose usable accounts by role, group, tag, for work such as a campaign;
- `describe-accounts`: the brief of given accounts (to validate and show ids other services keep);
- `describe-users`: what tg-session knows of Telegram users (names, username) from its member
  extractions and the peers its accounts saw, without asking Telegram (campaign's templates).

Errors: FLOOD_WAIT with `retry_after` (the account's wait for that method category), TELEGRAM_ERROR
with `details.telegramError` (e.g. `PEER_FLOOD`, `USER_PRIVACY_RESTRICTED`, `CHAT_WRITE_FORBIDDEN`),
NOT_FOUND for a user peer that cannot be resolved (a `send` to a group id the account cannot reach
answers TELEGRAM_ERROR `CHANNEL_PRIVATE`, what Telegram tells a non-member; slow mode answers
TELEGRAM_ERROR `SLOWMODE_WAIT_<n>` with `retry_after`, not a flood wait of the account), CONFLICT
when the account is not `active`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import Ack, HttpUrlStr, Page, Request, Response
from .command import AccountRpc, Rpc
from .commands.accounts import (
    AccountStatusReport,
    QrImageFormat,
    SiteCode,
    UpdateAccountDataRequest,
)
from .commands.telegram_ops import (
    CreateGroupRequest,
    GetGroupMembersRequest,
    JoinGroupRequest,
    JoinGroupResult,
    LeaveGroupRequest,
    LeaveGroupResult,
    SearchGroupsRequest,
    SearchGroupsResult,
)
from .enums import Service
from .models.session import (
    AccountBrief,
    AccountId,
    AccountIds,
    AccountSelector,
    AccountView,
    ChatKind,
    CreatedGroupView,
    CredentialScrapeView,
    GroupMemberView,
    GroupName,
    PeerRef,
    QrLoginView,
    RoleField,
    SecretRequest,
    TagName,
    TwoFactorPassword,
)

TS = Service.TG_SESSION

MediaKind = Literal["auto", "photo", "video", "document", "audio", "voice"]


# --- send ----------------------------------------------------------------------------------------


class SendRequest(Request):
    """One message to one peer. A `jobId` that was already delivered is answered from the record of its
    Telegram message id (`duplicate: true`) and not sent again."""

    job_id: str = Field(
        min_length=1, max_length=128, description="Idempotency key, from campaign's job store."
    )
    peer: PeerRef
    text: str = Field("", max_length=4096, description="Message text, or the caption when media is given.")
    reply_to: int | None = Field(None, ge=1, description="Message id in the same chat to reply to.")
    parse_mode: Literal["md", "html", "none"] = "md"
    silent: bool = Field(False, description="Deliver without a notification sound.")
    link_preview: bool = True
    media_url: HttpUrlStr | None = Field(None, description="Media fetched by URL.")
    file_id: str | None = Field(
        None,
        min_length=1,
        max_length=512,
        description="A `mediaRef` from an earlier send, or a Bot API file id (bot accounts).",
    )
    media_kind: MediaKind = "auto"
    typing_seconds: float = Field(0, ge=0, le=30, description="Show `typing…` this long before sending.")

    @model_validator(mode="after")
    def _content(self) -> SendRequest:
        if self.media_url is not None and self.file_id is not None:
            raise ValueError("give mediaUrl or fileId, not both")
        has_media = self.media_url is not None or self.file_id is not None
        if not has_media and not self.text.strip():
            raise ValueError("text is required when there is no media")
        return self


class SendResult(Response):
    account_id: str
    job_id: str
    message_id: int = Field(description="Telegram's id of the sent message (in the chat `peerId`).")
    peer_id: int = Field(description="The resolved peer (marked id).")
    chat_kind: ChatKind | None = None
    sent_at: datetime
    duplicate: bool = Field(False, description="This job id had been delivered before; nothing was sent now.")
    media_ref: str | None = Field(None, description="Reuse the uploaded media with `fileId`.")


class Send(AccountRpc, name="send", request=SendRequest, response=SendResult):
    """Send one message as the account, effectively once per job id."""


# --- resolve-peer --------------------------------------------------------------------------------


class ResolvePeerRequest(Request):
    peer: PeerRef


class ResolvedPeer(Response):
    peer_id: int = Field(description="Marked id, usable as `peer` in later calls by the same account.")
    kind: Literal["user", "bot", "group", "supergroup", "channel"]
    username: str | None = None
    title: str | None = Field(None, description="Chat title, or the user's full name.")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    is_contact: bool = False
    is_self: bool = False
    can_write: bool | None = Field(None, description="Whether the account may post there, when known.")


class ResolvePeer(AccountRpc, name="resolve-peer", request=ResolvePeerRequest, response=ResolvedPeer):
    """Resolve a username, phone, link or id to a peer the account can reach."""


# --- get-history, mark-read ----------------------------------------------------------------------


class GetHistoryRequest(Request):
    peer: PeerRef
    limit: int = Field(50, ge=1, le=100)
    offset_id: int | None = Field(None, ge=1, description="Only messages older than this id.")
    min_id: int | None = Field(None, ge=0, description="Only messages newer than this id.")


class HistoryMessage(Response):
    message_id: int
    sender_id: int | None = None
    is_outgoing: bool
    text: str = ""
    date: datetime
    edit_date: datetime | None = None
    reply_to_message_id: int | None = None
    media_kind: str | None = None


class HistoryPage(Response):
    peer_id: int
    messages: list[HistoryMessage] = Field(description="Newest first.")
    next_offset_id: int | None = Field(
        None, description="Pass as offsetId for older messages; null at the start."
    )


class GetHistory(AccountRpc, name="get-history", request=GetHistoryRequest, response=HistoryPage):
    """Recent messages of a chat, as the account sees them."""


class MarkReadRequest(Request):
    peer: PeerRef
    max_id: int | None = Field(None, ge=1, description="Up to this message; everything when omitted.")


class MarkRead(AccountRpc, name="mark-read", request=MarkReadRequest, response=Ack):
    """Mark a chat read as the account."""


# --- pool-wide -----------------------------------------------------------------------------------


class PickAccountsRequest(Request):
    """Usable accounts: `active`, connected, not waiting on a flood wait for `category`."""

    count: int = Field(1, ge=1, le=500)
    roles: list[RoleField] | None = None
    groups: list[GroupName] | None = None
    tags: list[TagName] | None = Field(None, description="Accounts carrying any of these tags.")
    among: list[AccountId] | None = Field(None, max_length=1000, description="Only from these accounts.")
    exclude: list[AccountId] | None = Field(None, max_length=1000)
    member_of_chat_id: int | None = Field(None, description="Only accounts known to be in this chat.")
    category: str = Field(
        "send", min_length=1, max_length=32, description="Flood-wait category that must be clear."
    )
    strategy: Literal["least_used", "round_robin", "random"] = "least_used"


class PickedAccounts(Response):
    accounts: list[AccountBrief]
    available: int = Field(description="How many accounts matched before `count` cut the list.")


class PickAccounts(Rpc, name="pick-accounts", owner=TS, request=PickAccountsRequest, response=PickedAccounts):
    """Choose usable accounts for work, least used first by default."""


class DescribeAccountsRequest(Request):
    account_ids: AccountIds


class AccountBriefs(Response):
    accounts: list[AccountBrief]
    missing: list[str] = Field(
        default_factory=list, description="Ids that are not (or no longer) in the fleet."
    )


class DescribeAccounts(
    Rpc, name="describe-accounts", owner=TS, request=DescribeAccountsRequest, response=AccountBriefs
):
    """The brief (state, role, group, holder, counters) of given accounts."""


class DescribeUsersRequest(Request):
    """Users by id and by username (without `@`, any case); at most 200 of each."""

    user_ids: list[int] = Field(default_factory=list, max_length=200)
    usernames: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=200
    )


class KnownUser(Response):
    user_id: int | None = None
    username: str | None = Field(None, description="Lower case, without `@`.")
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = Field(None, description="The name an account's client shows for the user.")
    source: Literal["extraction", "peers"]


class KnownUsers(Response):
    users: list[KnownUser] = Field(
        default_factory=list, description="One per user found (best source first); the rest are unknown."
    )


class DescribeUsers(Rpc, name="describe-users", owner=TS, request=DescribeUsersRequest, response=KnownUsers):
    """What the fleet knows of Telegram users (member extractions, peers its accounts saw): stored
    data only, no Telegram call."""


# --- commands forwarded to the holder ----------------------------------------------------------------


class CheckStatus(AccountRpc, name="check-status", request=AccountSelector, response=AccountStatusReport):
    """check-account-status, run by the holder: probe Telegram and settle the health state."""


class UpdateProfile(
    AccountRpc, name="update-profile", request=UpdateAccountDataRequest, response=AccountView
):
    """update-account-data, run by the holder: push profile fields to Telegram."""


class SyncInfo(AccountRpc, name="sync-info", request=AccountSelector, response=AccountView):
    """sync-account-info, run by the holder: pull the Telegram profile."""


class AcctJoinGroup(AccountRpc, name="join-group", request=JoinGroupRequest, response=JoinGroupResult):
    """join-group, run by the holder."""


class AcctLeaveGroup(AccountRpc, name="leave-group", request=LeaveGroupRequest, response=LeaveGroupResult):
    """leave-group, run by the holder."""


class AcctSearchGroups(
    AccountRpc, name="search-groups", request=SearchGroupsRequest, response=SearchGroupsResult
):
    """search-groups, run by the holder of the chosen account."""


class AcctGetGroupMembers(
    AccountRpc, name="get-group-members", request=GetGroupMembersRequest, response=Page[GroupMemberView]
):
    """get-group-members, run by the holder of the chosen account."""


class AcctCreateGroup(AccountRpc, name="create-group", request=CreateGroupRequest, response=CreatedGroupView):
    """create-group, run by the holder."""


class ProxyCheck(Response):
    """What the holder sees of its live connection: where the socket goes, and the exit IP through it."""

    account_id: str
    connected: bool
    via_proxy: bool | None = Field(None, description="The live socket's peer is the bound proxy.")
    socket_peer: str | None = Field(None, description="`host:port` the live connection is open to.")
    proxy_reachable: bool
    exit_ip: str | None = None
    latency_ms: float | None = None
    error: str | None = None


class VerifyProxy(AccountRpc, name="verify-proxy", request=AccountSelector, response=ProxyCheck):
    """ip-verify-binding, run by the holder: check the live connection really goes through the proxy."""


class ReloadRequest(Request):
    reason: Literal["session", "proxy", "device", "credential", "state"] = "session"


class Reload(AccountRpc, name="reload", request=ReloadRequest, response=Ack):
    """The account's stored session, proxy, device or credential changed: reconnect with them."""


class Logout(AccountRpc, name="logout", request=AccountSelector, response=Ack):
    """logout-account (already confirmed), run by the holder: log out at Telegram, then drop the live client."""


# --- QR logins and credential scrapes, addressed by their own id -------------------------------------


class QrControlRequest(SecretRequest):
    action: Literal["refresh", "submit_2fa", "cancel"]
    password: TwoFactorPassword | None = None
    image_format: QrImageFormat = "png"
    image_size: int = Field(256, ge=128, le=1024)


class QrControl(AccountRpc, name="qr-login", request=QrControlRequest, response=QrLoginView):
    """Addressed by a QR session id: the replica holding that login's connection refreshes, finishes
    with the 2FA password or cancels it."""


class ScrapeControlRequest(SecretRequest):
    action: Literal["code", "cancel"] = "code"
    code: SiteCode | None = None

    @model_validator(mode="after")
    def _code(self) -> ScrapeControlRequest:
        if self.action == "code" and self.code is None:
            raise ValueError("action code needs the code")
        return self


class ScrapeControl(
    AccountRpc, name="credential-scrape", request=ScrapeControlRequest, response=CredentialScrapeView
):
    """Addressed by a scrape id: the replica running that scrape takes the site code or cancels it."""


__all__ = [
    "AcctCreateGroup",
    "AcctGetGroupMembers",
    "AcctJoinGroup",
    "AcctLeaveGroup",
    "AcctSearchGroups",
    "CheckStatus",
    "DescribeAccounts",
    "GetHistory",
    "Logout",
    "MarkRead",
    "PickAccounts",
    "ProxyCheck",
    "QrControl",
    "Reload",
    "ResolvePeer",
    "ScrapeControl",
    "Send",
    "SyncInfo",
    "UpdateProfile",
    "VerifyProxy",
]
