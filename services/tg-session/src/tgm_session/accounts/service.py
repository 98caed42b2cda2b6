"""Accounts of the fleet: adding, listing, settings, bulk changes, groups/tags/personas, and the live
operations on one account (profile push and pull, status probe) run by its holder."""

from __future__ import annotations

import builtins
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack, utcnow
from tgm_contracts.commands import accounts as accounts_cmd
from tgm_contracts.events_session import AccountAdded, AccountRemoved
from tgm_contracts.models.session import (
    AccountGroupView,
    AccountSelector,
    AccountState,
    AccountView,
    BulkFailure,
    BulkResult,
    PersonaView,
    TagView,
)
from tgm_contracts.rpc_session import (
    AccountBriefs,
    CheckStatus,
    DescribeAccounts,
    DescribeAccountsRequest,
    Logout,
    PickAccounts,
    PickAccountsRequest,
    PickedAccounts,
    SyncInfo,
    UpdateProfile,
)
from tgm_contracts.settings import TelegramSettings
from tgm_runtime import Conflict, DomainError, Invalid, NotFound
from tgm_runtime.cursor import Keyset, decode
from tgm_runtime.routes import answers
from tgm_runtime.single_flight import SingleFlight

from ..base_store import put_ops
from ..credentials.service import CredentialPool
from ..fleet.calls import account_call
from ..fleet.connections import generate_device, seal_proxy
from ..fleet.health import HOLDABLE, Health
from ..fleet.leases import LeaseStore
from ..fleet.pool import AccountPool, LiveAccount
from ..ports import TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos
from ..vault import Vault
from ..views import account_brief, account_fields, account_view, daily_count, record_view, today
from .membership import Memberships
from .store import MEMBER_CHATS, NamedRepo

#: Account settings an update stores as given (group, tags and persona are checked first).
PLAIN_SETTINGS = (
    "label",
    "role",
    "notes",
    "daily_send_limit",
    "warmup_enabled",
    "ai_enabled",
    "ai_model",
    "ai_personality",
)
#: Every setting an operator gives an account (update-account; qr-login-create keeps them for later).
ACCOUNT_SETTINGS = (*PLAIN_SETTINGS, "group", "tags", "persona_id")


