"""What the use cases need from Telegram, as small Protocols and plain data.

Telethon lives only behind these (in `telegram/`); unit tests pass fakes. Errors from Telegram arrive
as `TelegramFailure` (the RPC error name, e.g. `FLOOD_WAIT_30` becomes name `FLOOD_WAIT`, seconds 30),
network trouble as `TelegramUnreachable`, and an unknown peer as `PeerNotFound`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from tgm_contracts.commands.telegram_ops import CreateGroupRequest
from tgm_contracts.models.session import ChatView, GroupMemberView, TelegramProfile
from tgm_contracts.rpc_session import HistoryMessage, ResolvedPeer, SendRequest

# --- errors --------------------------------------------------------------------------------------

#: Errors that mean the stored session can no longer be used.
SESSION_DEAD = {
    "AUTH_KEY_UNREGISTERED",
    "AUTH_KEY_INVALID",
    "AUTH_KEY_PERM_EMPTY",
    "SESSION_REVOKED",
    "SESSION_EXPIRED",
    "AUTH_KEY_DUPLICATED",
    "USER_DEACTIVATED",
}
BANNED = {"USER_DEACTIVATED_BAN", "PHONE_NUMBER_BANNED"}
FLOOD = {"FLOOD_WAIT", "FLOOD_PREMIUM_WAIT", "SLOWMODE_WAIT", "FLOOD_TEST_PHONE_WAIT"}


class TelegramFailure(Exception):
    """Telegram refused a call. `name` is the error without its number (`FLOOD_WAIT`); `seconds` the
    number where the error carries one; `full` the name as Telegram spelled it (`FLOOD_WAIT_30`)."""

    def __init__(
        self,
        name: str,
        *,
        code: int | None = None,
        seconds: int | None = None,
        method: str = "",
        full: str | None = None,
    ):
        self.name = name
        self.code = code
        self.seconds = seconds
        self.method = method
        self._full = full
        super().__init__(self.full)

    @property
    def full(self) -> str:
        if self._full:
            return self._full
        if self.seconds is not None and self.name in FLOOD:
            return f"{self.name}_{self.seconds}"
        return self.name

    @property
    def is_flood(self) -> bool:
        return self.name in FLOOD

    @property
    def session_dead(self) -> bool:
        return self.name in SESSION_DEAD

    @property
    def banned(self) -> bool:
        return self.name in BANNED


class TelegramUnreachable(Exception):
    """The connection could not be made or was lost (`kind`: network, proxy, timeout)."""

    def __init__(self, message: str, kind: Literal["network", "proxy", "timeout"] = "network"):
        super().__init__(message)
        self.kind = kind


class PeerNotFound(Exception):
    """A username, id or phone the account cannot resolve."""


# --- plain data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxySpec:
    """A proxy in clear, only ever in memory (decrypted from the account for one connection)."""

    type: Literal["socks5", "socks4", "http", "mtproxy"]
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    rdns: bool = True

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class DeviceSpec:
    device_model: str
    system_version: str
    app_version: str
    lang_code: str = "en"
    system_lang_code: str = "en"


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything one TelegramClient needs; built per connection, never stored in clear."""

    key: str  # account id, QR session id or a throwaway name (logs only)
    session: str | None = field(repr=False)  # StringSession text, None for a fresh one
    api_id: int = 0
    api_hash: str = field(default="", repr=False)
    proxy: ProxySpec | None = None
    device: DeviceSpec | None = None
    receive_updates: bool = True


@dataclass
class SentCode:
    phone_code_hash: str
    code_type: str = "unknown"
    next_type: str | None = None
    length: int | None = None
    timeout: int | None = None


@dataclass
class LoginToken:
    token: bytes
    expires: datetime


@dataclass
class SentMessage:
    message_id: int
    peer_id: int
    chat_kind: str | None
    date: datetime
    media_ref: str | None = None


@dataclass
class ParticipantsPage:
    total: int
    members: list[GroupMemberView]
    #: Users of this page who have a profile photo (the `requirePhoto` filter).
    with_photo: set[int] = field(default_factory=set)


@dataclass
class CreatedChat:
    chat: ChatView
    invited: list[int]
    failed: list[dict[str, str]]
    invite_link: str | None


