"""Reply strategies: persona, tone, rules, forbidden topics, knowledge scopes, provider and hand-off
rules; one may be the default, and accounts are assigned one (`ai-apply-strategy`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tgm_contracts.commands.ai import (
    AiApplyStrategy,
    AiGetStrategies,
    AiSaveStrategy,
    ApplyStrategyRequest,
    ApplyStrategyResult,
    GetStrategiesRequest,
    StrategyInput,
    StrategyList,
)
from tgm_contracts.models.ai import Strategy
from tgm_runtime import Conflict, NotFound
from tgm_runtime.routes import answers

from ..ids import new_id, now
from .store import StrategyStore

DEFAULT_STRATEGY = Strategy(id="builtin", name="Built-in default", created_at=now(), updated_at=now())


def _strategy(doc: dict[str, Any] | None, accounts: list[str] | None = None) -> Strategy:
    if doc is None:
        return DEFAULT_STRATEGY
    return Strategy.model_validate(
        {**{k: v for k, v in doc.items() if k != "_id"}, "id": doc["_id"], "account_ids": accounts or []}
    )


@dataclass
class StrategyService:
    store: StrategyStore

    @answers(AiGetStrategies)
    async def list(self, req: GetStrategiesRequest) -> StrategyList:
        accounts = await self.store.accounts_of()
        docs = await self.store.all()
        default = next((d["_id"] for d in docs if d.get("is_default")), None)
        if req.account_id:
            s = await self.for_account(req.account_id)
            # The strategy in force, with every account it applies to (as in the full list).
            items = (
                [] if s.id == "builtin" else [s.model_copy(update={"account_ids": accounts.get(s.id, [])})]
            )
            return StrategyList(items=items, default_strategy_id=default)
        return StrategyList(
            items=[_strategy(d, accounts.get(d["_id"])) for d in docs], default_strategy_id=default
        )

    @answers(AiSaveStrategy)
    async def save(self, req: StrategyInput) -> Strategy:
        ts = now()
        if req.id:
            current = await self.store.get(req.id)
            if current is None:
                raise NotFound(f"strategy {req.id} not found")
            created = current["created_at"]
            sid = req.id
        else:
            same = await self.store.by_name(req.name)
            if same is not None:
                raise Conflict(
                    f"a strategy named {req.name!r} exists ({same['_id']}); give its id to update it"
                )
            sid, created = new_id("st"), ts
        doc = {
            **req.model_dump(mode="python", exclude={"id"}, by_alias=False),
            "_id": sid,
            "created_at": created,
            "updated_at": ts,
        }
        doc["handoff"] = req.handoff.model_dump(mode="python", by_alias=False)
        await self.store.put(doc)
        return _strategy(doc, (await self.store.accounts_of()).get(sid))

    @answers(AiApplyStrategy)
    async def apply(self, req: ApplyStrategyRequest) -> ApplyStrategyResult:
        if req.strategy_id is not None and await self.store.get(req.strategy_id) is None:
            raise NotFound(f"strategy {req.strategy_id} not found")
        accounts = list(dict.fromkeys(req.account_ids))
        before = await self.store.assignments(accounts)
        await self.store.apply(req.strategy_id, accounts)
        return ApplyStrategyResult(
            strategy_id=req.strategy_id, account_ids=accounts, previous={a: before.get(a) for a in accounts}
        )

    async def get(self, strategy_id: str) -> Strategy:
        doc = await self.store.get(strategy_id)
        if doc is None:
            raise NotFound(f"strategy {strategy_id} not found")
        return _strategy(doc)

    async def for_account(self, account_id: str | None) -> Strategy:
        if account_id:
            sid = await self.store.assignment(account_id)
            if sid:
                doc = await self.store.get(sid)
                if doc is not None:
                    return _strategy(doc)
        return _strategy(await self.store.default())

    async def for_request(self, strategy_id: str | None, account_id: str | None) -> Strategy:
        """The strategy a call names, else the account's, else the default one."""
        return await self.get(strategy_id) if strategy_id else await self.for_account(account_id)
