"""The collections of bot accounts: `bots` (token and session sealed), `bot_messages` (what each sent
message's callback actions are, to tell invoke from modal on a press) and `bot_sends` (one send per
idempotency key)."""

from __future__ import annotations

from typing import Any

from pymongo.errors import DuplicateKeyError
from tgm_contracts.base import utcnow

from ..base_store import Doc, Repo

BOTS = "bots"
BOT_MESSAGES = "bot_messages"
BOT_SENDS = "bot_sends"


class BotsRepo(Repo):
    name = BOTS


class BotMessagesRepo(Repo):
    name = BOT_MESSAGES

    async def remember(
        self, bot_id: str, chat_id: int, message_ids: list[int], actions: dict[str, str]
    ) -> None:
        if not actions:
            return
        now = utcnow()
        for mid in message_ids:
            await self.col.update_one(
                {"_id": f"{bot_id}:{chat_id}:{mid}"},
                {
                    "$set": {
                        "bot_id": bot_id,
                        "chat_id": chat_id,
                        "message_id": mid,
                        "actions": actions,
                        "sent_at": now,
                    }
                },
                upsert=True,
            )

    async def kind_of(self, bot_id: str, chat_id: int, message_id: int, action_id: str) -> str | None:
        doc = await self.get(f"{bot_id}:{chat_id}:{message_id}")
        return (doc or {}).get("actions", {}).get(action_id)


class BotSendsRepo(Repo):
    name = BOT_SENDS

    async def claim(self, bot_id: str, key: str) -> Doc | None:
        """None if this key is new (now claimed), else the existing record."""
        try:
            await self.col.insert_one(
                {"_id": f"{bot_id}:{key}", "bot_id": bot_id, "state": "sending", "at": utcnow()}
            )
        except DuplicateKeyError:
            return await self.get(f"{bot_id}:{key}")
        return None

    async def done(self, bot_id: str, key: str, result: dict[str, Any]) -> None:
        await self.set(f"{bot_id}:{key}", {"state": "sent", "result": result})

    async def release(self, bot_id: str, key: str) -> None:
        await self.delete(f"{bot_id}:{key}")


class BotStore:
    def __init__(self, db: Any) -> None:
        self.bots = BotsRepo(db)
        self.messages = BotMessagesRepo(db)
        self.sends = BotSendsRepo(db)

    async def forget(self, bot_id: str) -> None:
        await self.bots.delete(bot_id)
        await self.messages.col.delete_many({"bot_id": bot_id})
        await self.sends.col.delete_many({"bot_id": bot_id})