#: A chat id is stored as a 64-bit integer; anything outside is no chat.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@dataclass(kw_only=True, eq=False)
class Accounts:
    repos: Repos
    vault: Vault
    pool: AccountPool
    credentials: CredentialPool
    health: Health
    leases: LeaseStore
    publish: Callable[[Any], Awaitable[None]]
    telegram_settings: Callable[[], Awaitable[TelegramSettings]]
    #: Which accounts are in which chat (`membership.py`): `pick` with `member_of_chat_id`.
    memberships: Memberships
    #: The pass over the lease bucket under way, which calls arriving meanwhile share (`holders`).
    _holders_pass: SingleFlight = field(default_factory=SingleFlight, init=False, repr=False)

    # --- lookups -----------------------------------------------------------------------------------

    async def find(self, sel: AccountSelector | accounts_cmd.AccountSelector) -> Doc:
        if sel.account_id is not None:
            doc = await self.repos.accounts.get(sel.account_id)
            if doc is None:
                raise NotFound(f"no account {sel.account_id}")
            if sel.phone is not None and doc["phone"] != sel.phone:
                raise Invalid("accountId and phone name different accounts")
            return doc
        assert sel.phone is not None
        doc = await self.repos.accounts.by_phone(sel.phone)
        if doc is None:
            raise NotFound(f"no account with phone {sel.phone}")
        return doc

    async def holders(self) -> dict[str, str]:
        """Every held account and its holder, from one pass over the lease bucket; calls that arrive
        while a pass is under way share it (its answer is as new as theirs would be)."""
        return await self._holders_pass.run("holders", self._read_holders)

    async def _read_holders(self) -> dict[str, str]:
        snap = await self.leases.snapshot("acct")
        return {k[5:]: v for k, v in snap.items()}

    async def view(self, doc: Doc) -> AccountView:
        holder = await self.leases.holder(f"acct.{doc['_id']}")
        return account_view(doc, holder=holder)

    # --- add ---------------------------------------------------------------------------------------

    async def _check_proxy_room(self, host: str, port: int, exclude: str | None = None) -> None:
        settings = await self.telegram_settings()
        used = await self.repos.accounts.count_by_proxy(host, port, exclude)
        if used >= settings.max_accounts_per_proxy:
            raise Conflict(
                f"proxy {host}:{port} already carries {used} account(s); "
                f"telegram.maxAccountsPerProxy is {settings.max_accounts_per_proxy}"
            )

    async def _ensure_group(self, name: str | None) -> None:
        if name is None:
            return
        key = name.casefold()
        if await self.repos.groups.by_key(key) is None:
            try:
                await self.repos.groups.insert(
                    {"_id": new_id("grp"), "key": key, "name": name, "created_at": utcnow()}
                )
            except Exception:
                pass  # created at the same moment by another call

    async def _check_persona(self, persona_id: str | None) -> None:
        if persona_id is not None and await self.repos.personas.get(persona_id) is None:
            raise NotFound(f"no persona {persona_id}")

    @answers(accounts_cmd.AddAccount)
    async def add(self, req: accounts_cmd.AddAccountRequest) -> AccountView:
        settings = await self.telegram_settings()
        if await self.repos.accounts.by_phone(req.phone) is not None:
            raise Conflict(f"{req.phone} is already in the fleet")
        if req.proxy is None and settings.require_proxy:
            raise Invalid("telegram.requireProxy is on: give the account a proxy")
        if req.proxy is not None:
            await self._check_proxy_room(req.proxy.host, req.proxy.port)
        await self._check_persona(req.persona_id)
        account_id = new_id("acc")
        cred = await self.credentials.assign(
            credential_id=req.api_credential_id,
            api_id=req.api_id,
            api_hash=req.api_hash.get_secret_value() if req.api_hash else None,
        )
        now = utcnow()
        doc: Doc = {
            "_id": account_id,
            "phone": req.phone,
            "label": req.label,
            "state": AccountState.NEW.value,
            "state_reason": None,
            "state_changed_at": now,
            "role": (req.role or "unassigned"),
            "group": req.group,
            "tags": list(dict.fromkeys(req.tags or [])),
            "persona_id": req.persona_id,
            "notes": req.notes,
            "profile": {},
            "api_credential_id": cred["_id"],
            "api_id": cred["api_id"],
            "device": generate_device(
                account_id, req.device.model_dump(by_alias=False) if req.device else None, settings
            ),
            "session_enc": None,
            "connected": False,
            "holder": None,
            "daily_send_limit": req.daily_send_limit if req.daily_send_limit is not None else 50,
            "warmup_enabled": req.warmup_enabled if req.warmup_enabled is not None else True,
            "ai_enabled": bool(req.ai_enabled),
            "ai_model": req.ai_model,
            "ai_personality": req.ai_personality,
            "created_at": now,
            "updated_at": now,
        }
        if req.proxy is not None:
            doc["proxy_enc"], doc["proxy_view"] = seal_proxy(self.vault, req.proxy, account_id)
            doc["binding"] = {
                "bound_at": now,
                "is_active": True,
                "reason": "added with the account",
                "country": req.proxy.country,
                "kind": req.proxy.kind,
            }
        if req.session_string is not None:
            doc["session_enc"] = self.vault.seal(req.session_string.get_secret_value(), account_id)
            doc["state"] = AccountState.DISCONNECTED.value
            doc["state_reason"] = "session imported; not connected yet"
        await self._ensure_group(req.group)
        if await self.repos.accounts.add(doc) is None:
            await self.credentials.give_back(cred["_id"])
            raise Conflict(f"{req.phone} is already in the fleet")
        await self.publish(
            AccountAdded(
                account_id=account_id, phone=req.phone, label=req.label, role=doc["role"], group=req.group
            )
        )
        if doc["session_enc"]:
            self.pool.wake()
        return account_view(doc, holder=None)

    # --- list --------------------------------------------------------------------------------------

    def _query(self, req: accounts_cmd.GetAccountsRequest) -> Doc:
        q: Doc = {}
        if req.state:
            q["state"] = {"$in": [s.value for s in req.state]}
        if req.ungrouped:
            q["group"] = None
        elif req.group is not None:
            q["group"] = req.group
        if req.tag is not None:
            q["tags"] = req.tag
        if req.role is not None:
            q["role"] = req.role.value
        if req.persona_id is not None:
            q["persona_id"] = req.persona_id
        if req.connected is not None:
            q["connected"] = True if req.connected else {"$ne": True}
        if req.ids:
            q["_id"] = {"$in": req.ids}
        if req.text:
            rx = {"$regex": re.escape(req.text), "$options": "i"}
            q["$or"] = [
                {"phone": rx},
                {"label": rx},
                {"profile.username": rx},
                {"profile.first_name": rx},
                {"profile.last_name": rx},
            ]
        return q

    @answers(accounts_cmd.GetAccounts)
    async def list(self, req: accounts_cmd.GetAccountsRequest) -> accounts_cmd.AccountPage:
        """A keyset page (sort field, then `_id`) and the filter's per-state tallies (accounts/store.py).
        The page is validated as a whole (`views.account_fields`) and every account is shown at one
        moment; the lease bucket is read only for a page with an account that has a session, since the
        pool claims only those (`AccountsRepo.eligible_ids`)."""
        q = self._query(req)
        order = Keyset((req.sort, "_id"), req.order == "desc", _NULLABLE & {req.sort})
        repo = self.repos.accounts
        if not q and req.sort == "created_at":
            after = tuple(decode(req.cursor, 2, order.tag)) if req.cursor else None
            docs = await repo.in_created_order(after, req.limit + 1, order.descending)
        else:
            docs = await repo.find(order.where(q, req.cursor), sort=order.sort(), limit=req.limit + 1)
        page, next_cursor = order.page(docs, req.limit)
        by_state = await repo.tally(q)
        holders = await self.holders() if any(d.get("session_enc") for d in page) else {}
        now = utcnow()
        day = today(now)
        return accounts_cmd.AccountPage.model_validate(
            {
                "items": [account_fields(d, holder=holders.get(d["_id"]), now=now, day=day) for d in page],
                "next_cursor": next_cursor,
                "total": sum(by_state.values()),
                "by_state": by_state,
            }
        )

    # --- update ------------------------------------------------------------------------------------

    @answers(accounts_cmd.UpdateAccount)
    async def update(self, req: accounts_cmd.UpdateAccountRequest) -> AccountView:
        doc = await self.find(req)
        given = req.model_fields_set
        fields: Doc = {}
        unset: list[str] = []
        for name in PLAIN_SETTINGS:
            if name in given:
                value = getattr(req, name)
                fields[name] = value.value if hasattr(value, "value") else value
        if "group" in given:
            await self._ensure_group(req.group)
            fields["group"] = req.group
        if "tags" in given:
            fields["tags"] = list(dict.fromkeys(req.tags or []))
        if "persona_id" in given:
            await self._check_persona(req.persona_id)
            fields["persona_id"] = req.persona_id
        reconnect = False
        if "proxy" in given:
            settings = await self.telegram_settings()
            if req.proxy is None:
                if settings.require_proxy:
                    raise Invalid("telegram.requireProxy is on: an account cannot be left without a proxy")
                unset += ["proxy_enc", "proxy_view", "binding"]
            else:
                await self._check_proxy_room(req.proxy.host, req.proxy.port, exclude=doc["_id"])
                fields["proxy_enc"], fields["proxy_view"] = seal_proxy(self.vault, req.proxy, doc["_id"])
                fields["binding"] = {
                    "bound_at": utcnow(),
                    "is_active": True,
                    "reason": "update-account",
                    "country": req.proxy.country,
                    "kind": req.proxy.kind,
                }
            await self.repos.ip_changes.insert(
                {
                    "_id": new_id("ipc"),
                    "account_id": doc["_id"],
                    "action": "unbind"
                    if req.proxy is None
                    else ("rebind" if doc.get("proxy_view") else "bind"),
                    "from_proxy": _addr(doc.get("proxy_view")),
                    "to_proxy": f"{req.proxy.host}:{req.proxy.port}" if req.proxy else None,
                    "reason": "update-account",
                    "at": utcnow(),
                }
            )
            reconnect = True
        if "device" in given and req.device is not None:
            settings = await self.telegram_settings()
            merged = {**(doc.get("device") or {}), **req.device.model_dump(exclude_none=True, by_alias=False)}
            fields["device"] = generate_device(doc["_id"], merged, settings)
            reconnect = True
        if given & {"api_credential_id", "api_id", "api_hash"} and (req.api_credential_id or req.api_id):
            cred = await self.credentials.assign(
                credential_id=req.api_credential_id,
                api_id=req.api_id,
                api_hash=req.api_hash.get_secret_value() if req.api_hash else None,
            )
            if cred["_id"] == doc.get("api_credential_id"):
                await self.credentials.give_back(cred["_id"])  # same one: keep the slot it had
            else:
                await self.credentials.give_back(doc.get("api_credential_id"))
                fields.update(api_credential_id=cred["_id"], api_id=cred["api_id"])
                reconnect = True
        updated = await self.repos.accounts.set(doc["_id"], fields, unset) if (fields or unset) else doc
        assert updated is not None
        if reconnect and updated.get("session_enc"):
            await self.pool.refresh(doc["_id"])
        return await self.view(updated)

    # --- live: profile -----------------------------------------------------------------------------

    @answers(accounts_cmd.UpdateAccountData)
    async def update_data(self, req: accounts_cmd.UpdateAccountDataRequest) -> AccountView:
        doc = await self.find(req)
        return await self.pool.call(UpdateProfile, doc["_id"], req)

    @account_call(UpdateProfile)
    async def update_data_here(
        self, live: LiveAccount, req: accounts_cmd.UpdateAccountDataRequest
    ) -> AccountView:
        client = await self.pool.client_of(live)
        given = req.model_fields_set
        try:
            profile = None
            if given & {"first_name", "last_name", "bio"}:
                profile = await client.update_profile(
                    req.first_name if "first_name" in given else None,
                    req.last_name if "last_name" in given else None,
                    req.bio if "bio" in given else None,
                )
            if "username" in given and req.username is not None:
                profile = await client.update_username(req.username)
            if "photo_url" in given and req.photo_url:
                await client.set_photo(req.photo_url)
                profile = await client.get_me()
            bio = req.bio if "bio" in given else None
            if bio is None:
                bio = await client.get_bio()
        except (TelegramFailure, TelegramUnreachable) as exc:
            raise await self.health.failure(live.account_id, exc) from None
        return await self._store_profile(live.account_id, profile, bio)

    async def _store_profile(self, account_id: str, profile: Any, bio: str | None) -> AccountView:
        doc = await self.repos.accounts.get(account_id)
        assert doc is not None
        merged = dict(doc.get("profile") or {})
        if profile is not None:
            merged.update(profile.model_dump(exclude={"bio"}, by_alias=False))
        merged["bio"] = bio
        merged["synced_at"] = utcnow()
        updated = await self.repos.accounts.set(account_id, {"profile": merged, "last_active_at": utcnow()})
        assert updated is not None
        return await self.view(updated)

    @answers(accounts_cmd.SyncAccountInfo)
    async def sync_info(self, req: AccountSelector) -> AccountView:
        doc = await self.find(req)
        return await self.pool.call(SyncInfo, doc["_id"], req)

    @account_call(SyncInfo)
    async def sync_info_here(self, live: LiveAccount, req: AccountSelector) -> AccountView:
        client = await self.pool.client_of(live)
        try:
            me = await client.get_me()
            bio = await client.get_bio()
        except (TelegramFailure, TelegramUnreachable) as exc:
            raise await self.health.failure(live.account_id, exc) from None
        return await self._store_profile(live.account_id, me, bio)

    # --- live: status ------------------------------------------------------------------------------

    @answers(accounts_cmd.CheckAccountStatus)
    async def check_status(self, req: AccountSelector) -> accounts_cmd.AccountStatusReport:
        doc = await self.find(req)
        previous = AccountState(doc["state"])
        if not doc.get("session_enc") or previous not in HOLDABLE:
            return accounts_cmd.AccountStatusReport(
                account_id=doc["_id"],
                state=previous,
                previous_state=previous,
                changed=False,
                connected=False,
                reason=doc.get("state_reason") or "no usable session: log the account in",
                checked_at=utcnow(),
            )
        try:
            return await self.pool.call(CheckStatus, doc["_id"], req)
        except DomainError as exc:
            if exc.code not in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                raise
            now_doc = await self.repos.accounts.get(doc["_id"]) or doc
            return accounts_cmd.AccountStatusReport(
                account_id=doc["_id"],
                state=AccountState(now_doc["state"]),
                previous_state=previous,
                changed=now_doc["state"] != previous.value,
                connected=False,
                reason=exc.message,
                flood_wait_until=now_doc.get("flood_wait_until"),
                checked_at=utcnow(),
            )

    @account_call(CheckStatus)
    async def check_status_here(
        self, live: LiveAccount, req: AccountSelector
    ) -> accounts_cmd.AccountStatusReport:
        doc = await self.repos.accounts.get(live.account_id)
        if doc is None:
            raise NotFound(f"no account {live.account_id}")
        previous = AccountState(doc["state"])
        reason = None
        latency = None
        profile = None
        try:
            client = await self.pool.client_of(live, timeout=10)
            started = time.perf_counter()
            profile = await client.get_me()
            if profile is None:
                raise TelegramFailure("AUTH_KEY_UNREGISTERED", method="users.getUsers")
            await client.ping()
            latency = round((time.perf_counter() - started) * 1000, 2)
            doc = await self.health.recover(doc) or doc
            if AccountState(doc["state"]) in (AccountState.DISCONNECTED, AccountState.PROXY_ERROR):
                doc = await self.health.transition(doc, AccountState.ACTIVE, "probe succeeded") or doc
            await self.repos.accounts.set(
                live.account_id,
                {
                    "profile": {
                        **(doc.get("profile") or {}),
                        **profile.model_dump(exclude={"bio"}, by_alias=False),
                        "bio": (doc.get("profile") or {}).get("bio"),
                    },
                    "last_active_at": utcnow(),
                },
            )
        except (TelegramFailure, TelegramUnreachable) as exc:
            err = await self.health.failure(live.account_id, exc, method="users.getUsers")
            reason = (err.details or {}).get("telegramError") if isinstance(err.details, dict) else None
            reason = reason or err.message
        except DomainError as exc:
            reason = exc.message
        now_doc = await self.repos.accounts.get(live.account_id) or doc
        state = AccountState(now_doc["state"])
        return accounts_cmd.AccountStatusReport(
            account_id=live.account_id,
            state=state,
            previous_state=previous,
            changed=state is not previous,
            connected=live.connected,
            reason=reason or now_doc.get("state_reason"),
            latency_ms=latency,
            flood_wait_until=now_doc.get("flood_wait_until"),
            profile=profile,
            checked_at=utcnow(),
        )

    # --- remove ------------------------------------------------------------------------------------

    @answers(accounts_cmd.RemoveAccount)
    async def remove(self, req: accounts_cmd.RemoveAccountRequest) -> Ack:
        doc = await self.find(req)
        await self._remove(doc, req.logout)
        return Ack(affected=1)

    async def _remove(self, doc: Doc, logout: bool) -> None:
        logged_out = False
        if logout and doc.get("session_enc"):
            try:
                await self.pool.call(Logout, doc["_id"], AccountSelector(account_id=doc["_id"]))
                logged_out = True
            except DomainError:
                logged_out = False  # best effort: the account is removed all the same
        await self.repos.accounts.delete(doc["_id"])
        await self.pool.release(doc["_id"], "released")
        await self.pool.refresh(doc["_id"])  # a remote holder notices the account is gone and lets go
        await self.repos.peers.forget(doc["_id"])  # its access hashes go with it (`fleet/peers.py`)
        await self.repos.code_logins.delete(doc["_id"])
        await self.credentials.give_back(doc.get("api_credential_id"))
        await self.publish(AccountRemoved(account_id=doc["_id"], phone=doc["phone"], logged_out=logged_out))

    @answers(accounts_cmd.BulkDeleteAccounts)
    async def bulk_delete(self, req: accounts_cmd.BulkDeleteAccountsRequest) -> BulkResult:
        failed: list[BulkFailure] = []
        done = 0
        for account_id in req.account_ids:
            doc = await self.repos.accounts.get(account_id)
            if doc is None:
                failed.append(BulkFailure(account_id=account_id, code="NOT_FOUND", message="no such account"))
                continue
            try:
                await self._remove(doc, req.logout)
                done += 1
            except DomainError as exc:
                failed.append(BulkFailure(account_id=account_id, code=exc.code.value, message=exc.message))
        return BulkResult(ok=not failed, requested=len(req.account_ids), affected=done, failed=failed)

    # --- bulk settings -----------------------------------------------------------------------------

    async def _bulk(self, ids: builtins.list[str], update: Doc) -> BulkResult:
        existing = {
            d["_id"] for d in await self.repos.accounts.find({"_id": {"$in": ids}}, projection={"_id": 1})
        }
        missing = [i for i in ids if i not in existing]
        if existing:
            if "$set" in update:
                update["$set"]["updated_at"] = utcnow()
            else:
                update["$set"] = {"updated_at": utcnow()}
            await self.repos.accounts.update_ids(list(existing), update)
        return BulkResult(
            ok=not missing,
            requested=len(ids),
            affected=len(existing),
            failed=[BulkFailure(account_id=i, code="NOT_FOUND", message="no such account") for i in missing],
        )

    @answers(accounts_cmd.BatchUpdateAccounts)
    async def batch_update(self, req: accounts_cmd.BatchUpdateAccountsRequest) -> BulkResult:
        u = req.updates
        given = u.model_fields_set
        sets: Doc = {}
        for name in (
            "group",
            "persona_id",
            "daily_send_limit",
            "warmup_enabled",
            "ai_enabled",
            "ai_model",
            "ai_personality",
            "notes",
        ):
            if name in given:
                sets[name] = getattr(u, name)
        if "role" in given and u.role is not None:
            sets["role"] = u.role.value
        if "group" in given:
            await self._ensure_group(u.group)
        if "persona_id" in given:
            await self._check_persona(u.persona_id)
        tags_update: Doc = {}
        if u.tags is not None:
            if u.tags.mode == "set":
                sets["tags"] = list(dict.fromkeys(u.tags.tags))
            elif u.tags.mode == "add":
                tags_update = {"$addToSet": {"tags": {"$each": u.tags.tags}}}
            else:
                tags_update = {"$pull": {"tags": {"$in": u.tags.tags}}}
        update: Doc = {"$set": sets} if sets else {}
        update.update(tags_update)
        return await self._bulk(req.account_ids, update)

    @answers(accounts_cmd.BulkAssignGroup)
    async def bulk_assign_group(self, req: accounts_cmd.BulkAssignGroupRequest) -> BulkResult:
        await self._ensure_group(req.group)
        return await self._bulk(req.account_ids, {"$set": {"group": req.group}})

    @answers(accounts_cmd.BulkAssignRole)
    async def bulk_assign_role(self, req: accounts_cmd.BulkAssignRoleRequest) -> BulkResult:
        return await self._bulk(req.account_ids, {"$set": {"role": req.role.value}})

    # --- groups, tags, personas --------------------------------------------------------------------

    @answers(accounts_cmd.GetGroups)
    async def groups(self) -> accounts_cmd.AccountGroupList:
        docs = await self.repos.groups.find({}, sort=[("name", 1)])
        counts = await _counts(self.repos, "group")
        return accounts_cmd.AccountGroupList(
            groups=[
                AccountGroupView(
                    id=d["_id"],
                    name=d["name"],
                    color=d.get("color"),
                    description=d.get("description"),
                    account_count=counts.get(d["name"], 0),
                )
                for d in docs
            ]
        )

    @answers(accounts_cmd.SaveGroups)
    async def save_groups(self, req: accounts_cmd.SaveGroupsRequest) -> accounts_cmd.AccountGroupList:
        keep: set[str] = set()
        for g in req.groups:
            fields = {
                "key": g.name.casefold(),
                "name": g.name,
                "color": g.color,
                "description": g.description,
            }
            ident, current = await _save_named(self.repos.groups, GROUP, g.id, fields)
            if current is not None and current["name"] != g.name:
                await self.repos.accounts.move_group(current["name"], g.name)
            keep.add(ident)
        if req.replace:
            for d in await self.repos.groups.find({"_id": {"$nin": list(keep)}}):
                await self.repos.accounts.move_group(d["name"], None)
                await self.repos.groups.delete(d["_id"])
        return await self.groups()

    @answers(accounts_cmd.GetTags)
    async def tags(self) -> accounts_cmd.TagList:
        counts = await _tag_counts(self.repos)
        defined = {d["_id"]: d for d in await self.repos.tags.find({})}
        names = sorted(set(defined) | set(counts))
        return accounts_cmd.TagList(
            tags=[
                TagView(name=n, color=(defined.get(n) or {}).get("color"), account_count=counts.get(n, 0))
                for n in names
            ]
        )

    @answers(accounts_cmd.SaveTags)
    async def save_tags(self, req: accounts_cmd.SaveTagsRequest) -> accounts_cmd.TagList:
        keep = set()
        for t in req.tags:
            if t.rename_from and t.rename_from != t.name:
                await self.repos.accounts.rename_tag(t.rename_from, t.name)
                await self.repos.tags.delete(t.rename_from)
            await self.repos.tags.save(t.name, t.color)
            keep.add(t.name)
        if req.replace:
            await self.repos.tags.delete_except(list(keep))
            await self.repos.accounts.keep_only_tags(list(keep))
        return await self.tags()

    @answers(accounts_cmd.GetPersonas)
    async def personas(self) -> accounts_cmd.PersonaList:
        docs = await self.repos.personas.find({}, sort=[("name", 1)])
        counts = await _counts(self.repos, "persona_id")
        return accounts_cmd.PersonaList(personas=[_persona(d, counts.get(d["_id"], 0)) for d in docs])

    @answers(accounts_cmd.SavePersonas)
    async def save_personas(self, req: accounts_cmd.SavePersonasRequest) -> accounts_cmd.PersonaList:
        keep: set[str] = set()
        for p in req.personas:
            fields = p.model_dump(exclude={"id"}, by_alias=False)
            fields["key"] = p.name.casefold()
            ident, _ = await _save_named(self.repos.personas, PERSONA, p.id, fields)
            keep.add(ident)
        if req.replace:
            gone = [d["_id"] for d in await self.repos.personas.find({"_id": {"$nin": list(keep)}})]
            if gone:
                await self.repos.accounts.clear_personas(gone)
                await self.repos.personas.delete_ids(gone)
        return await self.personas()

    # --- pool-wide internal calls ------------------------------------------------------------------

    @answers(PickAccounts)
    async def pick(self, req: PickAccountsRequest) -> PickedAccounts:
        q: Doc = {
            "state": {"$in": [AccountState.ACTIVE.value, AccountState.FLOOD_WAIT.value]},
            "session_enc": {"$ne": None},
        }
        if req.roles:
            q["role"] = {"$in": [r.value for r in req.roles]}
        if req.groups:
            q["group"] = {"$in": req.groups}
        if req.tags:
            q["tags"] = {"$in": req.tags}
        if req.member_of_chat_id is not None:
            if not INT64_MIN <= req.member_of_chat_id <= INT64_MAX:
                raise Invalid("memberOfChatId is not a Telegram chat id")
            q[MEMBER_CHATS] = req.member_of_chat_id  # members known (`membership.py`): one indexed query
        put_ops(q, "_id", {"$in": req.among, "$nin": req.exclude})
        docs = await self.repos.accounts.find(q, projection={MEMBER_CHATS: 0})
        holders = await self.holders()
        now = utcnow()
        day = today(now)
        usable = []
        for d in docs:
            until = (d.get("flood_waits") or {}).get(req.category)
            if until and until > now:
                continue
            if d["_id"] not in holders:
                continue
            if daily_count(d, day) >= d.get("daily_send_limit", 50):
                continue
            usable.append(d)
        if req.strategy == "least_used":
            usable.sort(key=lambda d: (daily_count(d, day), d.get("last_active_at") or d["created_at"]))
        elif req.strategy == "random":
            import random

            random.shuffle(usable)
        else:
            usable.sort(key=lambda d: d.get("last_active_at") or d["created_at"])
        return PickedAccounts(
            accounts=[account_brief(d, holders.get(d["_id"]), day) for d in usable[: req.count]],
            available=len(usable),
        )

    @answers(DescribeAccounts)
    async def describe(self, req: DescribeAccountsRequest) -> AccountBriefs:
        docs = {d["_id"]: d for d in await self.repos.accounts.find({"_id": {"$in": req.account_ids}})}
        holders = await self.holders()
        return AccountBriefs(
            accounts=[account_brief(docs[i], holders.get(i)) for i in req.account_ids if i in docs],
            missing=[i for i in req.account_ids if i not in docs],
        )


