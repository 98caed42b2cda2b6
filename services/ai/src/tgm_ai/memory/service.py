"""Memory per account and user: facts, preferences, custom fields, tags, a summary and the provider
conversation ids; replies learn the name, city and e-mail a user states.

With DmFlow as the default provider, saved fields and tags are also written to the DmFlow user
(memory-template fields by key, tags by name) and its fields are shown on read; DmFlow being
unreachable never loses or hides the local memory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tgm_contracts.commands.ai import AiMemorySave, MemoryClearRequest, MemorySaveRequest
from tgm_contracts.models.ai import MemoryFact, MemoryView
from tgm_runtime.routes import answers

from ..domain.text import fold
from ..ids import now
from ..providers.base import ProviderError
from ..providers.dmflow import DmFlowProvider
from .store import MemoryStore

log = logging.getLogger("tgm.ai.memory")

_NAME = [
    re.compile(r"\bmy name is ([A-Z][\w'-]{1,30})", re.I),
    re.compile(r"\bi'?m ([A-Z][a-z'-]{1,30})\b"),
    re.compile(r"(?:我叫|我的名字是|我是)([\u4e00-\u9fffA-Za-z]{1,10}?)(?:[，,。.!！]|$)"),
]
_CITY = [
    re.compile(r"\bi live in ([A-Z][\w -]{1,40}?)(?:[,.!?]|$)", re.I),
    re.compile(r"(?:我住在|我在)([\u4e00-\u9fff]{2,8}?)(?:[，,。.!！工上生]|$)"),
]
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def facts_from(message: str) -> dict[str, str]:
    """Fields a user states about themselves (name, city, email) in a message."""
    out: dict[str, str] = {}
    for rx in _NAME:
        m = rx.search(message)
        if m and m.group(1).lower() not in ("not", "interested", "fine", "good", "here", "sorry"):
            out["name"] = m.group(1).strip()
            break
    for rx in _CITY:
        m = rx.search(message)
        if m:
            out["city"] = m.group(1).strip()
            break
    m = _EMAIL.search(message)
    if m:
        out["email"] = m.group(0)
    return out


@dataclass
class MemoryService:
    """Memory per account and user. With DmFlow as the default provider, saved fields and tags are
    also written to the DmFlow user (memory-template fields by key, tags by name) and its fields are
    shown on read; DmFlow being unreachable never loses the local memory."""

    store: MemoryStore
    remote: Callable[[], Awaitable[DmFlowProvider | None]] | None = None

    @staticmethod
    def remote_user_id(account_id: str, user_id: str) -> str:
        return f"{account_id}_{user_id}"[:128]

    async def get_merged(self, account_id: str, user_id: str) -> MemoryView:
        m = await self.get(account_id, user_id)
        dm = await self.remote() if self.remote else None
        if dm is None:
            return m
        try:
            user = await dm.get_user(self.remote_user_id(account_id, user_id))
        except ProviderError as exc:
            log.warning("dmflow user not read: %s", exc.message)
            return m
        for f in user.get("fields") or []:
            if isinstance(f, dict) and f.get("key") and f["key"] not in m.fields:
                m.fields[str(f["key"])] = str(f.get("value", ""))
        names = [str(t["name"]) for t in user.get("tags") or [] if isinstance(t, dict) and t.get("name")]
        m.tags = list(dict.fromkeys(m.tags + names))
        return m

    async def _push(self, m: MemoryView) -> None:
        dm = await self.remote() if self.remote else None
        if dm is None:
            return
        try:
            by_name = {str(t.get("name")): str(t.get("id")) for t in await dm.tags()}
            await dm.update_user(
                self.remote_user_id(m.account_id, m.user_id),
                username=str(m.fields["name"]) if m.fields.get("name") else None,
                fields={k: v for k, v in m.fields.items() if k != "name"},
                tag_ids=[by_name[t] for t in m.tags if t in by_name],
            )
        except ProviderError as exc:
            log.warning("dmflow user not updated: %s", exc.message)

    @staticmethod
    def _view(account_id: str, user_id: str, doc: dict[str, Any] | None) -> MemoryView:
        if doc is None:
            return MemoryView(account_id=account_id, user_id=user_id)
        return MemoryView.model_validate({k: v for k, v in doc.items() if k != "_id"})

    async def get(self, account_id: str, user_id: str) -> MemoryView:
        return self._view(account_id, user_id, await self.store.get(account_id, user_id))

    async def put(self, view: MemoryView) -> MemoryView:
        view.updated_at = now()
        await self.store.put(view.model_dump(mode="python", by_alias=False))
        return view

    @answers(AiMemorySave)
    async def save(self, req: MemorySaveRequest) -> MemoryView:
        m = await self.get(req.account_id, req.user_id)
        replace = req.mode == "replace"
        if req.facts is not None:
            stamped = [f.model_copy(update={"at": f.at or now()}) for f in req.facts]
            if replace:
                m.facts = stamped
            else:
                known = {fold(f.text) for f in m.facts}
                m.facts += [f for f in stamped if fold(f.text) not in known]
            m.facts = m.facts[-200:]
        if req.preferences is not None:
            m.preferences = dict(req.preferences) if replace else {**m.preferences, **req.preferences}
        if req.fields is not None:
            m.fields = dict(req.fields) if replace else {**m.fields, **req.fields}
        if req.tags is not None:
            m.tags = list(dict.fromkeys(req.tags)) if replace else list(dict.fromkeys(m.tags + req.tags))
        if req.summary is not None:
            m.summary = req.summary
        saved = await self.put(m)
        await self._push(saved)
        return saved

    async def clear(self, req: MemoryClearRequest) -> int:
        return await self.store.delete(req.account_id, req.user_id)

    async def learn(self, m: MemoryView, message: str) -> None:
        for k, v in facts_from(message).items():
            if m.fields.get(k) != v:
                m.fields[k] = v
                m.facts.append(MemoryFact(text=f"{k}: {v}", kind="fact", source="conversation", at=now()))
        m.facts = m.facts[-200:]
