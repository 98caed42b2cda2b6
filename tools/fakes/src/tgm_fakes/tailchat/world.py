"""The Tailchat server's state and rules, as the fork blooworet/tailchat applies them (read at
`d7bac095`): apps with their composite `appId:secret`, bot users, groups and DM converses, messages,
the command store with version/sha1 ETag, and the cache the server keeps its short-lived facts in
(callback traceIds for 30 s, the answer rate counter, click limits, command read caches).

Every rule raises `TcError`, which the HTTP layer turns into the server's error body. Time comes from
an injectable clock (`FakeClock`: real time plus an offset a test moves forward), so a test sees a
traceId expire without waiting 30 s.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

DEFAULT_APP_ID = "6a1b2c3d4e"
#: The stored appSecret is the whole composite string (35 hex chars of a sha256 with one `_` inside).
DEFAULT_APP_SECRET = f"{DEFAULT_APP_ID}:9f3c1a7e5b2d_8c4e6a0f1b3d5e7a9c2b4d6f8a0"
DEFAULT_APP_NAME = "TG-Matrix Bot"
BOT_USER_ID = "690000000000000000000b01"
OWNER_USER_ID = "690000000000000000000a00"
ALICE_ID = "690000000000000000000a01"
BOB_ID = "690000000000000000000a02"
GROUP_ID = "6900000000000000000c0001"
GROUP_CONVERSE_ID = "6900000000000000000d0001"

TRACE_TTL = 30.0  # inline.action.click caches `callback:trace:<id>` for 30 s
ANSWER_RATE_TTL = 60.0  # answerCallbackQuery re-sets its counter with a 60 s TTL on every counted call
CLICK_LIMIT, CLICK_WINDOW = 20, 10.0  # inline.action.click: 20 clicks per 10 s per user + action
CLICK_DEDUP_TTL = 60.0  # the same user + action + traceId is processed once per 60 s
DM_START_LIMIT, DM_START_WINDOW = 30, 60.0  # feature.botDmStartRateLimit defaults
COMMAND_CACHE_TTL = 3600.0

SCOPE_TYPES = ("default", "all_private_chats", "all_group_chats", "chat", "chat_member")
BOT_FIELDS = ("callbackUrl", "username", "allowGroup", "commands", "receiveAllGroupMessages")
USERNAME = re.compile(r"^(?!_)[A-Za-z0-9_]{5,32}(?<!_)$")
RESERVED_USERNAMES = frozenset(
    [
        "admin",
        "root",
        "system",
        "official",
        "support",
        "help",
        "security",
        "moderator",
        "staff",
        "team",
        "ops",
        "tailchat",
        "api",
        "www",
        "mail",
        "dev",
        "test",
        "about",
        "terms",
        "privacy",
        "status",
        "botfather",
    ]
)
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
DEEP_LINK = re.compile(r"^[A-Za-z0-9_]{1,64}$")
CALLBACK_URL = re.compile(r"^https?://[^\s/?#]+(:\d+)?([/?#]\S*)?$")
START = re.compile(r"^/start(?:\s+(.*))?$", re.I | re.S)


class TcError(Exception):
    """An error as the server answers it: HTTP `status` and the body `{name, message, code, type?, data?}`."""

    def __init__(
        self, status: int, name: str, message: str, type_: str | None = None, data: Any = None
    ) -> None:
        super().__init__(message)
        self.status, self.name, self.message, self.type, self.data = status, name, message, type_, data

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "message": self.message, "code": self.status}
        if self.type is not None:
            out["type"] = self.type
        if self.data is not None:
            out["data"] = self.data
        return out


def plain(message: str) -> TcError:
    """A plain `Error` thrown by an action: the server answers HTTP 500 (most openapi errors)."""
    return TcError(500, "Error", message)


def no_permission(message: str) -> TcError:
    return TcError(403, "NoPermissionError", message)


def data_not_found(message: str) -> TcError:
    return TcError(404, "DataNotFoundError", message)


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass
class FakeClock:
    """Wall time plus `offset` seconds; `advance(s)` moves the fake's time forward."""

    offset: float = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class TtlCache:
    """The server's cacher: values with a time to live, read against the world's clock."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._items: dict[str, tuple[Any, float]] = {}

    def get(self, key: str) -> Any:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self.clock.now():
            del self._items[key]
            return None
        return item[0]

    def set(self, key: str, value: Any, ttl: float) -> None:
        self._items[key] = (value, self.clock.now() + ttl)

    def delete(self, key: str) -> None:
        self._items.pop(key, None)

    def clean(self, prefix: str) -> None:
        for key in [k for k in self._items if k.startswith(prefix)]:
            del self._items[key]


def js_json(value: Any) -> str:
    """`JSON.stringify(value)`: compact, non-ASCII kept (what the server hashes for the ETag)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def iso(ts: float) -> str:
    """A JS `Date` as JSON: ISO 8601 with milliseconds and `Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def sanitize_reply_keyboard(value: Any) -> dict[str, Any] | None:
    """validators/replyKeyboard.ts: the keyboard kept (cut to 8x8, labels trimmed and cut to 32 chars,
    empty ones dropped; placeholder 64, toggleLabel 32, toggleIcon 64; trigger auto|button;
    visibleForUserIds 100), `{remove: true}` with only its placeholder, or None (dropped: no valid
    row, or over 8192 bytes of JSON)."""
    if not isinstance(value, dict):
        return None
    if value.get("remove") is True:
        out: dict[str, Any] = {"remove": True}
        if isinstance(value.get("placeholder"), str):
            out["placeholder"] = value["placeholder"][:64]
        return out
    keyboard = value.get("keyboard")
    if not isinstance(keyboard, list):
        return None
    rows = []
    for row in keyboard[:8]:
        if not isinstance(row, list):
            continue
        cols = []
        for button in row[:8]:
            text = button.get("text") if isinstance(button, dict) else None
            text = text.strip() if isinstance(text, str) else ""
            if text:
                cols.append({"text": _js_slice(text, 32)})
        if cols:
            rows.append(cols)
    if not rows:
        return None
    out = {"keyboard": rows}
    for flag in ("resize", "one_time"):
        if isinstance(value.get(flag), bool):
            out[flag] = value[flag]
    if isinstance(value.get("placeholder"), str):
        out["placeholder"] = _js_slice(value["placeholder"], 64)
    selective = value.get("selective")
    if isinstance(selective, dict) and isinstance(selective.get("visibleForUserIds"), list):
        ids = [x for x in selective["visibleForUserIds"] if isinstance(x, str) and x][:100]
        if ids:
            out["selective"] = {"visibleForUserIds": ids}
    if isinstance(value.get("trigger"), str) and value["trigger"].lower() in ("auto", "button"):
        out["trigger"] = value["trigger"].lower()
    if isinstance(value.get("toggleLabel"), str):
        out["toggleLabel"] = _js_slice(value["toggleLabel"], 32)
    if isinstance(value.get("toggleIcon"), str):
        out["toggleIcon"] = _js_slice(value["toggleIcon"], 64)
    if len(js_json(out).encode()) > 8192:
        return None
    return out


def _js_slice(text: str, n: int) -> str:
    """`text.slice(0, n)` of JavaScript: n UTF-16 code units (an emoji counts two)."""
    units = text.encode("utf-16-le")
    if len(units) <= 2 * n:
        return text
    return units[: 2 * n].decode("utf-16-le", errors="ignore")


def js_length(text: str) -> int:
    """`text.length` of JavaScript: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class TcUser:
    id: str
    nickname: str
    type: str = "normalUser"  # or "openapiBot"
    email: str = ""
    avatar: str = ""
    username: str | None = None

    def public(self) -> dict[str, Any]:
        return {"_id": self.id, "nickname": self.nickname, "email": self.email, "avatar": self.avatar}