def _addr(view: Doc | None) -> str | None:
    return f"{view['host']}:{view['port']}" if view else None


#: Sort fields an account may lack (the keyset places their nulls lowest, as the database does).
_NULLABLE = frozenset({"label", "last_active_at"})


async def _counts(repos: Repos, field: str) -> dict[str, int]:
    return await repos.accounts.count_by(field)


async def _tag_counts(repos: Repos) -> dict[str, int]:
    return await repos.accounts.count_tags()


@dataclass(frozen=True)
class Named:
    """What tells one kind of named record from the other: its id prefix, its names in errors and the
    times a new one is stamped with."""

    prefix: str
    noun: str
    short: str
    stamps: tuple[str, ...]


GROUP = Named("grp", "account group", "group", ("created_at",))
PERSONA = Named("per", "persona", "persona", ("created_at", "updated_at"))


async def _save_named(repo: NamedRepo, kind: Named, ident: str | None, fields: Doc) -> tuple[str, Doc | None]:
    """Saves one named record (account group, persona): a new one when `ident` is none and no record
    has the name, else the one it refers to. The record's id, and the record as it was (None when new)."""
    current = await repo.current(ident, fields["key"])
    if ident and current is None:
        raise NotFound(f"no {kind.noun} {ident}")
    if current is None:
        new = new_id(kind.prefix)
        await repo.insert({"_id": new, **fields, **{stamp: utcnow() for stamp in kind.stamps}})
        return new, None
    if await repo.clash(fields["key"], current["_id"]) is not None:
        raise Conflict(f"another {kind.short} is already named {fields['name']!r}")
    await repo.set(current["_id"], fields)
    return current["_id"], current


def _persona(d: Doc, count: int) -> PersonaView:
    return record_view(PersonaView, d, account_count=count)
