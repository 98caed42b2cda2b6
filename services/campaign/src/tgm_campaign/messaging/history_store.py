"""Chat history: the conversations of fleet accounts, built from tg-session's inbound and outbound
events (and from the queue's own deliveries, and imports), plus a directory of the users we met.

Collections:

- `messages`: one document per message of a private chat (and per message our accounts posted in a
  group), keyed so that the same Telegram message recorded twice (an event redelivered, the queue
  and tg-session both reporting a delivery) is stored once;
- `conversations`: one per (account, user) with counters and the last message;
- `peers`: one per Telegram user we know (`id:<user id>`), with username, names and phone, so a job
  addressed to `@alice` and a ban of user 123 are known to concern the same person.

Group traffic written by others is not stored: monitored groups can be large and that is the
monitoring feature's data, not a conversation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from tgm_contracts.models.campaign import ChatMessageView, ConversationView, PeerView, peer_key
from tgm_runtime.cursor import Keyset

from .compliance import user_keys
from .window_store import TimeWindow, between

PREVIEW = 300


def message_id_key(account_id: str, chat_key: str, message_id: int) -> str:
    return f"{account_id}|{chat_key}|{message_id}"


def content_key(account_id: str, chat_key: str, direction: str, date: datetime, text: str | None) -> str:
    digest = hashlib.sha256(f"{direction}|{date.isoformat()}|{text or ''}".encode()).hexdigest()[:24]
    return f"{account_id}|{chat_key}|h{digest}"


def conv_id(account_id: str, chat_key: str) -> str:
    return f"{account_id}|{chat_key}"


def peer_view(doc: Mapping[str, Any] | None, chat_key: str, kind: str = "user") -> PeerView:
    doc = doc or {}
    user_id = doc.get("user_id")
    if user_id is None and chat_key.startswith("id:"):
        number = int(chat_key[3:])
        if number > 0:
            user_id = number
    chat_id = int(chat_key[3:]) if kind != "user" and chat_key.startswith("id:") else None
    username = doc.get("username")
    if username is None and chat_key.startswith("@"):
        username = chat_key[1:]
    return PeerView(
        kind=kind if kind in ("user", "group", "channel") else "unknown",
        user_id=user_id if kind == "user" else None,
        chat_id=chat_id,
        username=username,
        first_name=doc.get("first_name"),
        last_name=doc.get("last_name"),
        title=doc.get("title"),
    )


#: Conversations, most recently active first.
CONVERSATION_ORDER = Keyset(("last_at", "_id"), descending=True)


class HistoryStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.messages = db["messages"]
        self.conversations = db["conversations"]
        self.peers = db["peers"]

    # --- the directory of users --------------------------------------------------------------------

    async def remember_user(
        self,
        user_id: int,
        *,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        phone: str | None = None,
        at: datetime,
    ) -> None:
        fields: dict[str, Any] = {"user_id": user_id, "updated_at": at}
        for name, value in (
            ("username", username.lower().lstrip("@") if username else None),
            ("first_name", first_name),
            ("last_name", last_name),
            ("phone", phone.lstrip("+") if phone else None),
        ):
            if value:
                fields[name] = value
        keys = user_keys(user_id, fields.get("username"), fields.get("phone"))
        await self.peers.update_one(
            {"_id": peer_key(user_id)},
            {"$set": fields, "$addToSet": {"keys": {"$each": keys}}},
            upsert=True,
        )

    async def aliases(self, keys: Iterable[str]) -> dict[str, list[str]]:
        """key -> every key of the same user (the key itself first)."""
        keys = list(dict.fromkeys(keys))
        out = {k: [k] for k in keys}
        if not keys:
            return out
        async for doc in self.peers.find({"keys": {"$in": keys}}, {"keys": 1}):
            for k in doc.get("keys") or []:
                if k in out:
                    out[k] = [k, *[x for x in doc["keys"] if x != k]]
        return out

    async def user(self, key: str) -> dict[str, Any] | None:
        return await self.peers.find_one({"keys": key})

    async def users(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """key -> the user's directory document, for the keys we know."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, dict[str, Any]] = {}
        if not keys:
            return out
        async for doc in self.peers.find({"keys": {"$in": keys}}):
            for k in doc.get("keys") or []:
                if k in keys:
                    out[k] = doc
        return out

    # --- recording ---------------------------------------------------------------------------------

    async def record(
        self,
        *,
        account_id: str,
        chat_key: str,
        private: bool,
        direction: str,
        date: datetime,
        text: str | None,
        message_id: int | None = None,
        media_kind: str | None = None,
        job_id: str | None = None,
        source: str = "telegram",
        reply_to: int | None = None,
        peer_keys: Sequence[str] = (),
    ) -> bool:
        """Store one message; False when it was already stored (then nothing changes)."""
        mid = (
            message_id_key(account_id, chat_key, message_id)
            if message_id is not None
            else content_key(account_id, chat_key, direction, date, text)
        )
        doc = {
            "_id": mid,
            "account_id": account_id,
            "chat_key": chat_key,
            "peer_keys": list(dict.fromkeys([chat_key, *peer_keys])),
            "private": private,
            "direction": direction,
            "message_id": message_id,
            "text": text,
            "media_kind": media_kind,
            "date": date,
            "job_id": job_id,
            "source": source,
            "reply_to": reply_to,
        }
        try:
            await self.messages.insert_one(doc)
        except DuplicateKeyError:
            if job_id is not None:  # tg-session's echo of a queue delivery: link the job
                await self.messages.update_one({"_id": mid, "job_id": None}, {"$set": {"job_id": job_id}})
            return False
        if private:
            await self._touch_conversation(doc)
        return True

    async def _touch_conversation(self, msg: Mapping[str, Any]) -> None:
        """Counters, last message and unread count of the conversation, in one write by id (the
        conditions are decided here from the current document: the embedded database server does not
        use the id index for a filter with `$or`)."""
        cid = conv_id(msg["account_id"], msg["chat_key"])
        incoming = msg["direction"] == "in"
        date = msg["date"]
        current = await self.conversations.find_one({"_id": cid}, {"last_message.date": 1, "last_out_at": 1})
        last = {
            "id": msg["_id"],
            "direction": msg["direction"],
            "text": (msg.get("text") or "")[:PREVIEW] or None,
            "media_kind": msg.get("media_kind"),
            "date": date,
            "message_id": msg.get("message_id"),
            "job_id": msg.get("job_id"),
            "source": msg.get("source"),
            "reply_to": msg.get("reply_to"),
        }
        last_date = ((current or {}).get("last_message") or {}).get("date")
        last_out = (current or {}).get("last_out_at")
        set_: dict[str, Any] = {}
        inc: dict[str, int] = {"message_count": 1, "in_count": 1 if incoming else 0}
        if last_date is None or last_date <= date:  # events can come late: only newer replaces it
            set_["last_message"] = last
        if incoming:
            if last_out is None or last_out < date:
                inc["unread_count"] = 1
        elif last_out is None or last_out <= date:
            set_["unread_count"] = 0
        update: dict[str, Any] = {
            "$setOnInsert": {"account_id": msg["account_id"], "chat_key": msg["chat_key"]},
            "$addToSet": {"peer_keys": {"$each": msg["peer_keys"]}},
            "$inc": inc,
            "$max": {"last_at": date, "last_in_at" if incoming else "last_out_at": date},
        }
        if set_:
            update["$set"] = set_
        await self.conversations.update_one({"_id": cid}, update, upsert=True)

    async def save_many(self, docs: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Imported messages (already keyed): (saved, duplicates)."""
        saved = dups = 0
        for doc in docs:
            try:
                await self.messages.insert_one(doc)
            except DuplicateKeyError:
                dups += 1
                continue
            saved += 1
            if doc["private"]:
                await self._touch_conversation(doc)
        return saved, dups

    # --- reading -----------------------------------------------------------------------------------

    async def talking_to(self, keys: Iterable[str]) -> dict[str, set[str]]:
        """peer key -> accounts the user has written to (so messages to them are not cold)."""
        keys = list(dict.fromkeys(keys))
        out: dict[str, set[str]] = {k: set() for k in keys}
        if not keys:
            return out
        cursor = self.conversations.find(
            {"peer_keys": {"$in": keys}, "in_count": {"$gt": 0}}, {"account_id": 1, "peer_keys": 1}
        )
        async for doc in cursor:
            for k in doc.get("peer_keys") or []:
                if k in out:
                    out[k].add(doc["account_id"])
        return out

    async def contacted(self, keys: Iterable[str]) -> bool:
        """Any account has a conversation (either direction) with this user."""
        return bool(await self.conversations.count_documents({"peer_keys": {"$in": list(keys)}}, limit=1))

    async def page(
        self,
        *,
        keys: Sequence[str],
        account_id: str | None,
        since: datetime | None,
        until: datetime | None,
        search: str | None,
        newest_first: bool,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = {"peer_keys": {"$in": list(keys)}}
        if account_id:
            query["account_id"] = account_id
        dates = between(since, until)
        if dates:
            query["date"] = dates
        if search:
            query["text"] = {"$regex": _literal(search), "$options": "i"}
        order = Keyset(("date", "_id"), descending=newest_first)
        docs = (
            await self.messages.find(order.where(query, cursor)).sort(order.sort()).limit(limit + 1).to_list()
        )
        return order.page(docs, limit)

    async def conversation_page(
        self,
        *,
        account_id: str | None,
        unread_only: bool,
        since: datetime | None,
        keys: Sequence[str] | None,
        search: str | None,
        named: Sequence[str] = (),
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = {}
        if account_id:
            query["account_id"] = account_id
        if unread_only:
            query["last_message.direction"] = "in"
        if since:
            query["last_at"] = {"$gte": since}
        if keys is not None:
            query["peer_keys"] = {"$in": list(keys)}
        if search:
            query["$or"] = [
                {"last_message.text": {"$regex": _literal(search), "$options": "i"}},
                {"peer_keys": {"$regex": _literal(search.lower().lstrip("@")), "$options": "i"}},
                *([{"peer_keys": {"$in": list(named)}}] if named else []),
            ]
        docs = (
            await self.conversations.find(CONVERSATION_ORDER.where(query, cursor))
            .sort(CONVERSATION_ORDER.sort())
            .limit(limit + 1)
            .to_list()
        )
        return CONVERSATION_ORDER.page(docs, limit)

    async def private_in(
        self, window: TimeWindow, keys: Sequence[str], directions: Sequence[str]
    ) -> list[dict[str, Any]]:
        """A user's private messages (either way) in a timeline's window."""
        base = {"peer_keys": {"$in": list(keys)}, "private": True, "direction": {"$in": list(directions)}}
        return await window.read(self.messages, "date", base)

    async def names_matching(self, search: str) -> list[str]:
        """Keys of users whose names or username contain `search` (for conversation search)."""
        rx = {"$regex": _literal(search.lstrip("@")), "$options": "i"}
        cursor = self.peers.find(
            {"$or": [{"first_name": rx}, {"last_name": rx}, {"username": rx}]}, {"keys": 1}
        )
        return [k async for d in cursor for k in d.get("keys") or []]


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def message_view(doc: Mapping[str, Any], user: Mapping[str, Any] | None) -> ChatMessageView:
    kind = "user" if doc.get("private", True) else "group"
    return ChatMessageView(
        id=doc["_id"],
        account_id=doc["account_id"],
        peer=peer_view(user, doc["chat_key"], kind),
        direction=doc["direction"],
        message_id=doc.get("message_id"),
        text=doc.get("text"),
        media_kind=doc.get("media_kind"),
        date=doc["date"],
        job_id=doc.get("job_id"),
        source=doc.get("source") or "telegram",
        reply_to_message_id=doc.get("reply_to"),
    )


def conversation_view(
    doc: Mapping[str, Any],
    user: Mapping[str, Any] | None,
    *,
    lead: Mapping[str, Any] | None = None,
    blacklisted: bool = False,
    opted_out: bool = False,
) -> ConversationView:
    last = doc.get("last_message")
    last_view = None
    if last:
        last_view = message_view(
            {**last, "_id": last["id"], "account_id": doc["account_id"], "chat_key": doc["chat_key"]}, user
        )
    return ConversationView(
        account_id=doc["account_id"],
        peer=peer_view(user, doc["chat_key"]),
        last_message=last_view,
        message_count=doc.get("message_count", 0),
        unread_count=doc.get("unread_count", 0),
        last_in_at=doc.get("last_in_at"),
        last_out_at=doc.get("last_out_at"),
        lead_id=str(lead["_id"]) if lead else None,
        lead_stage=lead.get("stage") if lead else None,
        blacklisted=blacklisted,
        opted_out=opted_out,
    )


INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "messages": [
        ([("peer_keys", ASCENDING), ("date", DESCENDING)], {"name": "peer_date"}),
        ([("account_id", ASCENDING), ("date", DESCENDING)], {"name": "account_date"}),
        ([("job_id", ASCENDING)], {"name": "job", "sparse": True}),
    ],
    "conversations": [
        ([("peer_keys", ASCENDING)], {"name": "peer"}),
        ([("account_id", ASCENDING), ("last_at", DESCENDING)], {"name": "account_last"}),
        ([("last_at", DESCENDING)], {"name": "last"}),
    ],
    "peers": [([("keys", ASCENDING)], {"name": "keys"})],
}
