"""What campaign knows about fleet accounts, asked from tg-session and cached briefly.

- `pool(...)`: usable accounts for a pool (tg-session's `pick-accounts`: active, connected, not in
  a flood wait), cached a few seconds per pool and chat;
- `profiles(...)`: API credential and age of accounts (tg-session's `get-accounts`), cached a minute,
  for the per-credential limit and the warm-up ramp.

When tg-session cannot answer, pools are empty (pool jobs wait, reason `account_unavailable`) and
profiles are unknown (each account is its own credential; warm-up counts from the first time this
service saw the account) — both conservative.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tgm_contracts.commands.accounts import GetAccounts, GetAccountsRequest
from tgm_contracts.rpc_session import (
    DescribeAccounts,
    DescribeAccountsRequest,
    PickAccounts,
    PickAccountsRequest,
)
from tgm_runtime import DomainError

from .pacing import DAY, AccountProfile

log = logging.getLogger("tgm.campaign.accounts")

Call = Callable[[Any, Any, float], Awaitable[Any]]


@dataclass
class _Entry:
    at: float
    value: Any


class AccountDirectory:
    def __init__(
        self,
        call: Call,
        *,
        pool_ttl: float = 5.0,
        profile_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call = call
        self.pool_ttl = pool_ttl
        self.profile_ttl = profile_ttl
        self._clock = clock
        self._pools: dict[str, _Entry] = {}
        self._profiles: dict[str, _Entry] = {}
        self.last_error: str | None = None

    async def pool(self, spec: Mapping[str, Any] | None, member_of_chat: int | None = None) -> list[str]:
        """Usable account ids for a pool (`AccountPool` as stored), least used first."""
        spec = dict(spec or {})
        key = json.dumps([spec, member_of_chat], sort_keys=True)
        hit = self._pools.get(key)
        now = self._clock()
        if hit is not None and now - hit.at < self.pool_ttl:
            return list(hit.value)
        req = PickAccountsRequest(
            count=500,
            roles=spec.get("roles"),
            groups=spec.get("groups"),
            tags=spec.get("tags"),
            # snake_case as stored; `accountIds` in jobs written before the pool was stored by name
            among=spec.get("account_ids") or spec.get("accountIds"),
            member_of_chat_id=member_of_chat,
            category="send",
            strategy="least_used",
        )
        try:
            picked = await self._call(PickAccounts, req, 5.0)
            ids = [a.id for a in picked.accounts]
            self.last_error = None
        except DomainError as exc:
            if hit is not None and now - hit.at < 4 * self.pool_ttl:
                return list(hit.value)  # a blip: the recent answer is still the best guess
            self.last_error = f"{exc.code.value}: {exc.message}"
            log.warning("pick-accounts failed (%s); pool jobs wait", self.last_error)
            ids = []
        self._pools[key] = _Entry(now, ids)
        return list(ids)

    async def profiles(self, ids: Iterable[str]) -> dict[str, AccountProfile]:
        ids = list(dict.fromkeys(ids))
        now = self._clock()
        out: dict[str, AccountProfile] = {}
        missing = []
        for i in ids:
            hit = self._profiles.get(i)
            if hit is not None and now - hit.at < self.profile_ttl:
                if hit.value is not None:
                    out[i] = hit.value
            else:
                missing.append(i)
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            try:
                page = await self._call(GetAccounts, GetAccountsRequest(ids=chunk, limit=500), 5.0)
            except DomainError as exc:
                log.info(
                    "get-accounts failed (%s %s); pacing uses conservative profiles", exc.code, exc.message
                )
                for i in chunk:  # do not ask again for every round; retry after a short while
                    self._profiles[i] = _Entry(now - self.profile_ttl + 10, None)
                continue
            seen = set()
            wall = datetime.now(UTC)
            for acct in page.items:
                created = acct.created_at if acct.created_at.tzinfo else acct.created_at.replace(tzinfo=UTC)
                cred = acct.api_credential_id or (str(acct.api_id) if acct.api_id else None)
                profile = AccountProfile(
                    account_id=acct.id,
                    api_credential=cred,
                    age_days=max(0.0, (wall - created).total_seconds() / DAY),
                    warmup=acct.warmup_enabled,
                )
                self._profiles[acct.id] = _Entry(now, profile)
                out[acct.id] = profile
                seen.add(acct.id)
            for i in chunk:
                if i not in seen:
                    self._profiles[i] = _Entry(now, None)
        return out

    async def missing(self, ids: Iterable[str]) -> list[str]:
        """Ids tg-session says are not in the fleet ([] when it cannot say: checked at dispatch)."""
        ids = list(dict.fromkeys(ids))
        if not ids:
            return []
        try:
            briefs = await self._call(DescribeAccounts, DescribeAccountsRequest(account_ids=ids), 5.0)
        except DomainError as exc:
            log.info("describe-accounts failed (%s); accounts are checked at dispatch", exc.code.value)
            return []
        return list(briefs.missing)

    def forget_pools(self) -> None:
        """Drop cached pools (an account was cooled down or became unavailable)."""
        self._pools.clear()
