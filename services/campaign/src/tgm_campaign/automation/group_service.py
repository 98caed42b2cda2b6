"""Monitored groups: add (normalise, resolve, join), remove, list, bind keyword sets, pause/resume, and
the inbound lookup of a chat's group.

Decisions (the next engineer reads these here):
- **Identity.** The ChatRef the operator gives is normalised by the contract (int id, `@name`,
  `+invitehash`); `ref_key` is `id:<n>`, `@<lower-case name>` or `+<hash>` and is unique (CONFLICT).
  When a group resolves to a chat id another group already has, it is marked `error` ("same chat as
  …") instead of being watched twice; an id given at add time is checked up front (CONFLICT).
- **Listener accounts** of a group, in this order: the group's `listener_account_ids`; else every
  account whose role is `listener`; else (no account has that role) every account of the fleet.
  Online means tg-session reports it `active` (or in a flood wait, which does not stop reading) and
  connected (`get-accounts`, one page of at most 500 accounts).
- **Resolution** goes through tg-session with a deadline: `resolve-peer` by the first online
  listener for a username or id (an invite link resolves only by joining).
- **Membership.** `member_account_ids` holds only accounts CONFIRMED by a `join-group` answer
  (joined, or `alreadyMember`); `pick-accounts` with `memberOfChatId` is tg-session's claim (today's
  tg-session does not track memberships and claims every account, so a claim alone is not trusted to
  skip a join). A group is `ok` when a confirmed member is online and still claimed. Otherwise, with
  `autoJoin` and a real check (add-group, start-monitoring; not a dry run), a listener is asked to
  join through tg-session's `join-group` (paced by tg-session; the claimed members first, so a real
  member answers `alreadyMember` and joins nothing); a Telegram refusal is tried with a second
  listener (some refusals, e.g. CHANNELS_TOO_MUCH, are the account's), then the group is
  `cannot_join`. Without autoJoin (or in a dry run) a claim makes it `ok` ("tg-session reports … a
  member"), no claim `needs_join`. tg-session unreachable or too slow: a never-checked group stays
  `pending` with `status_detail` (add-group still succeeds), a known status is kept, and
  start-monitoring checks again.
- **Statuses:** `ok` (a listener is a member), `needs_join` (nobody is; auto-join off, a join
  request awaiting approval, or a flood wait), `cannot_join` (Telegram refused or knows no such chat),
  `pending` (not checked yet / tg-session unreachable), `error` (duplicate chat, a user not a group).
- **Hot path.** `by_chat` answers from a one-second cache (per chat id and username), else one
  indexed query; every change made here clears the cache, so this replica sees it at once and the
  others within a second. A group known only by username learns its chat id from its first message.
- **Seen messages.** A matched message is written at once (`match_count` +1, `last_match_at`,
  `last_message_at`: exact, once per message by the inbound claim). A message with no hit (most
  traffic) only moves `last_message_at`: that is kept in memory per replica (the latest per group)
  and written by `flush_seen` every second (`runtime.every`, and at stop) as one `$max` per group,
  so a crash loses at most that second of `last_message_at` (a time the next message moves anyway;
  never a count). A write the database refused is kept for the next flush.
- Changes call `on_change(group, what)` (set by MonitoringService) so the watched chats are
  republished and pause/resume raise `monitoring-state-changed`.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack, Page
from tgm_contracts.command import AccountRpc
from tgm_contracts.commands import automation as cmd
from tgm_contracts.commands.accounts import GetAccounts, GetAccountsRequest
from tgm_contracts.commands.telegram_ops import JoinGroup, JoinGroupRequest, JoinGroupResult
from tgm_contracts.events_campaign import EntityChanged
from tgm_contracts.models.session import AccountRole, AccountState, AccountView
from tgm_contracts.rpc_session import (
    PickAccounts,
    PickAccountsRequest,
    ResolvedPeer,
    ResolvePeer,
    ResolvePeerRequest,
)
from tgm_runtime import Conflict, DomainError, Invalid, NotFound
from tgm_runtime.routes import answers

from ..messaging.clock import Clock, utc
from .group_store import GroupTaken
from .keyword_service import KeywordSetService
from .ports import Call, Emit
from .store import AutomationStores

AccountCall = Callable[[type[AccountRpc], str, BaseModel, float], Awaitable[Any]]
"""`await account_call(Rpc, account_id, request, timeout)`: an account RPC answered by the tg-session
replica holding the account (`tgm.acct.<id>.<name>.v1`); raises DomainError like `Call`."""

OnChange = Callable[[Mapping[str, Any] | None, str], Awaitable[None]]

CALL_TIMEOUT = 5.0
JOIN_TIMEOUT = 30.0
ADD_DEADLINE = 12.0
"""add-group waits this long for resolution and join, then answers with the group `pending`."""
CACHE_SECONDS = 1.0
CACHE_MAX = 10_000
MAX_ACCOUNTS = 500
#: tg-session states an account reads messages in
READING = (AccountState.ACTIVE, AccountState.FLOOD_WAIT)

GroupStatus = Literal["pending", "ok", "needs_join", "cannot_join", "error"]
Access = Literal["member", "can_join", "cannot_join", "unknown"]
_ACCESS: dict[str, Access] = {
    "ok": "member",
    "needs_join": "can_join",
    "cannot_join": "cannot_join",
    "pending": "unknown",
    "error": "cannot_join",
}


def ref_key(ref: int | str) -> str:
    if isinstance(ref, int):
        return f"id:{ref}"
    return ref.lower() if ref.startswith("@") else ref


def ref_of(doc: Mapping[str, Any]) -> int | str:
    """What to give tg-session for the group: its chat id once known, else the stored reference."""
    ref = doc.get("ref")
    if isinstance(ref, str) and ref.startswith("+"):
        return ref  # an invite joins by its hash (a chat id would not let a non-member in)
    return doc["chat_id"] if doc.get("chat_id") is not None else (ref if ref is not None else doc["ref_key"])


def _url(ref: int | str) -> str | None:
    if isinstance(ref, int):
        return None
    return f"https://t.me/{ref[1:]}" if ref.startswith("@") else f"https://t.me/{ref}"


def group_view(doc: Mapping[str, Any]) -> cmd.MonitoredGroupView:
    return cmd.MonitoredGroupView(
        id=doc["_id"],
        url=doc.get("url"),
        username=doc.get("username"),
        chat_id=doc.get("chat_id"),
        title=doc.get("title"),
        keyword_set_ids=doc.get("keyword_set_ids") or [],
        listener_account_ids=doc.get("listener_account_ids"),
        is_active=doc.get("is_active", True),
        paused=doc.get("paused", False),
        status=doc.get("status", "pending"),
        status_detail=doc.get("status_detail"),
        member_count=doc.get("member_count"),
        match_count=doc.get("match_count", 0),
        last_message_at=doc.get("last_message_at"),
        last_match_at=doc.get("last_match_at"),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


@dataclass
class Listeners:
    """The listener accounts of a group (by the rule above) and which of them are online."""

    rule: Literal["group", "role", "all"]
    accounts: list[AccountView] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def online(self) -> list[str]:
        return [a.id for a in self.accounts if a.state in READING and a.connected]


def listener_state(a: AccountView) -> Literal["listening", "starting", "unavailable", "error"]:
    if a.state in READING:
        return "listening" if a.connected else "starting"
    if a.state in (AccountState.DISCONNECTED, AccountState.PROXY_ERROR, AccountState.NEW):
        return "unavailable"
    return "error"


class GroupService:
    def __init__(
        self,
        stores: AutomationStores,
        keywords: KeywordSetService,
        call: Call,
        emit: Emit,
        clock: Clock,
        account_call: AccountCall | None = None,
    ) -> None:
        self.stores, self.keywords, self.call, self.emit, self.clock = stores, keywords, call, emit, clock
        self.account_call = account_call
        self.on_change: OnChange | None = None
        self._cache: dict[tuple[int, str | None], tuple[float, dict[str, Any] | None]] = {}
        #: group id -> the latest message time not written yet (see "Seen messages")
        self._unseen: dict[str, datetime] = {}

    # --- commands ---------------------------------------------------------------------------------

    @answers(cmd.AddGroup, principal=True)
    async def add(self, req: cmd.AddGroupRequest, by: str | None) -> cmd.MonitoredGroupView:
        ref = req.group
        if isinstance(ref, int) and not -(2**63) <= ref < 2**63:
            raise Invalid("group: not a Telegram chat id (out of range)", {"field": "group"})
        missing = await self.keywords.missing(req.keyword_set_ids)
        if missing:
            raise NotFound(
                f"keyword set(s) {', '.join(missing)} do not exist",
                {"field": "keywordSetIds", "missing": missing},
            )
        if req.listener_account_ids:
            await self._check_accounts(req.listener_account_ids)
        chat_id = ref if isinstance(ref, int) else None
        if chat_id is not None and (other := await self.stores.groups.with_chat_id(chat_id, "")) is not None:
            raise Conflict(
                f"chat {chat_id} is already monitored as {other['_id']}", {"groupId": other["_id"]}
            )
        fields = {
            "ref": ref,
            "ref_key": ref_key(ref),
            "url": _url(ref),
            "username": ref[1:].lower() if isinstance(ref, str) and ref.startswith("@") else None,
            "chat_id": chat_id,
            "title": req.name,
            "keyword_set_ids": list(dict.fromkeys(req.keyword_set_ids)),
            "listener_account_ids": list(dict.fromkeys(req.listener_account_ids))
            if req.listener_account_ids
            else None,
            "auto_join": req.auto_join,
        }
        try:
            doc = await self.stores.groups.create(fields, utc(self.clock()))
        except GroupTaken:
            raise Conflict(f"{ref} is already monitored", {"field": "group"}) from None
        await self._changed(doc, "created", by)
        try:
            async with asyncio.timeout(ADD_DEADLINE):
                doc, _ = await self.check(doc, join=True)
        except TimeoutError:
            doc = await self._settle(
                doc,
                "pending",
                f"tg-session did not resolve the group within {ADD_DEADLINE:.0f}s; start-monitoring checks again",
            )
        return group_view(doc)

    @answers(cmd.RemoveGroup, principal=True)
    async def remove(self, req: cmd.GroupIdRequest, by: str | None) -> Ack:
        doc = await self.stores.groups.delete(req.id)
        if doc is None:
            raise NotFound(f"group {req.id} does not exist")
        self._cache.clear()
        # Rules that named it as a source forget it (a `specific` rule left with none is deactivated).
        for rule_id in await self.stores.rules.detach_group(req.id, utc(self.clock())):
            await self.emit(EntityChanged(entity="trigger_rule", entity_id=rule_id, action="updated", by=by))
        await self.emit(EntityChanged(entity="group", entity_id=req.id, action="deleted", by=by))
        await self._notify(doc, "removed")
        return Ack(affected=1)

    @answers(cmd.GetMonitoredGroups)
    async def list(self, req: cmd.GetMonitoredGroupsRequest) -> Page[cmd.MonitoredGroupView]:
        docs = await self.stores.groups.find(
            active_only=req.active_only,
            keyword_set_id=req.keyword_set_id,
            statuses=req.statuses,
            search=req.search,
        )
        return Page[cmd.MonitoredGroupView](items=[group_view(d) for d in docs], total=len(docs))

    @answers(cmd.BindKeywordSet, principal=True)
    async def bind(self, req: cmd.KeywordBindingRequest, by: str | None) -> cmd.MonitoredGroupView:
        await self._get(req.group_id)
        if await self.keywords.missing([req.keyword_set_id]):
            raise NotFound(f"keyword set {req.keyword_set_id} does not exist", {"field": "keywordSetId"})
        doc = _found(
            req.group_id,
            await self.stores.groups.add_set(req.group_id, req.keyword_set_id, utc(self.clock())),
        )
        if await self.keywords.missing([req.keyword_set_id]):  # deleted meanwhile: do not keep a dangling id
            await self.stores.groups.pull_set(req.group_id, req.keyword_set_id, utc(self.clock()))
            raise NotFound(f"keyword set {req.keyword_set_id} does not exist", {"field": "keywordSetId"})
        return await self._updated(doc, "bound", by, keyword_set_id=req.keyword_set_id)

    @answers(cmd.UnbindKeywordSet, principal=True)
    async def unbind(self, req: cmd.KeywordBindingRequest, by: str | None) -> cmd.MonitoredGroupView:
        doc = await self.stores.groups.pull_set(req.group_id, req.keyword_set_id, utc(self.clock()))
        return await self._updated(
            _found(req.group_id, doc), "unbound", by, keyword_set_id=req.keyword_set_id
        )

    @answers(cmd.PauseMonitoring, principal=True)
    async def pause(self, req: cmd.PauseMonitoringRequest, by: str | None) -> cmd.MonitoredGroupView:
        await self._get(req.group_id)
        doc = await self.stores.groups.update(
            req.group_id,
            {"paused": True, "pause_reason": req.reason, "paused_at": utc(self.clock()), "resumed_at": None},
            utc(self.clock()),
        )
        return await self._updated(_found(req.group_id, doc), "paused", by)

    @answers(cmd.ResumeMonitoring, principal=True)
    async def resume(self, req: cmd.ResumeMonitoringRequest, by: str | None) -> cmd.MonitoredGroupView:
        doc = await self.stores.groups.update(
            req.group_id,
            {"paused": False, "pause_reason": None, "resumed_at": utc(self.clock())},
            utc(self.clock()),
        )
        return await self._updated(_found(req.group_id, doc), "resumed", by)

    # --- used by the inbound path and monitoring ------------------------------------------------

    async def by_chat(self, chat_id: int, username: str | None = None) -> dict[str, Any] | None:
        """The monitored group document of a Telegram chat (by id, else by username), or None."""
        key = (chat_id, username.lower() if username else None)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        doc = await self.stores.groups.by_chat(chat_id, key[1])
        if doc is not None and doc.get("chat_id") is None:
            doc = await self._learn_chat_id(doc, chat_id)
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now, doc)
        return doc

    async def seen_message(self, group_id: str, at: datetime, matched: str | None = None) -> None:
        """Record a message of the group: matched (`matched`: its key), written now (match_count +1
        once per key, last_match_at, last_message_at); otherwise only last_message_at, written by the
        next `flush_seen`."""
        if matched is not None:
            await self.stores.groups.seen(group_id, at, matched)
            return
        known = self._unseen.get(group_id)
        if known is None or at > known:
            self._unseen[group_id] = at

    async def flush_seen(self) -> int:
        """Write the kept `last_message_at`s (one `$max` per group); the number written."""
        pending, self._unseen = self._unseen, {}
        done = 0
        try:
            for group_id, at in pending.items():
                await self.stores.groups.seen(group_id, at, None)
                done += 1
        finally:  # what was not written waits for the next flush (unless newer arrived meanwhile)
            for group_id, at in list(pending.items())[done:]:
                known = self._unseen.get(group_id)
                if known is None or at > known:
                    self._unseen[group_id] = at
        return done

    async def missing(self, ids: Sequence[str]) -> builtins.list[str]:
        found = await self.stores.groups.existing(ids)
        return [i for i in dict.fromkeys(ids) if i not in found]

    async def get(self, group_id: str) -> dict[str, Any] | None:
        return await self.stores.groups.get(group_id)

    async def all(self, ids: Sequence[str] | None = None) -> builtins.list[dict[str, Any]]:
        return await self.stores.groups.find(ids=ids)

    async def listeners(self, group: Mapping[str, Any] | None = None) -> Listeners:
        """The group's listener accounts (the fleet-wide rule when `group` is None or names none).
        Raises DomainError (UNAVAILABLE, TIMEOUT) when tg-session does not answer."""
        explicit = list((group or {}).get("listener_account_ids") or [])
        if explicit:
            page = await self.call(
                GetAccounts, GetAccountsRequest(ids=explicit, limit=MAX_ACCOUNTS), CALL_TIMEOUT
            )
            found = {a.id for a in page.items}
            return Listeners("group", list(page.items), [i for i in explicit if i not in found])
        page = await self.call(
            GetAccounts, GetAccountsRequest(role=AccountRole.LISTENER, limit=MAX_ACCOUNTS), CALL_TIMEOUT
        )
        if page.items:
            return Listeners("role", list(page.items))
        page = await self.call(GetAccounts, GetAccountsRequest(limit=MAX_ACCOUNTS), CALL_TIMEOUT)
        return Listeners("all", list(page.items))

    async def check(
        self, doc: dict[str, Any], *, join: bool, listeners: Listeners | None = None
    ) -> tuple[dict[str, Any], cmd.GroupAccess]:
        """Resolve the group and settle its membership (joining when allowed and `join`); store and
        answer its status. Never raises for tg-session's answers: they become the status."""
        try:
            found = listeners if listeners is not None and not doc.get("listener_account_ids") else None
            found = found or await self.listeners(doc)
        except DomainError as exc:
            return await self._unchecked(doc, f"tg-session did not answer: {exc.message}")
        online = found.online
        if not online:
            who = {"group": "of its listenerAccountIds", "role": "with role listener", "all": "in the fleet"}
            return await self._unchecked(doc, f"no account {who[found.rule]} is online")
        try:
            return await self._check(doc, online, join)
        except DomainError as exc:  # tg-session unreachable or slow in the middle: check again later
            return await self._unchecked(doc, f"tg-session did not answer: {exc.message}")

    async def _unchecked(self, doc: dict[str, Any], why: str) -> tuple[dict[str, Any], cmd.GroupAccess]:
        """Could not check now: a group never checked stays `pending` with the reason; a group with
        a known status keeps it (a passing outage does not erase what is known), and this check's
        answer is `unknown` with the reason."""
        if doc.get("status", "pending") == "pending":
            doc = await self._settle(doc, "pending", why)
        access = self.access_of(doc).model_copy(update={"access": "unknown", "detail": why})
        return doc, access

    # --- resolution and membership ----------------------------------------------------------------

    async def _check(
        self, doc: dict[str, Any], online: builtins.list[str], join: bool
    ) -> tuple[dict[str, Any], cmd.GroupAccess]:
        ref = doc.get("ref")
        invite = isinstance(ref, str) and ref.startswith("+")
        if not invite and (doc.get("chat_id") is None or doc.get("title") is None):
            resolved = await self._resolve(doc, online)
            if isinstance(resolved, str):
                return await self._done(doc, "cannot_join", resolved)
            if resolved is not None:
                if resolved.kind in ("user", "bot"):
                    return await self._done(
                        doc, "error", f"{ref} is a {resolved.kind}, not a group or channel"
                    )
                doc = await self._learn(doc, resolved.peer_id, resolved.title, resolved.username, None)
                if doc.get("status") == "error":
                    return doc, self.access_of(doc)
        claimed: builtins.list[str] = []
        if doc.get("chat_id") is not None:
            picked = await self.call(
                PickAccounts,
                PickAccountsRequest(
                    count=len(online), among=online, member_of_chat_id=doc["chat_id"], category="join"
                ),
                CALL_TIMEOUT,
            )
            claimed = [a.id for a in picked.accounts]
        # confirmed by an earlier join-group answer, online, and not known by tg-session to have left
        confirmed = [a for a in doc.get("member_account_ids") or [] if a in online and a in claimed]
        if confirmed:
            return await self._done(doc, "ok", None, members=confirmed, account=confirmed[0])
        if doc.get("auto_join", True) and join:
            # tg-session's join answers `alreadyMember` for a member: the claimed ones are asked first
            return await self._join(doc, [*claimed, *(a for a in online if a not in claimed)])
        if claimed:
            return await self._done(
                doc, "ok", f"tg-session reports {claimed[0]} a member", account=claimed[0]
            )
        if not doc.get("auto_join", True):
            return await self._done(doc, "needs_join", "no listener account is a member and autoJoin is off")
        if doc.get("status") == "cannot_join":  # the last join was refused: a dry run cannot know better
            return doc, self.access_of(doc)
        return await self._done(
            doc, "needs_join", "no listener account is a member yet; one joins at start-monitoring"
        )

    async def _resolve(self, doc: Mapping[str, Any], online: Sequence[str]) -> ResolvedPeer | str | None:
        """The chat as tg-session resolves it; a string says why Telegram refused; None: could not
        ask (no account call wired, or the holders did not answer)."""
        if self.account_call is None:
            return None
        peer = doc["chat_id"] if doc.get("chat_id") is not None else doc.get("ref")
        refused: str | None = None
        for account in online[:2]:
            try:
                resolved: ResolvedPeer = await self.account_call(
                    ResolvePeer, account, ResolvePeerRequest(peer=peer), CALL_TIMEOUT
                )
                return resolved
            except DomainError as exc:
                if exc.code is ErrorCode.NOT_FOUND:
                    return f"Telegram knows no chat {peer}"
                if exc.code is ErrorCode.TELEGRAM_ERROR:
                    refused = _telegram_reason(exc)
                    continue
                if exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.CONFLICT):
                    continue  # that account's holder is away or the account is not usable: next one
                raise
        return refused

    async def _join(
        self, doc: dict[str, Any], online: Sequence[str]
    ) -> tuple[dict[str, Any], cmd.GroupAccess]:
        last = "no listener could join"
        for account in online[:2]:
            request = JoinGroupRequest.model_validate({"accountId": account, "group": ref_of(doc)})
            try:
                result: JoinGroupResult = await self.call(JoinGroup, request, JOIN_TIMEOUT)
            except DomainError as exc:
                if exc.code is ErrorCode.FLOOD_WAIT:
                    wait = f" for {exc.retry_after:.0f}s" if exc.retry_after else ""
                    return await self._done(doc, "needs_join", f"{account} must wait{wait} before joining")
                if exc.code in (ErrorCode.TELEGRAM_ERROR, ErrorCode.NOT_FOUND, ErrorCode.CONFLICT):
                    last = f"{account}: {_telegram_reason(exc)}"
                    continue
                raise
            if result.pending_approval:
                return await self._done(
                    doc, "needs_join", f"{account} asked to join; an admin of the group must approve it"
                )
            if result.chat is not None:
                chat = result.chat
                doc = await self._learn(doc, chat.chat_id, chat.title, chat.username, chat.members_count)
                if doc.get("status") == "error":
                    return doc, self.access_of(doc)
            members = sorted({*(doc.get("member_account_ids") or []), account})
            return await self._done(doc, "ok", None, members=members, account=account)
        return await self._done(doc, "cannot_join", last)

    async def _learn(
        self,
        doc: dict[str, Any],
        chat_id: int,
        title: str | None,
        username: str | None,
        member_count: int | None,
    ) -> dict[str, Any]:
        """Store what tg-session told about the chat; a chat another group already is: `error`."""
        other = await self.stores.groups.with_chat_id(chat_id, doc["_id"])
        if other is not None:
            return await self._settle(doc, "error", f"same chat as group {other['_id']}: remove one of them")
        fields: dict[str, Any] = {"chat_id": chat_id}
        if title:
            fields["title"] = title
        if username:
            fields["username"] = username.lstrip("@").lower()
        if member_count is not None:
            fields["member_count"] = member_count
        changed = any(doc.get(k) != v for k, v in fields.items())
        if not changed:
            return doc
        updated = await self.stores.groups.update(doc["_id"], fields, utc(self.clock()))
        self._cache.clear()
        if updated is not None and (
            doc.get("chat_id") != chat_id or doc.get("username") != fields.get("username")
        ):
            await self._notify(updated, "resolved")  # the watched chats name it by id now
        return updated or doc

    async def _done(
        self,
        doc: dict[str, Any],
        status: GroupStatus,
        detail: str | None,
        *,
        members: Sequence[str] | None = None,
        account: str | None = None,
    ) -> tuple[dict[str, Any], cmd.GroupAccess]:
        doc = await self._settle(doc, status, detail, members=members)
        return doc, self.access_of(doc, account)

    async def _settle(
        self,
        doc: dict[str, Any],
        status: GroupStatus,
        detail: str | None,
        *,
        members: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": status, "status_detail": detail}
        if members is not None:
            fields["member_account_ids"] = list(members)
        if all(doc.get(k) == v for k, v in fields.items()):
            return doc
        updated = await self.stores.groups.update(doc["_id"], fields, utc(self.clock()))
        if updated is None:  # removed meanwhile
            return {**doc, **fields}
        self._cache.clear()
        await self.emit(EntityChanged(entity="group", entity_id=doc["_id"], action="updated"))
        return updated  # a status alone does not change the watched chats: no republish

    def access_of(self, doc: Mapping[str, Any], account: str | None = None) -> cmd.GroupAccess:
        members = doc.get("member_account_ids") or []
        return cmd.GroupAccess(
            group_id=doc["_id"],
            title=doc.get("title"),
            access=_ACCESS.get(doc.get("status", "pending"), "unknown"),
            account_id=account or (members[0] if members else None),
            detail=doc.get("status_detail"),
        )

    async def _learn_chat_id(self, doc: dict[str, Any], chat_id: int) -> dict[str, Any]:
        if await self.stores.groups.with_chat_id(chat_id, doc["_id"]) is not None:
            return doc
        if await self.stores.groups.learn_chat_id(doc["_id"], chat_id, utc(self.clock())):
            doc = {**doc, "chat_id": chat_id}
            self._cache.clear()
            await self._notify(doc, "resolved")
        return doc

    async def _check_accounts(self, ids: Sequence[str]) -> None:
        """Listener ids must be fleet accounts; not checked when tg-session does not answer."""
        try:
            page = await self.call(
                GetAccounts, GetAccountsRequest(ids=list(ids), limit=MAX_ACCOUNTS), CALL_TIMEOUT
            )
        except DomainError as exc:
            if exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                return
            raise
        found = {a.id for a in page.items}
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise Invalid(
                f"listenerAccountIds: {', '.join(unknown)} are not accounts of the fleet",
                {"field": "listenerAccountIds", "missing": unknown},
            )

    async def _get(self, group_id: str) -> dict[str, Any]:
        doc = await self.stores.groups.get(group_id)
        if doc is None:
            raise NotFound(f"group {group_id} does not exist")
        return doc

    async def _changed(
        self, doc: Mapping[str, Any], action: Literal["created", "updated", "deleted"], by: str | None
    ) -> None:
        self._cache.clear()
        await self.emit(EntityChanged(entity="group", entity_id=doc["_id"], action=action, by=by))

    async def _notify(self, doc: Mapping[str, Any] | None, what: str) -> None:
        if self.on_change is not None:
            await self.on_change(doc, what)

    async def _updated(
        self, doc: dict[str, Any], what: str, by: str | None, *, keyword_set_id: str | None = None
    ) -> cmd.MonitoredGroupView:
        """The end of every change to one group (a binding, a pause, a resume): announced, with the
        keyword set (un)bound when there is one, and the listeners told `what`."""
        await self._changed(doc, "updated", by)
        if keyword_set_id is not None:
            await self.emit(
                EntityChanged(entity="keyword_set", entity_id=keyword_set_id, action="updated", by=by)
            )
        await self._notify(doc, what)
        return group_view(doc)


def _found(group_id: str, doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None:
        raise NotFound(f"group {group_id} does not exist")
    return doc


def _telegram_reason(exc: DomainError) -> str:
    details = exc.details if isinstance(exc.details, Mapping) else {}
    name = details.get("telegramError")
    return f"{name}: {exc.message}" if name and name != exc.message else exc.message


__all__ = ["AccountCall", "GroupService", "Listeners", "group_view", "listener_state", "ref_key"]