@dataclass
class InboundMessage:
    chat_kind: str
    chat_id: int
    chat_title: str | None
    chat_username: str | None
    message_id: int
    sender_id: int | None
    sender: Any  # TelegramUser | None
    text: str
    date: datetime
    reply_to_message_id: int | None
    media_kind: str | None
    mentioned: bool
    outgoing: bool
    forwarded: bool
    grouped_id: int | None
    edited: bool = False
    edit_date: datetime | None = None


@dataclass
class InboundJoin:
    chat_id: int
    chat_title: str | None
    users: list[Any]  # TelegramUser
    inviter_id: int | None
    via: str
    date: datetime


@dataclass
class InboundHandlers:
    on_message: Callable[[InboundMessage], Awaitable[None]]
    on_join: Callable[[InboundJoin], Awaitable[None]]
    #: The account itself left or was removed from the chat (id), as an update said.
    on_left: Callable[[int], Awaitable[None]] | None = None
    #: Asked first for a non-private new or edited message (chat id, outgoing, edited): False when it
    #: will not be published, so the adapter does not fetch its chat and sender (`fleet/inbound.py`).
    wanted: Callable[[int, bool, bool], Awaitable[bool]] | None = None


# --- protocols -----------------------------------------------------------------------------------


class AccountClient(Protocol):
    """One Telegram connection (logged in, or on its way to be)."""

    async def connect(self) -> None: ...
    async def disconnect(self) -> None: ...
    def is_connected(self) -> bool: ...
    def session_string(self) -> str: ...
    def socket_peer(self) -> str | None: ...
    async def wait_disconnected(self) -> None: ...

    async def get_me(self) -> TelegramProfile | None: ...
    async def get_bio(self) -> str | None: ...
    async def ping(self) -> float: ...

    async def send_code(self, phone: str, force_sms: bool) -> SentCode: ...
    async def resend_code(self, phone: str, phone_code_hash: str) -> SentCode: ...
    async def sign_in(self, phone: str, code: str, phone_code_hash: str) -> TelegramProfile: ...
    async def check_password(self, password: str) -> TelegramProfile: ...
    async def password_hint(self) -> str | None: ...
    async def export_login_token(self) -> LoginToken | TelegramProfile: ...
    def on_login_token(self, callback: Callable[[], Awaitable[None]]) -> None: ...
    async def log_out(self) -> bool: ...

    async def update_profile(
        self, first_name: str | None, last_name: str | None, bio: str | None
    ) -> TelegramProfile: ...
    async def update_username(self, username: str) -> TelegramProfile: ...
    async def set_photo(self, url: str) -> None: ...

    async def send_message(self, message: SendRequest, random_id: int) -> SentMessage: ...
    async def find_sent(self, peer: int | str, text: str, limit: int = 50) -> SentMessage | None: ...
    async def set_typing(self, peer: int | str) -> None: ...
    async def resolve(self, peer: int | str) -> ResolvedPeer: ...
    async def history(
        self, peer: int | str, limit: int, offset_id: int | None, min_id: int | None
    ) -> list[HistoryMessage]: ...
    async def mark_read(self, peer: int | str, max_id: int | None) -> None: ...

    async def chat_info(self, chat: int | str) -> ChatView: ...
    async def join(self, chat: int | str) -> tuple[ChatView | None, bool, bool]: ...
    async def leave(self, chat: int | str) -> tuple[int, bool]: ...
    async def search_chats(self, keyword: str, limit: int) -> list[ChatView]: ...
    async def participants(
        self, chat: int | str, *, filter: str, query: str | None, offset: int, limit: int
    ) -> ParticipantsPage: ...
    async def message_authors(
        self, chat: int | str, offset_id: int, limit: int
    ) -> tuple[list[tuple[Any, datetime, bool]], int | None]: ...
    async def create_chat(self, req: CreateGroupRequest) -> CreatedChat: ...

    def set_inbound(self, handlers: InboundHandlers) -> None: ...


class TelegramConnector(Protocol):
    """Builds clients and runs connection-level checks (proxy tests, credential tests)."""

    def client(self, spec: ConnectionSpec) -> AccountClient: ...

    async def probe_proxy(self, proxy: ProxySpec, timeout: float) -> float: ...
    async def exit_ip(self, proxy: ProxySpec | None, timeout: float) -> str: ...
    async def test_telegram(self, proxy: ProxySpec | None, timeout: float) -> float: ...
    async def test_credential(self, api_id: int, api_hash: str, timeout: float) -> float: ...
