"""Telegram group operations through one account: join, leave, search, list members, create; and the
record of groups our accounts created. Each runs on the account's holder. Also `describe-users`, the
pool-wide read of what the fleet knows of the users it met in groups (`known_users.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from tgm_contracts.base import Page, utcnow
from tgm_contracts.commands import telegram_ops as telegram_cmd
from tgm_contracts.events_session import GroupJoined, GroupLeft
from tgm_contracts.models.session import AccountState, ChatView, CreatedGroupView, GroupMemberView
from tgm_contracts.rpc_session import (
    AcctCreateGroup,
    AcctGetGroupMembers,
    AcctJoinGroup,
    AcctLeaveGroup,
    AcctSearchGroups,
    DescribeUsers,
    DescribeUsersRequest,
    KnownUsers,
)
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.cursor import Keyset
from tgm_runtime.routes import answers

from ..accounts.membership import Memberships
from ..accounts.service import Accounts, new_id
from ..capabilities import Emit
from ..fleet.calls import account_call
from ..fleet.health import Health
from ..fleet.pool import AccountPool, LiveAccount
from ..ports import AccountClient, PeerNotFound, TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos
from .known_users import describe_users

ERRORS = (TelegramFailure, TelegramUnreachable, PeerNotFound)
#: Telegram's answers to an invite hash that leads nowhere: the caller's input, answered NOT_FOUND.
DEAD_INVITE = {"INVITE_HASH_INVALID", "INVITE_HASH_EXPIRED", "INVITE_HASH_EMPTY"}
#: The shortest invite hash Telegram hands out (16 characters since 2021; older ones have 22).
INVITE_MIN = 16
# get-created-groups pages newest first; ties on created_at by _id (index: store.py, migration 6).
CREATED_ORDER = Keyset(("created_at", "_id"), descending=True)


async def _join(client: AccountClient, group: int | str) -> tuple[ChatView | None, bool, bool]:
    """Join by the normalised reference; a bare text that fit both a username and an invite hash
    (normalised to `@name`) is tried as an invite when no such username exists."""
    try:
        return await client.join(group)
    except PeerNotFound:
        name = group[1:] if isinstance(group, str) and group.startswith("@") else ""
        if len(name) < INVITE_MIN:
            raise
        try:
            return await client.join("+" + name)
        except TelegramFailure as exc:
            if exc.name in DEAD_INVITE:
                raise PeerNotFound(f"no group or channel @{name}, and no invite with that hash") from None
            raise


@dataclass(kw_only=True, eq=False)
class GroupOps:
    repos: Repos
    pool: AccountPool
    accounts: Accounts
    health: Health
    emit: Emit
    #: Joins, creations and leaves are recorded (`accounts/membership.py`) before they are answered.
    memberships: Memberships

    async def _choose(self, account_id: str | None, phone: str | None) -> str:
        """The given account, or an active one (this replica's first, so no forwarding is needed)."""
        if account_id or phone:
            found = await self.accounts.find(telegram_cmd.AccountSelector(account_id=account_id, phone=phone))
            return str(found["_id"])
        for live_id, live in self.pool.live.items():
            doc = await self.repos.accounts.get(live_id)
            if live.connected and doc and doc["state"] == AccountState.ACTIVE.value:
                return live_id
        docs = await self.repos.accounts.find(
            {"state": AccountState.ACTIVE.value, "session_enc": {"$ne": None}},
            sort=[("last_active_at", -1)],
            limit=1,
        )
        if not docs:
            raise Conflict("no active account to do this with: log an account in (or give accountId)")
        return docs[0]["_id"]

    # --- join / leave ------------------------------------------------------------------------------

    @answers(DescribeUsers)
    async def describe_users(self, req: DescribeUsersRequest) -> KnownUsers:
        """What the fleet knows of these users from stored data (`known_users.py`)."""
        return await describe_users(self.repos, req)

    @answers(telegram_cmd.JoinGroup)
    async def join(self, req: telegram_cmd.JoinGroupRequest) -> telegram_cmd.JoinGroupResult:
        doc = await self.accounts.find(req)
        return await self.pool.call(AcctJoinGroup, doc["_id"], req)

    @account_call(AcctJoinGroup)
    async def join_here(
        self, live: LiveAccount, req: telegram_cmd.JoinGroupRequest
    ) -> telegram_cmd.JoinGroupResult:
        client = await self.pool.client_of(live)
        try:
            chat, already, pending = await _join(client, req.group)
        except TelegramFailure as exc:
            if exc.name in DEAD_INVITE:
                raise NotFound(f"the invite {req.group} is not valid or has expired ({exc.full})") from None
            raise await self.health.failure(live.account_id, exc, method="channels.joinChannel") from None
        except ERRORS as exc:
            raise await self.health.failure(live.account_id, exc, method="channels.joinChannel") from None
        if chat is not None:  # joined, or already a member (pending approval: not yet)
            await self.memberships.joined(live.account_id, chat.chat_id)
        if chat is not None and not already:
            await self.emit(
                GroupJoined(
                    account_id=live.account_id,
                    chat_id=chat.chat_id,
                    chat_kind=chat.kind,
                    title=chat.title,
                    username=chat.username,
                    members_count=chat.members_count,
                )
            )
        return telegram_cmd.JoinGroupResult(
            account_id=live.account_id, chat=chat, already_member=already, pending_approval=pending
        )

    @answers(telegram_cmd.LeaveGroup)
    async def leave(self, req: telegram_cmd.LeaveGroupRequest) -> telegram_cmd.LeaveGroupResult:
        doc = await self.accounts.find(req)
        return await self.pool.call(AcctLeaveGroup, doc["_id"], req)

    @account_call(AcctLeaveGroup)
    async def leave_here(
        self, live: LiveAccount, req: telegram_cmd.LeaveGroupRequest
    ) -> telegram_cmd.LeaveGroupResult:
        client = await self.pool.client_of(live)
        try:
            chat_id, was_member = await client.leave(req.group)
        except ERRORS as exc:
            raise await self.health.failure(live.account_id, exc, method="channels.leaveChannel") from None
        await self.memberships.left(live.account_id, chat_id)  # was a member or not, it is none now
        if was_member:
            await self.emit(GroupLeft(account_id=live.account_id, chat_id=chat_id))
        return telegram_cmd.LeaveGroupResult(
            account_id=live.account_id, chat_id=chat_id, was_member=was_member
        )

    # --- search / members --------------------------------------------------------------------------

    @answers(telegram_cmd.SearchGroups)
    async def search(self, req: telegram_cmd.SearchGroupsRequest) -> telegram_cmd.SearchGroupsResult:
        account_id = await self._choose(req.account_id, req.phone)
        req = req.model_copy(update={"account_id": account_id, "phone": None})
        return await self.pool.call(AcctSearchGroups, account_id, req)

    @account_call(AcctSearchGroups)
    async def search_here(
        self, live: LiveAccount, req: telegram_cmd.SearchGroupsRequest
    ) -> telegram_cmd.SearchGroupsResult:
        client = await self.pool.client_of(live)
        try:
            found = await client.search_chats(req.keyword, req.limit)
        except ERRORS as exc:
            raise await self.health.failure(live.account_id, exc, method="contacts.search") from None
        kinds = set(req.kinds or ["group", "supergroup", "channel"])
        if "supergroup" in kinds:
            kinds.add("gigagroup")
        items = [
            c
            for c in found
            if c.kind in kinds and (req.min_members is None or (c.members_count or 0) >= req.min_members)
        ]
        return telegram_cmd.SearchGroupsResult(
            keyword=req.keyword, account_id=live.account_id, items=items[: req.limit]
        )

    @answers(telegram_cmd.GetGroupMembers)
    async def members(self, req: telegram_cmd.GetGroupMembersRequest) -> Page[GroupMemberView]:
        account_id = await self._choose(req.account_id, req.phone)
        req = req.model_copy(update={"account_id": account_id, "phone": None})
        return await self.pool.call(AcctGetGroupMembers, account_id, req)

    @account_call(AcctGetGroupMembers)
    async def members_here(
        self, live: LiveAccount, req: telegram_cmd.GetGroupMembersRequest
    ) -> Page[GroupMemberView]:
        if req.cursor is not None and not req.cursor.isdigit():
            raise Invalid("cursor is not one this service gave out")
        offset = int(req.cursor or 0)
        client = await self.pool.client_of(live)
        try:
            page = await client.participants(
                req.group,
                filter="recent" if req.filter == "search" else req.filter,
                query=req.query if req.filter == "search" else None,
                offset=offset,
                limit=req.limit,
            )
        except ERRORS as exc:
            raise await self.health.failure(live.account_id, exc, method="channels.getParticipants") from None
        nxt = offset + len(page.members)
        return Page[GroupMemberView](
            items=page.members,
            next_cursor=str(nxt) if page.members and nxt < page.total else None,
            total=page.total,
        )

    # --- create ------------------------------------------------------------------------------------

    @answers(telegram_cmd.CreateGroup)
    async def create(self, req: telegram_cmd.CreateGroupRequest) -> CreatedGroupView:
        doc = await self.accounts.find(req)
        return await self.pool.call(AcctCreateGroup, doc["_id"], req, timeout=60)

    @account_call(AcctCreateGroup)
    async def create_here(self, live: LiveAccount, req: telegram_cmd.CreateGroupRequest) -> CreatedGroupView:
        client = await self.pool.client_of(live)
        try:
            made = await client.create_chat(req)
        except ERRORS as exc:
            raise await self.health.failure(live.account_id, exc, method="channels.createChannel") from None
        record: Doc = {
            "_id": new_id("cg"),
            "account_id": live.account_id,
            "kind": req.kind,
            "chat": made.chat.model_dump(mode="json", by_alias=False),
            "invite_link": made.invite_link,
            "invited": made.invited,
            "failed_invites": made.failed,
            "created_at": utcnow(),
        }
        await self.repos.created_groups.insert(record)
        await self.memberships.joined(live.account_id, made.chat.chat_id)
        await self.emit(
            GroupJoined(
                account_id=live.account_id,
                chat_id=made.chat.chat_id,
                chat_kind=made.chat.kind,
                title=made.chat.title,
                username=made.chat.username,
                members_count=made.chat.members_count,
            )
        )
        return _created(record)

    @answers(telegram_cmd.GetCreatedGroups)
    async def created(self, req: telegram_cmd.GetCreatedGroupsRequest) -> Page[CreatedGroupView]:
        q: Doc = {}
        if req.account_id:
            q["account_id"] = req.account_id
        if req.kind:
            q["kind"] = req.kind
        # A keyset page, newest first (a bad or foreign cursor is Invalid: VALIDATION_ERROR).
        docs, next_cursor = await self.repos.created_groups.newest_page(
            CREATED_ORDER, q, req.cursor, req.limit
        )
        total = await self.repos.created_groups.count(q)
        return Page[CreatedGroupView](items=[_created(d) for d in docs], next_cursor=next_cursor, total=total)


def _created(d: Doc) -> CreatedGroupView:
    return CreatedGroupView(
        id=d["_id"],
        account_id=d["account_id"],
        chat=ChatView.model_validate(d["chat"]),
        invite_link=d.get("invite_link"),
        invited=d.get("invited") or [],
        failed_invites=d.get("failed_invites") or [],
        created_at=d["created_at"],
    )