@dataclass
class TcApp:
    app_id: str
    app_secret: str  # the composite "<appId>:<secret>", as stored
    app_name: str
    owner: str
    bot_user_id: str
    capability: list[str] = field(default_factory=lambda: ["bot"])
    app_icon: str = ""
    app_desc: str = ""
    bot: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def doc(self) -> dict[str, Any]:
        """The whole app document (getForIntegration returns it, appSecret included)."""
        return {
            "_id": self.bot_user_id[:16] + "a" * 8,
            "owner": self.owner,
            "appId": self.app_id,
            "appSecret": self.app_secret,
            "appName": self.app_name,
            "appDesc": self.app_desc,
            "appIcon": self.app_icon,
            "capability": list(self.capability),
            "bot": dict(self.bot),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
        }


@dataclass
class TcGroup:
    id: str
    name: str
    owner: str
    members: list[str]
    panels: list[str]
    deleters: set[str] = field(default_factory=set)  # who holds core.deleteMessage (the owner always)
    muted: set[str] = field(default_factory=set)


@dataclass
class CallbackAnswer:
    """What `notify:bot.callback.answer` shows the clicking user."""

    user_id: str
    text: str
    show_alert: bool
    trace_id: str
    ts: int


class TailchatWorld:
    """Users, apps, groups, converses and messages of one fake server, plus its cache and clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or FakeClock()
        self.lock = threading.RLock()
        self.seed()

    def seed(self) -> None:
        """The world every fresh fake starts with: one app with the bot capability (no callback URL
        yet), its bot user, two people and the owner, and a group with one channel holding them all."""
        self.cache = TtlCache(self.clock)
        self.users: dict[str, TcUser] = {}
        self.apps: dict[str, TcApp] = {}
        self.groups: dict[str, TcGroup] = {}
        self.dms: dict[str, list[str]] = {}  # DM converse id -> its two members
        self.messages: dict[str, dict[str, Any]] = {}
        self.deleted: list[dict[str, Any]] = []
        self.answers: list[CallbackAnswer] = []
        # botDmStartFromTyped is the server's feature flag; commandReadCache is a switch of the fake only
        # (the server always caches command reads).
        self.features: dict[str, Any] = {"botDmStartFromTyped": False, "commandReadCache": True}
        self._ids = itertools.count(1)
        for uid, name in ((OWNER_USER_ID, "owner"), (ALICE_ID, "Alice"), (BOB_ID, "Bob")):
            self.users[uid] = TcUser(uid, name, email=f"{name.lower()}@example.com")
        self.add_app(DEFAULT_APP_NAME, OWNER_USER_ID, DEFAULT_APP_ID, DEFAULT_APP_SECRET, BOT_USER_ID)
        self.groups[GROUP_ID] = TcGroup(
            GROUP_ID,
            "TG-Matrix test group",
            ALICE_ID,
            [ALICE_ID, BOB_ID, BOT_USER_ID],
            [GROUP_CONVERSE_ID],
            deleters={ALICE_ID},
        )

    def reset(self) -> None:
        with self.lock:
            if isinstance(self.clock, FakeClock):
                self.clock.offset = 0.0
            self.seed()

    # --- ids and time -----------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def new_id(self) -> str:
        """A 24-hex ObjectId: seconds, then a counter."""
        return f"{int(self.now()) & 0xFFFFFFFF:08x}{next(self._ids):016x}"

    # --- setup used by the test API ---------------------------------------------------------------

    def add_user(self, nickname: str) -> TcUser:
        user = TcUser(self.new_id(), nickname, email=f"{self.new_id()}@example.com")
        self.users[user.id] = user
        return user

    def add_app(
        self,
        name: str,
        owner: str = OWNER_USER_ID,
        app_id: str | None = None,
        app_secret: str | None = None,
        bot_user_id: str | None = None,
        capability: list[str] | None = None,
        **bot: Any,
    ) -> TcApp:
        app_id = app_id or hashlib.sha1(self.new_id().encode()).hexdigest()[:10]
        if app_secret is None:
            digest = hashlib.sha256(self.new_id().encode()).hexdigest()[:35]
            app_secret = f"{app_id}:{digest[:17]}_{digest[17:]}"
        bot_user_id = bot_user_id or self.new_id()
        app = TcApp(
            app_id,
            app_secret,
            name,
            owner,
            bot_user_id,
            ["bot"] if capability is None else capability,
            bot={k: v for k, v in bot.items() if v is not None},
            created_at=self.now(),
        )
        self.apps[app_id] = app
        self.users[bot_user_id] = TcUser(
            bot_user_id, name, "openapiBot", f"open_{app_id}@openapi.msgbyte.com"
        )
        return app

    def add_group(self, name: str, owner: str, members: list[str]) -> TcGroup:
        group = TcGroup(
            self.new_id(), name, owner, list(dict.fromkeys([owner, *members])), [self.new_id()], {owner}
        )
        self.groups[group.id] = group
        return group

    def app_of_bot(self, bot_user_id: str) -> TcApp | None:
        return next((a for a in self.apps.values() if a.bot_user_id == bot_user_id), None)

    # --- authentication -----------------------------------------------------------------------------

    def _parse_secret(self, token: str) -> str:
        idx = token.find(":")
        if idx <= 0 or idx >= len(token) - 1:
            raise plain("Invalid appSecret format")
        return token[:idx]

    def authenticate(self, header: str) -> TcApp:
        """The gateway's `X-App-Secret` step (openapi.app.authToken with capability bot)."""
        app = self.apps.get(self._parse_secret(header))
        if app is None:
            raise plain("Not found open app with the provided token")
        if app.app_secret != header:
            raise plain("Open app secret not match")
        if "bot" not in app.capability:
            raise plain("Open app not enabled capability:bot")
        return app

    def for_integration(self, app_secret: str | None, app_id: str | None) -> TcApp:
        """openapi.app.getForIntegration."""
        if not app_id and not app_secret:
            raise plain("Either appId or appSecret must be provided")
        if app_secret:
            app = self.apps.get(self._parse_secret(app_secret))
            if app is None:
                raise plain("Not found openapp")
            if app.app_secret != app_secret:
                raise plain("Open app secret not match")
            return app
        found = self.apps.get(str(app_id))
        if found is None:
            raise plain("Not found openapp")
        return found

    # --- messages -----------------------------------------------------------------------------------

    def _check_converse(self, user_id: str, converse_id: str, group_id: str | None) -> None:
        if group_id:
            group = self.groups.get(group_id)
            if group is None:
                # getGroupInfo answers null and the permission check reads `.members` of it.
                raise TcError(500, "TypeError", "Cannot read properties of null (reading 'members')")
            if user_id not in group.members:
                raise no_permission("没有当前会话权限")
            if user_id in group.muted:
                raise plain("您因为被禁言无法发送消息")
        else:
            members = self.dms.get(converse_id)
            if members is None:
                raise TcError(404, "NotFoundError", "没有找到会话信息")
            if user_id not in members:
                raise no_permission("没有当前会话权限")

    def post_message(
        self,
        author: str,
        converse_id: str,
        content: str,
        group_id: str | None = None,
        plain_text: str | None = None,
        meta: Any = None,
    ) -> dict[str, Any]:
        """chat.message.sendMessage: checks the converse, sanitises meta.replyKeyboard, stores."""
        meta = {} if meta is None else meta
        if isinstance(meta, dict) and "replyKeyboard" in meta:
            keyboard = sanitize_reply_keyboard(meta["replyKeyboard"])
            meta = {k: v for k, v in meta.items() if k != "replyKeyboard"}
            if keyboard is not None:
                meta["replyKeyboard"] = keyboard
        self._check_converse(author, converse_id, group_id)
        now = iso(self.now())
        message: dict[str, Any] = {
            "_id": self.new_id(),
            "content": content,
            "author": author,
            "converseId": converse_id,
            "reactions": [],
            "hasRecall": False,
            "isEdited": False,
            "meta": meta,
            "createdAt": now,
            "updatedAt": now,
            "__v": 0,
        }
        if group_id:
            message["groupId"] = group_id
        self.messages[message["_id"]] = message
        return self.public_message(message)

    @staticmethod
    def public_message(message: dict[str, Any]) -> dict[str, Any]:
        """A copy of a stored message, as the server answers it."""
        return dict(message)

    def edit_message(self, user_id: str, message_id: str, content: str | None, meta: Any) -> dict[str, Any]:
        """chat.message.editMessage: the author or the group owner; `meta` replaces the whole meta
        (no keyboard sanitising), so what is not re-sent is gone."""
        message = self.messages.get(message_id)
        if message is None:
            raise data_not_found("该消息未找到")
        group = self.groups.get(message.get("groupId") or "")
        if message["author"] != user_id and not (group and group.owner == user_id):
            raise no_permission("编辑失败, 没有权限")
        if content is not None:
            message["content"] = content
        if meta is not None:
            message["meta"] = meta
        message["isEdited"] = True
        message["editedAt"] = message["updatedAt"] = iso(self.now())
        return self.public_message(message)

    def delete_message(self, user_id: str, message_id: str) -> bool:
        """chat.message.deleteMessage: a DM message only by its author (a plain Error otherwise); a
        group message needs core.deleteMessage (403 otherwise)."""
        message = self.messages.get(message_id)
        if message is None:
            raise data_not_found("该消息未找到")
        group_id = message.get("groupId")
        if not group_id:
            if message["author"] != user_id:
                raise plain("无法删除私人信息")
        else:
            group = self.groups.get(group_id)
            if group is None or (user_id != group.owner and user_id not in group.deleters):
                raise no_permission("没有删除权限")
        self.deleted.append(self.messages.pop(message_id))
        return True

    def ensure_dm(self, self_id: str, other_id: str) -> str:
        """chat.converse.ensureDMWithUser: the existing two-member DM, or a new one."""
        if not self_id or not other_id or self_id == other_id:
            raise plain("invalid userId")
        if not OBJECT_ID.match(other_id):
            # new Types.ObjectId(userId) throws on anything but 24 hex characters.
            raise TcError(
                500,
                "BSONError",
                "input must be a 24 character hex string, 12 byte Uint8Array, or an integer",
            )
        for converse_id, members in self.dms.items():
            if sorted(members) == sorted([self_id, other_id]):
                return converse_id
        converse_id = self.new_id()
        self.dms[converse_id] = [self_id, other_id]
        return converse_id

    def count(self, key: str, limit: int, window: float, refusal: TcError) -> None:
        """The server's counters (`{n, ts}` re-set with the window as TTL on every counted call, so
        the window runs from the last counted call): `refusal` once `limit` calls are counted."""
        rec = self.cache.get(key)
        if rec is None:
            self.cache.set(key, {"n": 1, "ts": self.now_ms()}, window)
            return
        if rec["n"] >= limit:
            raise refusal
        self.cache.set(key, {"n": rec["n"] + 1, "ts": rec["ts"]}, window)

    # --- button callbacks ---------------------------------------------------------------------------

    def answer_callback(
        self, app: TcApp, trace_id: str, user_id: str, text: str, show_alert: bool
    ) -> dict[str, Any]:
        """openapi.bot.answerCallbackQuery after getForIntegration, in the server's order: trace,
        owner bot, clicking user, text length, rate limit; the trace is consumed only on success."""
        trace = self.cache.get(f"callback:trace:{trace_id}")
        if not trace:
            raise plain("Invalid or expired traceId")
        if trace["botUserId"] != app.bot_user_id:
            raise plain("TraceId does not belong to this bot")
        if trace["fromUserId"] != user_id:
            raise plain("UserId mismatch")
        if js_length(text) > 200:
            raise plain("Text too long (max 200 characters)")
        self.count(
            f"callback:rate:{app.bot_user_id}",
            app.bot.get("callbackAnswerRateLimit", 60),
            ANSWER_RATE_TTL,
            plain("Rate limit exceeded"),
        )
        self.answers.append(CallbackAnswer(user_id, text, show_alert, trace_id, self.now_ms()))
        self.cache.delete(f"callback:trace:{trace_id}")
        return {"success": True}

    def click(
        self, user_id: str, message_id: str, action_id: str, trace_id: str | None
    ) -> tuple[dict[str, Any], TcApp | None, dict[str, Any] | None]:
        """inline.action.click for a button of a stored message: (the click's answer, the app to
        call back, the buttonCallback body) — no callback for command/url/deeplink, for a button
        without a bot's `params.botId`, or for a repeated click within 60 s."""
        message = self.messages.get(message_id)
        actions = ((message or {}).get("meta") or {}).get("inlineActions") or {}
        action = next(
            (a for a in actions.get("actions") or [] if isinstance(a, dict) and a.get("id") == action_id),
            None,
        )
        if message is None or action is None:
            raise TcError(400, "MoleculerClientError", "Invalid action payload")
        kind = action.get("type")
        if kind == "command":
            raise TcError(400, "MoleculerClientError", "COMMAND_NOT_ALLOWED", "COMMAND_NOT_ALLOWED")
        params: dict[str, Any] = action["params"] if isinstance(action.get("params"), dict) else {}
        self.count(
            f"inline:click:{user_id}:{action_id}",
            CLICK_LIMIT,
            CLICK_WINDOW,
            TcError(429, "MoleculerClientError", "Too Many Requests", "RATE_LIMIT"),
        )
        dedup_key = f"inline:click:done:{user_id}:{action_id}:{trace_id or ''}"
        if self.cache.get(dedup_key):
            return (
                {"ok": True, "routed": False, "cached": True, "analytics": {"traceId": trace_id}},
                None,
                None,
            )
        bot_id = str(params.get("botId") or "")
        bot = self.users.get(bot_id)
        app = self.app_of_bot(bot_id) if bot and bot.type == "openapiBot" else None
        body = None
        route: dict[str, Any] | None = None
        if app is not None and kind in ("invoke", "modal"):
            if trace_id:
                self.cache.set(
                    f"callback:trace:{trace_id}",
                    {"botUserId": bot_id, "fromUserId": user_id, "ts": self.now_ms()},
                    TRACE_TTL,
                )
            payload = {
                "messageAuthor": user_id,
                "converseId": message["converseId"],
                "groupId": message.get("groupId"),
                "originalMessageId": message_id,
                "actionId": action_id,
                "type": kind,
                "params": params,
                "traceId": trace_id,
                "ts": self.now_ms(),
            }
            # JSON.stringify drops undefined: absent ids and traceId are left out, not null.
            body = {"type": "buttonCallback", "payload": {k: v for k, v in payload.items() if v is not None}}
            route = {"botUserId": bot_id, "event": "bot.inline.invoke"}
        elif kind == "url" and params.get("url"):
            route = {"type": "url", "target": params["url"]}
        elif kind == "deeplink" and (params.get("link") or params.get("url")):
            route = {"type": "deeplink", "target": params.get("link") or params.get("url")}
        self.cache.set(dedup_key, 1, CLICK_DEDUP_TTL)
        answer = {"ok": True, "routed": body is not None, "route": route, "analytics": {"traceId": trace_id}}
        return answer, app, body

    # --- bot info and commands ----------------------------------------------------------------------

    def set_bot_info(self, app: TcApp, name: Any, value: Any) -> None:
        """openapi.app.setAppBotInfo, field by field, with the server's messages."""
        if name not in BOT_FIELDS:
            raise plain("Not allowed fields")
        if name == "callbackUrl" and not isinstance(value, str):
            raise plain("`callbackUrl` should be a string")
        if name == "username":
            self._check_username(app, value)
        if name in ("receiveAllGroupMessages", "allowGroup") and not isinstance(value, bool):
            raise plain(f"`{name}` should be a boolean")
        if name == "commands":
            value = self._clean_commands(value)
        app.bot[name] = value
        if name == "username":
            self.users[app.bot_user_id].username = value
        if name == "commands":
            app.bot["version"] = int(app.bot.get("version") or 0) + 1
            app.bot["etag"] = hashlib.sha1(js_json(value or []).encode()).hexdigest()
            app.bot["updatedAt"] = self.now_ms()
            self.cache.clean(f"getBotCommands:{app.app_id}")
            self.cache.clean(f"getBotCommandsByScope:{app.app_id}")

    def _check_username(self, app: TcApp, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise plain("`username` should be a string or null")
        if app.bot.get("username") and value:
            raise plain("Bot username already exists and cannot be modified")
        if value:
            lower = value.lower()
            if not USERNAME.match(value) or (
                lower != "botfather" and (not lower.endswith("bot") or lower in RESERVED_USERNAMES)
            ):
                raise plain("Invalid bot username format")
            if any(u.username and u.username.lower() == lower for u in self.users.values()):
                raise plain("Username already exists")

    @staticmethod
    def _clean_commands(value: Any) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise plain("`commands` should be an array")
        cleaned = []
        for cmd in value:
            if not isinstance(cmd, dict):
                raise plain("Each command should be an object")
            item: dict[str, Any] = {"command": cmd.get("command"), "description": cmd.get("description")}
            if cmd.get("scope"):
                item["scope"] = cmd["scope"]
            cleaned.append(item)
        for cmd in cleaned:
            name, desc, scope = cmd["command"], cmd["description"], cmd.get("scope")
            if not name or not isinstance(name, str):
                raise plain("Command name is required and should be a string")
            if not desc or not isinstance(desc, str):
                raise plain("Command description is required and should be a string")
            if not re.fullmatch(r"[a-z0-9_]+", name):
                raise plain(f"Invalid command name format: {name}")
            if len(name) > 32:
                raise plain(f"Command name too long: {name} (max 32 characters)")
            if js_length(desc) > 256:
                raise plain("Command description too long (max 256 characters)")
            if scope is not None:
                if not isinstance(scope, dict):
                    raise plain("Command scope should be an object")
                kind = scope.get("type")
                if kind not in SCOPE_TYPES:
                    raise plain(f"Invalid scope type: {_js_str(kind)}")
                if kind in ("chat", "chat_member") and not (
                    scope.get("chat_id") and isinstance(scope["chat_id"], str)
                ):
                    raise plain(f"chat_id is required for scope type: {kind}")
                if kind == "chat_member" and not (scope.get("user_id") and isinstance(scope["user_id"], str)):
                    raise plain("user_id is required for scope type: chat_member")
        if len({c["command"] for c in cleaned}) != len(cleaned):
            raise plain("Command names must be unique")
        if len(cleaned) > 50:
            raise plain("Maximum 50 commands allowed per bot")
        return cleaned

    def _command_app(self, app_id: str) -> TcApp:
        app = self.apps.get(app_id)
        if app is None:
            raise plain("Not found openapp")
        if "bot" not in app.capability:
            raise plain("Bot capability is not enabled for this app")
        return app

    @staticmethod
    def _not_modified(app: TcApp, if_version: Any, if_etag: Any) -> bool:
        version, etag = app.bot.get("version") or 0, app.bot.get("etag")
        return (if_version is not None and if_version == version) or bool(
            if_etag and etag and if_etag == etag
        )

    def commands(self, app_id: str, scope: Any, if_version: Any, if_etag: Any) -> dict[str, Any]:
        """openapi.app.getBotCommands, cached by appId alone for 1 h (ifVersion/ifEtag are not in
        the key, so a cached answer is returned whatever they say) until the commands change."""
        key = f"getBotCommands:{app_id}"
        cached = self.cache.get(key) if self.features.get("commandReadCache") else None
        if cached is not None:
            return cached
        app = self._command_app(app_id)
        commands = app.bot.get("commands") or []
        if scope:
            commands = [c for c in commands if (c.get("scope") or {}).get("type", "default") == scope]
        answer = self._commands_answer(app, commands, if_version, if_etag, {})
        self.cache.set(key, answer, COMMAND_CACHE_TTL)
        return answer

    def commands_by_scope(
        self, app_id: str, scope_type: str, chat_id: Any, user_id: Any, if_version: Any, if_etag: Any
    ) -> dict[str, Any]:
        """openapi.app.getBotCommandsByScope: the commands of exactly that scope (chat/chat_member
        matched on chat_id/user_id), cached by appId, scopeType, chatId and userId."""
        key = f"getBotCommandsByScope:{app_id}|{scope_type}|{chat_id}|{user_id}"
        cached = self.cache.get(key) if self.features.get("commandReadCache") else None
        if cached is not None:
            return cached
        app = self._command_app(app_id)

        def visible(cmd: dict[str, Any]) -> bool:
            scope = cmd.get("scope") or {}
            if scope.get("type", "default") != scope_type:
                return False
            if scope_type in ("chat", "chat_member") and (
                not scope.get("chat_id") or scope["chat_id"] != chat_id
            ):
                return False
            return not (
                scope_type == "chat_member" and (not scope.get("user_id") or scope["user_id"] != user_id)
            )

        commands = [c for c in app.bot.get("commands") or [] if visible(c)]
        answer = self._commands_answer(app, commands, if_version, if_etag, {"scopeType": scope_type})
        self.cache.set(key, answer, COMMAND_CACHE_TTL)
        return answer

    def _commands_answer(
        self, app: TcApp, commands: list[Any], if_version: Any, if_etag: Any, extra: dict[str, Any]
    ) -> dict[str, Any]:
        version, etag = app.bot.get("version") or 0, app.bot.get("etag")
        if self._not_modified(app, if_version, if_etag):
            return {"appId": app.app_id, "notModified": True, "version": version, "etag": etag}
        return {
            "appId": app.app_id,
            "appName": app.app_name,
            **extra,
            "commands": commands,
            "version": version,
            "etag": etag,
        }

    def command_meta(self, app_id: str) -> dict[str, Any]:
        app = self.apps.get(app_id)
        if app is None:
            raise plain("Not found openapp")
        return {
            "appId": app.app_id,
            "version": app.bot.get("version") or 0,
            "etag": app.bot.get("etag"),
            "updatedAt": app.bot.get("updatedAt"),
        }

    def commands_by_user_ids(
        self,
        caller: str,
        bot_user_ids: list[str],
        converse_id: str,
        group_id: Any,
        if_version: Any,
        if_etag: Any,
    ) -> list[dict[str, Any]]:
        """openapi.app.getBotCommandsByUserIds: exactly one bot; the commands visible in that converse
        to the caller; `[]` when none."""
        if not bot_user_ids:
            return []
        if len(bot_user_ids) != 1:
            raise plain("Only a single botUserId is allowed per request")
        bot = self.users.get(bot_user_ids[0])
        app = self.app_of_bot(bot.id) if bot and bot.type == "openapiBot" else None
        if app is None or "bot" not in app.capability or not app.bot.get("commands"):
            return []

        def visible(cmd: dict[str, Any]) -> bool:
            scope = cmd.get("scope")
            if not scope or scope.get("type") == "default":
                return True
            kind = scope.get("type")
            if kind == "all_private_chats":
                return not group_id
            if kind == "all_group_chats":
                return bool(group_id)
            if kind == "chat":
                return scope.get("chat_id") == converse_id
            if kind == "chat_member":
                return scope.get("chat_id") == converse_id and scope.get("user_id") == caller
            return False

        commands = [c for c in app.bot["commands"] if visible(c)]
        if not commands:
            return []
        version, etag = app.bot.get("version") or 0, app.bot.get("etag")
        if self._not_modified(app, if_version, if_etag):
            return [
                {
                    "appId": app.app_id,
                    "userId": app.bot_user_id,
                    "notModified": True,
                    "version": version,
                    "etag": etag,
                }
            ]
        return [
            {
                "appId": app.app_id,
                "appName": app.app_name,
                "appIcon": app.app_icon,
                "userId": app.bot_user_id,
                "commands": commands,
                "version": version,
                "etag": etag,
            }
        ]


def _js_str(value: Any) -> str:
    """`${value}` of JavaScript for what JSON can carry."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
