"""A stand-in for tg-session's send path, for tests and benchmarks of the queue.

`FakeFleet` is a second service runtime (owner tg-session) on the real NATS server that serves, per
account, `tgm.acct.<id>.send.v1` (through `runtime.serve_account`, as tg-session does) and the pool
calls `pick-accounts`, `describe-accounts` and `get-accounts`. It keeps tg-session's promise of one
delivery per job id (a repeated job id is answered `duplicate: true` with the first message id),
records every delivery (and publishes tg-session's `message-sent` event for it), can inject Telegram's answers (FLOOD_WAIT, PEER_FLOOD, permanent errors,
late replies, accounts nobody holds), and can emulate Telegram's rate limits to count the sends that
would have broken them.

By default a delivery is only recorded; give `deliver` (e.g. a Telethon client per account, talking
to the Telegram emulator) to really send.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tgm_contracts import ErrorCode, Service
from tgm_contracts import rpc_session as rpc
from tgm_contracts.base import Page, utcnow
from tgm_contracts.commands.accounts import AccountPage, GetAccounts, GetAccountsRequest
from tgm_contracts.commands.telegram_ops import (
    CreateGroup,
    CreateGroupRequest,
    GetCreatedGroups,
    GetCreatedGroupsRequest,
    GetGroupMembers,
    GetGroupMembersRequest,
    JoinGroup,
    JoinGroupRequest,
    JoinGroupResult,
)
from tgm_contracts.events_session import MessageSent as SessionMessageSent
from tgm_contracts.models.session import (
    AccountBrief,
    AccountState,
    AccountView,
    ChatView,
    CreatedGroupView,
    GroupMemberView,
)
from tgm_runtime import CallContext, DomainError, RuntimeSettings, ServiceRuntime

Deliver = Callable[[str, rpc.SendRequest], Awaitable[tuple[int, int]]]
"""(account id, request) -> (Telegram message id, peer id)."""


def peer_id_of(peer: int | str) -> int:
    """A stable id for a peer given by username or phone (the double has no directory)."""
    if isinstance(peer, int):
        return peer
    return 10_000_000 + int(hashlib.sha256(peer.lower().encode()).hexdigest()[:8], 16) % 900_000_000


@dataclass
class Delivery:
    account_id: str
    job_id: str
    peer: int | str
    peer_id: int
    text: str
    message_id: int
    at: float


@dataclass
class Fault:
    """Answer the next `count` sends (of `account`, to `peer`; None = any) with this error."""

    error: str  # FLOOD_WAIT, PEER_FLOOD, a Telegram error name, TIMEOUT (deliver, answer late), INTERNAL
    count: int = 1
    account: str | None = None
    peer: int | str | None = None
    retry_after: float = 5.0
    late_by: float = 3.0

    def matches(self, account: str, peer: int | str) -> bool:
        return (
            self.count > 0
            and (self.account is None or self.account == account)
            and (self.peer is None or self.peer == peer)
        )


@dataclass
class RateRule:
    """Telegram's limit to check sends against: at most `count` per `window` seconds, per `scope`
    (`account`, `chat` = account and chat, `global`)."""

    name: str
    count: int
    window: float
    scope: str = "account"
    groups_only: bool = False
    private_only: bool = False


@dataclass
class FleetAccount:
    id: str
    phone: str
    api_credential: str = "cred-1"
    created_at: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    state: AccountState = AccountState.ACTIVE
    tags: list[str] = field(default_factory=list)
    role: str = "sender"
    group: str | None = None
    served: bool = True
    members_of: set[int] | None = None  # chats it is known to be in; None: unknown (not filtered)
    warmup_enabled: bool = True


@dataclass
class FleetChat:
    """A Telegram group the double knows: resolvable by `username` (or its id), joinable by username
    or `invite` hash unless `join_error` (a Telegram error name) or `approval` (a join request)."""

    chat_id: int
    title: str
    username: str | None = None
    invite: str | None = None
    join_error: str | None = None
    approval: bool = False
    members_count: int = 100

    def known_as(self, ref: int | str) -> bool:
        if isinstance(ref, int):
            return ref == self.chat_id
        if ref.startswith("+"):
            return self.invite is not None and ref[1:] == self.invite
        return self.username is not None and ref.lstrip("@").lower() == self.username.lower()


class FakeFleet:
    def __init__(
        self,
        nats_url: str,
        mongo_uri: str,
        accounts: Iterable[str | FleetAccount],
        *,
        database_prefix: str = "fleet_",
        deliver: Deliver | None = None,
        latency: float = 0.0,
        rules: Iterable[RateRule] = (),
        clock: Callable[[], float] = time.time,
        publish_sent: bool = True,
    ) -> None:
        self.accounts: dict[str, FleetAccount] = {}
        for i, a in enumerate(accounts):
            acct = a if isinstance(a, FleetAccount) else FleetAccount(a, f"+1555000{i:04d}")
            self.accounts[acct.id] = acct
        self.rt: ServiceRuntime[None] = ServiceRuntime(
            Service.TG_SESSION,
            "test-double",
            settings=RuntimeSettings(
                nats_url=nats_url,
                mongodb_uri=mongo_uri,
                database_prefix=database_prefix,
                replica_id="fleet-double",
            ),
        )
        self.deliver = deliver
        self.latency = latency
        self.rules = list(rules)
        self.clock = clock
        self.publish_sent = publish_sent
        self.deliveries: list[Delivery] = []
        self.record: dict[str, rpc.SendResult] = {}
        self.attempts: list[tuple[str, str, str]] = []  # (account, job id, outcome)
        self.faults: deque[Fault] = deque()
        self.violations: list[dict[str, Any]] = []
        self._events: dict[tuple[Any, ...], deque[float]] = {}
        self._subs: dict[str, Any] = {}
        self._ids = itertools.count(1000)
        self._changed = asyncio.Condition()
        self.chats: list[FleetChat] = []  # groups resolve-peer and join-group know
        self.joins: list[tuple[str, int]] = []  # (account, chat id) of every join made
        self.admins: dict[int, set[int]] = {}  # chat id -> admin user ids (get-group-members, admins)
        self.member_calls: list[GetGroupMembersRequest] = []
        self.created: list[CreatedGroupView] = []  # create-group calls answered (collaboration runs)
        self.uninvitable: set[int | str] = set()  # peers create-group fails to add (privacy settings)
        self._register()

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> FakeFleet:
        await self.rt.start()
        for acct in self.accounts.values():
            if acct.served:
                await self.serve(acct.id)
        return self

    async def stop(self) -> None:
        for acct in list(self._subs):
            await self.unserve(acct)
        await self.rt.stop()

    async def serve(self, account_id: str) -> None:
        if account_id not in self._subs:
            self._subs[account_id] = await self.rt.serve_account(
                account_id, {"send": (rpc.Send, self._send), "resolve-peer": (rpc.ResolvePeer, self._resolve)}
            )
            self.accounts[account_id].served = True

    async def unserve(self, account_id: str) -> None:
        """Nobody holds the account any more (its sends get no responder: UNAVAILABLE)."""
        sub = self._subs.pop(account_id, None)
        if sub is not None:
            await sub.unsubscribe()
        self.accounts[account_id].served = False

    def fail(self, error: str, count: int = 1, **kw: Any) -> Fault:
        fault = Fault(error, count, **kw)
        self.faults.append(fault)
        return fault

    async def wait_for(self, predicate: Callable[[FakeFleet], bool], timeout: float) -> None:
        """Wait (on a condition, not a poll) until `predicate(self)` holds."""

        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(check(), timeout)

    # --- the calls --------------------------------------------------------------------------------

    def _register(self) -> None:
        @self.rt.rpc(rpc.PickAccounts)
        async def pick(req: rpc.PickAccountsRequest, ctx: CallContext) -> rpc.PickedAccounts:
            found = []
            for a in self.accounts.values():
                if a.state is not AccountState.ACTIVE or not a.served:
                    continue
                if req.among and a.id not in req.among:
                    continue
                if req.exclude and a.id in req.exclude:
                    continue
                if req.roles and a.role not in req.roles:
                    continue
                if req.groups and a.group not in req.groups:
                    continue
                if req.tags and not set(req.tags) & set(a.tags):
                    continue
                known = a.members_of
                if (
                    req.member_of_chat_id is not None
                    and known is not None
                    and req.member_of_chat_id not in known
                ):
                    continue
                found.append(a)
            used = {a.id: sum(1 for d in self.deliveries if d.account_id == a.id) for a in found}
            found.sort(key=lambda a: used[a.id])
            return rpc.PickedAccounts(
                accounts=[self._brief(a) for a in found[: req.count]], available=len(found)
            )

        @self.rt.rpc(rpc.DescribeAccounts)
        async def describe(req: rpc.DescribeAccountsRequest, ctx: CallContext) -> rpc.AccountBriefs:
            return rpc.AccountBriefs(
                accounts=[self._brief(self.accounts[i]) for i in req.account_ids if i in self.accounts],
                missing=[i for i in req.account_ids if i not in self.accounts],
            )

        @self.rt.command(GetAccounts)
        async def get_accounts(req: GetAccountsRequest, ctx: CallContext) -> AccountPage:
            chosen = [
                a
                for a in self.accounts.values()
                if (not req.ids or a.id in req.ids) and (req.role is None or a.role == req.role)
            ]
            return AccountPage(items=[self._view(a) for a in chosen[: req.limit]], total=len(chosen))

        @self.rt.command(GetGroupMembers)
        async def get_group_members(req: GetGroupMembersRequest, ctx: CallContext) -> Page[GroupMemberView]:
            self.member_calls.append(req)
            chat = next((c for c in self.chats if c.known_as(req.group)), None)
            chat_id = chat.chat_id if chat is not None else req.group
            if not isinstance(chat_id, int) or (chat is None and chat_id not in self.admins):
                raise DomainError(ErrorCode.NOT_FOUND, f"no chat {req.group}")
            ids = sorted(self.admins.get(chat_id, set())) if req.filter == "admins" else []
            return Page[GroupMemberView](items=[GroupMemberView(user_id=i, role="admin") for i in ids])

        @self.rt.command(CreateGroup)
        async def create_group(req: CreateGroupRequest, ctx: CallContext) -> CreatedGroupView:
            acct = self.accounts.get(req.account_id or "")
            if acct is None or not acct.served:
                raise DomainError(ErrorCode.UNAVAILABLE, f"nobody holds account {req.account_id}")
            # a fault given for peer "create-group" answers this call (FLOOD_WAIT only)
            fault = next(
                (f for f in self.faults if f.peer == "create-group" and f.matches(acct.id, f.peer)), None
            )
            if fault is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                self.attempts.append((acct.id, "create-group", fault.error))
                await self._notify()
                raise DomainError(ErrorCode.FLOOD_WAIT, "A wait is required", retry_after=fault.retry_after)
            chat_id = -1_009_000_000_000 - len(self.created)
            self.chats.append(FleetChat(chat_id, req.title, invite=f"inv{len(self.created)}"))
            acct.members_of = {*(acct.members_of or set()), chat_id}
            invited = [peer_id_of(m) for m in req.members if m not in self.uninvitable]
            view = CreatedGroupView(
                id=f"cg{len(self.created)}",
                account_id=acct.id,
                chat=ChatView(
                    chat_id=chat_id, kind="supergroup", title=req.title, is_member=True, is_admin=True
                ),
                invite_link=f"https://t.me/+inv{len(self.created)}",
                invited=invited,
                failed_invites=[
                    {"peer": str(m), "error": "USER_PRIVACY_RESTRICTED"}
                    for m in req.members
                    if m in self.uninvitable
                ],
                created_at=utcnow(),
            )
            self.created.append(view)
            await self._notify()
            return view

        @self.rt.command(GetCreatedGroups)
        async def get_created_groups(
            req: GetCreatedGroupsRequest, ctx: CallContext
        ) -> Page[CreatedGroupView]:
            mine = [
                g for g in reversed(self.created) if req.account_id is None or g.account_id == req.account_id
            ]
            return Page[CreatedGroupView](items=mine[: req.limit], total=len(mine))

        @self.rt.command(JoinGroup)
        async def join_group(req: JoinGroupRequest, ctx: CallContext) -> JoinGroupResult:
            acct = self.accounts.get(req.account_id or "")
            if acct is None or not acct.served:
                raise DomainError(ErrorCode.UNAVAILABLE, f"nobody holds account {req.account_id}")
            chat = next((c for c in self.chats if c.known_as(req.group)), None)
            if chat is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"no chat {req.group}")
            if chat.join_error:
                raise DomainError(
                    ErrorCode.TELEGRAM_ERROR, chat.join_error, {"telegramError": chat.join_error}
                )
            if chat.approval:
                return JoinGroupResult(account_id=acct.id, pending_approval=True)
            already = acct.members_of is not None and chat.chat_id in acct.members_of
            acct.members_of = {*(acct.members_of or set()), chat.chat_id}
            if not already:
                self.joins.append((acct.id, chat.chat_id))
            await self._notify()
            view = ChatView(
                chat_id=chat.chat_id,
                kind="supergroup",
                title=chat.title,
                username=chat.username,
                members_count=chat.members_count,
                is_member=True,
            )
            return JoinGroupResult(account_id=acct.id, chat=view, already_member=already)

    async def _resolve(self, req: rpc.ResolvePeerRequest, ctx: CallContext) -> rpc.ResolvedPeer:
        chat = next((c for c in self.chats if c.known_as(req.peer)), None)
        if chat is None:
            raise DomainError(ErrorCode.NOT_FOUND, f"no peer {req.peer}")
        return rpc.ResolvedPeer(
            peer_id=chat.chat_id, kind="supergroup", username=chat.username, title=chat.title
        )

    @staticmethod
    def _shown(a: FleetAccount) -> dict[str, Any]:
        """What the brief and the full view of an account both say (this double holds every account)."""
        return {
            "id": a.id,
            "phone": a.phone,
            "state": a.state,
            "role": a.role,
            "tags": a.tags,
            "group": a.group,
            "holder": "fleet-double",
        }

    def _brief(self, a: FleetAccount) -> AccountBrief:
        return AccountBrief(**self._shown(a))

    def _view(self, a: FleetAccount) -> AccountView:
        return AccountView(
            **self._shown(a),
            api_credential_id=a.api_credential,
            connected=a.served,
            warmup_enabled=a.warmup_enabled,
            created_at=a.created_at,
            updated_at=utcnow(),
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _check_rules(self, account: str, peer: int | str, now: float) -> None:
        group = isinstance(peer, int) and peer < 0
        for rule in self.rules:
            if (rule.groups_only and not group) or (rule.private_only and group):
                continue
            key: tuple[Any, ...] = {
                "account": (rule.name, account),
                "chat": (rule.name, account, peer),
                "global": (rule.name,),
            }[rule.scope]
            q = self._events.setdefault(key, deque())
            while q and q[0] <= now - rule.window:
                q.popleft()
            if len(q) >= rule.count:
                self.violations.append({"rule": rule.name, "account": account, "peer": peer, "at": now})
            q.append(now)

    async def _send(self, req: rpc.SendRequest, ctx: CallContext) -> rpc.SendResult:
        account = ctx.subject.split(".")[2]
        if account not in self.accounts or self.accounts[account].state is not AccountState.ACTIVE:
            raise DomainError(ErrorCode.CONFLICT, f"account {account} is not active")
        if self.latency:
            await asyncio.sleep(self.latency)
        done = self.record.get(req.job_id)
        if done is not None:
            self.attempts.append((account, req.job_id, "duplicate"))
            await self._notify()
            return done.model_copy(update={"duplicate": True})
        fault = next((f for f in self.faults if f.matches(account, req.peer)), None)
        late = 0.0
        if fault is not None:
            fault.count -= 1
            if fault.count <= 0:
                self.faults.remove(fault)
            self.attempts.append((account, req.job_id, fault.error))
            await self._notify()
            if fault.error == "FLOOD_WAIT":
                raise DomainError(ErrorCode.FLOOD_WAIT, "A wait is required", retry_after=fault.retry_after)
            if fault.error == "INTERNAL":
                raise DomainError(ErrorCode.INTERNAL, "send failed inside tg-session")
            if fault.error == "TIMEOUT":
                late = fault.late_by  # delivered, but the answer comes too late
            else:
                raise DomainError(ErrorCode.TELEGRAM_ERROR, fault.error, {"telegramError": fault.error})
        now = self.clock()
        self._check_rules(account, req.peer, now)
        if self.deliver is not None:
            message_id, peer_id = await self.deliver(account, req)
        else:
            message_id, peer_id = next(self._ids), peer_id_of(req.peer)
        result = rpc.SendResult(
            account_id=account,
            job_id=req.job_id,
            message_id=message_id,
            peer_id=peer_id,
            chat_kind="supergroup" if peer_id < 0 else "private",
            sent_at=datetime.fromtimestamp(now, UTC),
        )
        self.record[req.job_id] = result
        self.deliveries.append(Delivery(account, req.job_id, req.peer, peer_id, req.text, message_id, now))
        if self.publish_sent:  # as tg-session does after every delivery
            await self.rt.publish(
                SessionMessageSent(
                    account_id=account,
                    job_id=req.job_id,
                    chat_kind=result.chat_kind or "private",
                    chat_id=peer_id,
                    message_id=message_id,
                    text=req.text,
                    sent_at=result.sent_at,
                    origin="rpc",
                )
            )
        if fault is None:
            self.attempts.append((account, req.job_id, "sent"))
        await self._notify()
        if late:
            await asyncio.sleep(late)
        return result
