"""The API credential pool: api_id/api_hash pairs shared by up to `maxAccounts` accounts each.

Hashes are stored encrypted (bound to the credential id); views show `********` and the last four
characters. Slots are taken and given back atomically (`freeSlots`), so two replicas adding accounts
at once never overfill a credential.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import utcnow
from tgm_contracts.commands.telegram_ops import (
    ApiCredentialList,
    ApiCredentialTest,
    ApiCredentialTestRequest,
    DeleteApiCredential,
    DeleteApiCredentialRequest,
    DeleteApiCredentialResult,
    GetApiCredentials,
    GetApiCredentialsRequest,
    SaveApiCredential,
    SaveApiCredentialRequest,
    TestApiCredential,
)
from tgm_contracts.models.session import ApiCredentialView
from tgm_runtime import Conflict, DomainError, NotFound
from tgm_runtime.routes import answers

from ..ports import TelegramConnector, TelegramFailure, TelegramUnreachable
from ..store import Doc, Repos
from ..vault import Vault
from ..views import credential_view

DEFAULT_MAX_ACCOUNTS = 5


@dataclass(eq=False)
class CredentialPool:
    repos: Repos
    vault: Vault
    connector: TelegramConnector
    reload: Callable[[str], Awaitable[None]]
    _: KW_ONLY
    test_timeout: float = 20.0

    # --- slots -------------------------------------------------------------------------------------

    async def _create(
        self,
        api_id: int,
        api_hash: str,
        *,
        name: str | None,
        source: str,
        max_accounts: int,
        active: bool = True,
    ) -> Doc:
        ident = f"cred_{uuid.uuid4().hex[:12]}"
        now = utcnow()
        doc = {
            "_id": ident,
            "api_id": api_id,
            "api_hash_enc": self.vault.seal(api_hash, ident),
            "hash_tail": api_hash[-4:],
            "name": name,
            "source": source,
            "is_active": active,
            "max_accounts": max_accounts,
            "in_use": 0,
            "free_slots": max_accounts,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.repos.credentials.insert(doc)
        except Exception as exc:
            if "duplicate" in str(exc).lower() or "E11000" in str(exc):
                raise Conflict(f"apiId {api_id} is already in the pool") from None
            raise
        return doc

    async def assign(self, *, credential_id: str | None, api_id: int | None, api_hash: str | None) -> Doc:
        """Take a slot for one account: of the given credential, of the given pair (pooled if new),
        or of the least used active credential."""
        if credential_id is not None:
            doc = await self.repos.credentials.get(credential_id)
            if doc is None:
                raise NotFound(f"no API credential {credential_id}")
            taken = await self.repos.credentials.take_slot(credential_id)
            if taken is None:
                raise Conflict(
                    f"API credential {credential_id} is inactive or full ({doc['max_accounts']} accounts)"
                )
            return taken
        if api_id is not None and api_hash is not None:
            doc = await self.repos.credentials.by_api_id(api_id)
            if doc is None:
                doc = await self._create(
                    api_id, api_hash, name=None, source="manual", max_accounts=DEFAULT_MAX_ACCOUNTS
                )
            elif self.vault.open(doc["api_hash_enc"], doc["_id"]) != api_hash:
                raise Conflict(f"apiId {api_id} is in the pool with a different apiHash")
            taken = await self.repos.credentials.take_slot(doc["_id"])
            if taken is None:
                raise Conflict(f"API credential for apiId {api_id} is inactive or full")
            return taken
        taken = await self.repos.credentials.take_slot(None)
        if taken is None:
            raise Conflict(
                "no API credential with a free slot: add one with save-api-credential (or raise maxAccounts)"
            )
        return taken

    async def give_back(self, credential_id: str | None) -> None:
        if credential_id:
            await self.repos.credentials.give_back(credential_id)

    async def seed(self, api_id: int, api_hash: str) -> None:
        """A credential from the environment joins the pool once (operators who never open the screen)."""
        if await self.repos.credentials.by_api_id(api_id) is None:
            try:
                await self._create(
                    api_id, api_hash, name="from environment", source="imported", max_accounts=50
                )
            except Conflict:
                pass

    async def any_active(self) -> tuple[int, str] | None:
        docs = await self.repos.credentials.find({"is_active": True}, sort=[("created_at", 1)], limit=1)
        if not docs:
            return None
        return docs[0]["api_id"], self.vault.open(docs[0]["api_hash_enc"], docs[0]["_id"])

    # --- commands ----------------------------------------------------------------------------------

    async def _users(self, credential_id: str) -> list[str]:
        docs = await self.repos.accounts.find({"api_credential_id": credential_id}, projection={"_id": 1})
        return [d["_id"] for d in docs]

    async def view(self, doc: Doc) -> ApiCredentialView:
        return credential_view(doc, doc.get("hash_tail"), await self._users(doc["_id"]))

    async def _test(self, api_id: int, api_hash: str) -> tuple[bool, float | None, str | None]:
        try:
            latency = await self.connector.test_credential(api_id, api_hash, self.test_timeout)
        except TelegramFailure as exc:
            return False, None, exc.full
        except TelegramUnreachable as exc:
            raise DomainError(
                ErrorCode.UNAVAILABLE, f"cannot reach Telegram to test the credential: {exc}"
            ) from None
        return True, round(latency, 2), None

    @answers(SaveApiCredential)
    async def save(self, req: SaveApiCredentialRequest) -> ApiCredentialView:
        now = utcnow()
        api_hash = req.api_hash.get_secret_value() if req.api_hash else None
        test: dict[str, Any] = {}
        if req.test and req.api_id is not None and api_hash is not None:
            ok, _, error = await self._test(req.api_id, api_hash)
            if not ok:
                raise DomainError(
                    ErrorCode.TELEGRAM_ERROR,
                    f"Telegram does not accept apiId {req.api_id} with this apiHash: {error}",
                    {"telegramError": error},
                )
            test = {"last_tested_at": now, "last_test_ok": True, "last_test_error": None}
        if req.id is None:
            assert req.api_id is not None and api_hash is not None
            doc = await self._create(
                req.api_id,
                api_hash,
                name=req.name,
                source="manual",
                max_accounts=req.max_accounts or DEFAULT_MAX_ACCOUNTS,
                active=req.is_active if req.is_active is not None else True,
            )
            if test:
                doc = (await self.repos.credentials.set(doc["_id"], test)) or doc
            return await self.view(doc)
        existing = await self.repos.credentials.get(req.id)
        if existing is None:
            raise NotFound(f"no API credential {req.id}")
        doc = existing
        if req.api_hash is not None and req.api_id is None and req.test:
            ok, _, error = await self._test(doc["api_id"], api_hash or "")
            if not ok:
                raise DomainError(
                    ErrorCode.TELEGRAM_ERROR,
                    f"Telegram does not accept the new apiHash: {error}",
                    {"telegramError": error},
                )
            test = {"last_tested_at": now, "last_test_ok": True, "last_test_error": None}
        fields: Doc = dict(test)
        if req.api_id is not None and req.api_id != doc["api_id"]:
            other = await self.repos.credentials.by_api_id(req.api_id)
            if other is not None:
                raise Conflict(f"apiId {req.api_id} is already in the pool")
            fields["api_id"] = req.api_id
        if api_hash is not None:
            fields["api_hash_enc"] = self.vault.seal(api_hash, doc["_id"])
            fields["hash_tail"] = api_hash[-4:]
        if req.name is not None:
            fields["name"] = req.name
        if req.is_active is not None:
            fields["is_active"] = req.is_active
        users = await self._users(doc["_id"])
        maximum = req.max_accounts if req.max_accounts is not None else doc["max_accounts"]
        fields.update(max_accounts=maximum, in_use=len(users), free_slots=max(0, maximum - len(users)))
        updated = await self.repos.credentials.set(doc["_id"], fields)
        assert updated is not None
        if "api_id" in fields or "api_hash_enc" in fields:
            await self.repos.accounts.set_api_id(doc["_id"], updated["api_id"])
            for account_id in users:
                await self.reload(account_id)
        return await self.view(updated)

    @answers(GetApiCredentials)
    async def list(self, req: GetApiCredentialsRequest) -> ApiCredentialList:
        query: Doc = {"is_active": True} if req.active_only else {}
        docs = await self.repos.credentials.find(query, sort=[("created_at", 1)])
        items = [await self.view(d) for d in docs]
        return ApiCredentialList(
            items=items,
            capacity=sum(i.max_accounts for i in items if i.is_active),
            in_use=sum(i.accounts_in_use for i in items),
        )

    @answers(DeleteApiCredential)
    async def delete(self, req: DeleteApiCredentialRequest) -> DeleteApiCredentialResult:
        doc = await self.repos.credentials.get(req.id)
        if doc is None:
            raise NotFound(f"no API credential {req.id}")
        users = await self._users(doc["_id"])
        moved = 0
        if users:
            if req.reassign_to is None and not req.reassign_to_pool:
                raise Conflict(
                    f"API credential {req.id} is used by {len(users)} account(s); "
                    "give reassignTo or reassignToPool to move them",
                    {"accountIds": users[:50]},
                )
            # No new account may take this credential while its accounts move away.
            await self.repos.credentials.set(doc["_id"], {"is_active": False, "free_slots": 0})
            if req.reassign_to is not None:
                target = await self.repos.credentials.get(req.reassign_to)
                if target is None:
                    raise NotFound(f"no API credential {req.reassign_to}")
                if not target.get("is_active", True) or target.get("free_slots", 0) < len(users):
                    await self.repos.credentials.set(doc["_id"], {"is_active": doc.get("is_active", True)})
                    raise Conflict(
                        f"API credential {req.reassign_to} has no room for {len(users)} account(s)"
                    )
            for account_id in users:
                taken = await self.repos.credentials.take_slot(req.reassign_to)
                if taken is None:
                    raise Conflict(
                        f"the pool ran out of free slots after moving {moved} account(s); "
                        "add a credential and delete again",
                        {"moved": moved},
                    )
                await self.repos.accounts.set(
                    account_id, {"api_credential_id": taken["_id"], "api_id": taken["api_id"]}
                )
                await self.repos.credentials.give_back(doc["_id"])
                moved += 1
                await self.reload(account_id)
        await self.repos.credentials.delete(doc["_id"])
        return DeleteApiCredentialResult(id=req.id, deleted=True, reassigned_accounts=moved)

    @answers(TestApiCredential)
    async def test(self, req: ApiCredentialTestRequest) -> ApiCredentialTest:
        doc = None
        if req.id is not None:
            doc = await self.repos.credentials.get(req.id)
            if doc is None:
                raise NotFound(f"no API credential {req.id}")
            api_id, api_hash = doc["api_id"], self.vault.open(doc["api_hash_enc"], doc["_id"])
        else:
            assert req.api_id is not None and req.api_hash is not None
            api_id, api_hash = req.api_id, req.api_hash.get_secret_value()
            doc = await self.repos.credentials.by_api_id(api_id)
            if doc is not None and self.vault.open(doc["api_hash_enc"], doc["_id"]) != api_hash:
                doc = None  # a different pair than the pooled one: do not record on the pool entry
        ok, latency, error = await self._test(api_id, api_hash)
        now: datetime = utcnow()
        if doc is not None:
            await self.repos.credentials.set(
                doc["_id"], {"last_tested_at": now, "last_test_ok": ok, "last_test_error": error}
            )
        return ApiCredentialTest(
            ok=ok,
            api_id=api_id,
            credential_id=doc["_id"] if doc else None,
            latency_ms=latency,
            error=error,
            tested_at=now,
        )
