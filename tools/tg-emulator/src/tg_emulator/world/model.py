"""Plain data of the world. No TL here: rendering to Telethon types lives in ``render``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.crypto import AuthKeyData

Peer = tuple[str, int]  # ("user", id) | ("chat", id) | ("channel", id)


@dataclass(slots=True)
class BoxMessage:
    """One copy of a private or basic-group message, in one user's message box."""

    id: int
    peer: Peer
    from_id: int
    out: bool
    date: int
    text: str
    gid: int  # delivery id shared by every copy of the same message
    action: Any = None  # a TL MessageAction for service messages
    entities: list | None = None
    reply_to_id: int | None = None
    reply_markup: Any = None  # a TL ReplyMarkup a bot sent with the message


@dataclass(slots=True)
class ChannelMessage:
    id: int
    from_id: int
    date: int
    text: str
    gid: int
    action: Any = None
    entities: list | None = None
    reply_to_id: int | None = None
    reply_markup: Any = None


@dataclass(slots=True)
class LogEntry:
    """An account-level update for getDifference: the update as this user sees it."""

    pts: int
    pts_count: int
    update: Any
    user_ids: tuple[int, ...] = ()
    chat_ids: tuple[int, ...] = ()
    is_message: bool = False
    date: int = 0


@dataclass(slots=True)
class ChannelLogEntry:
    pts: int
    pts_count: int
    msg_id: int | None  # a new message, else ``deleted`` ids
    deleted: tuple[int, ...] = ()


@dataclass(slots=True)
class DialogState:
    read_inbox_max_id: int = 0
    read_outbox_max_id: int = 0
    pinned: bool = False


@dataclass
class User:
    id: int
    access_hash: int
    phone: str
    first_name: str = ""
    last_name: str = ""
    username: str | None = None
    about: str = ""
    password: str | None = None
    password_hint: str = ""
    bot: bool = False
    banned: bool = False
    frozen: bool = False
    deleted: bool = False
    # Who may add this user to groups: everybody | contacts | nobody (USER_PRIVACY_RESTRICTED).
    privacy_invites: str = "everybody"
    login_code: str | None = None  # fixed login code for this user (else random)
    created: float = 0.0
    contacts: set[int] = field(default_factory=set)
    # Message box (private chats and basic groups share it, as on Telegram).
    pts: int = 0
    next_msg_id: int = 1
    messages: dict[int, BoxMessage] = field(default_factory=dict)
    history: dict[Peer, list[int]] = field(default_factory=dict)
    dialogs: dict[Peer, DialogState] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    gid_to_msg: dict[int, int] = field(default_factory=dict)
    random_ids: dict[int, int] = field(default_factory=dict)  # random_id -> delivery gid
    wrote_to_me: set[int] = field(default_factory=set)  # users who ever messaged this user
    channels: set[int] = field(default_factory=set)
    srp: Any = None  # cached (salt1, salt2, v) for the current password

    @property
    def display(self) -> str:
        return self.username or self.phone


@dataclass(slots=True)
class ChannelParticipant:
    user_id: int
    date: int
    inviter_id: int
    role: str = "member"  # creator | admin | member
    read_inbox_max_id: int = 0
    read_outbox_max_id: int = 0


@dataclass
class Chat:
    """A basic group."""

    id: int
    title: str
    creator_id: int
    date: int
    members: dict[int, int] = field(default_factory=dict)  # user id -> inviter id
    admins: set[int] = field(default_factory=set)
    version: int = 1
    about: str = ""
    invites: set[str] = field(default_factory=set)
    deactivated: bool = False


@dataclass
class Channel:
    """A supergroup (megagroup) or broadcast channel."""

    id: int
    access_hash: int
    title: str
    creator_id: int
    date: int
    megagroup: bool = True
    username: str | None = None
    about: str = ""
    slowmode_seconds: int = 0
    participants: dict[int, ChannelParticipant] = field(default_factory=dict)
    pts: int = 1
    next_msg_id: int = 1
    messages: dict[int, ChannelMessage] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    log: list[ChannelLogEntry] = field(default_factory=list)
    invites: set[str] = field(default_factory=set)
    last_post: dict[int, float] = field(default_factory=dict)  # user -> time of last post (slowmode)
    banned: set[int] = field(default_factory=set)  # users an admin banned (ban_in_channel)
    random_ids: dict[tuple[int, int], int] = field(default_factory=dict)
    last_activity: int = 0

    @property
    def broadcast(self) -> bool:
        return not self.megagroup


@dataclass
class Authorization:
    """A logged-in session: an auth key bound to a user."""

    hash: int
    user_id: int
    created: int
    api_id: int = 0
    device_model: str = ""
    system_version: str = ""
    app_version: str = ""
    ip: str = "127.0.0.1"
    active: int = 0


@dataclass
class AuthKeyRecord:
    key: AuthKeyData
    salt: int
    created: float
    user_id: int | None = None
    authorization: Authorization | None = None
    pending_password_user: int | None = None  # signed in with code/QR, 2FA password still due
    srp_b: Any = None  # (srp_id, b, B) of the last account.getPassword
    login_token: Any = None  # (token bytes, expires, accepted_by user id | None)
    revoked: str | None = None  # why the session was terminated, if it was


@dataclass
class SentCode:
    phone: str
    code: str
    hash: str
    expires: float
    attempts: int = 0


@dataclass
class Delivery:
    """One message as delivered, for tests and benchmarks to inspect."""

    seq: int
    gid: int
    from_user_id: int
    from_phone: str
    kind: str  # private | chat | channel
    to_user_id: int | None
    chat_id: int | None
    chat_title: str | None
    text: str
    date: float
    random_id: int | None
    msg_id: int
    recipients: int
    reply_markup: dict[str, Any] | None = None  # the keyboard a bot sent, as plain data

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "gid": self.gid,
            "from_user_id": self.from_user_id,
            "from_phone": self.from_phone,
            "kind": self.kind,
            "to_user_id": self.to_user_id,
            "chat_id": self.chat_id,
            "chat_title": self.chat_title,
            "text": self.text,
            "date": self.date,
            "random_id": self.random_id,
            "msg_id": self.msg_id,
            "recipients": self.recipients,
            "reply_markup": self.reply_markup,
        }
