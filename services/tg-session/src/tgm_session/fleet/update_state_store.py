"""Per-account Telegram update state (`update_states`): where catch-up resumes after a restart, a
reconnect or a lease move. One document per account:

    {_id: account id, pts, qts, date (unix seconds), seq, channels: {"<channel id>": pts}, updated_at}

Written only after everything up to that state went through the inbound path (published, or kept
by the outbox), so a crash between two writes re-fetches a little and loses nothing (the repeats
carry the same event ids, see `inbound.py`)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts.base import utcnow

from ..base_store import Doc, Repo

UPDATE_STATES = "update_states"


class UpdateStateStore(Repo):
    name = UPDATE_STATES

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        super().__init__(db)

    async def load(self, account_id: str) -> Doc | None:
        return await self.col.find_one({"_id": account_id})

    async def save(
        self, account_id: str, *, pts: int, qts: int, date: int, seq: int, channels: dict[int, int]
    ) -> None:
        """The state caught up to; channel pts only ever move forward (a slow writer cannot undo a
        later one: `$max`)."""
        update: Doc = {
            "$set": {"updated_at": utcnow()},
            "$max": {"pts": pts, "qts": qts, "date": date, "seq": seq},
        }
        for cid, cpts in channels.items():
            update["$max"][f"channels.{int(cid)}"] = int(cpts)
        await self.col.update_one({"_id": account_id}, update, upsert=True)

    async def reset(self, account_id: str, *, pts: int, qts: int, date: int, seq: int) -> None:
        """After differenceTooLong (or a server that went back): the server's state replaces ours."""
        await self.col.update_one(
            {"_id": account_id},
            {"$set": {"pts": pts, "qts": qts, "date": date, "seq": seq, "updated_at": utcnow()}},
            upsert=True,
        )

    async def forget(self, account_id: str) -> None:
        await self.col.delete_one({"_id": account_id})
