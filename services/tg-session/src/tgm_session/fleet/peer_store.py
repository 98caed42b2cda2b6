"""The peers each account has seen (`peers`): the (marked peer id, access hash, username, phone,
name) rows Telethon learns, per account, so a new connection of that account (a restart, a
reconnect, the lease moving to another replica) can address an id it saw before. One document per
(account, peer):

    {_id: "<account id>:<marked peer id>", account_id, peer_id (marked: user > 0, chat -id,
     channel -100id), access_hash (int64, 0 for a basic group), username (lower case) | None,
     phone | None, name | None, seen_at}

Bounds (see `peers.py`): a TTL index drops a row not seen for `MAX_AGE_DAYS`; beyond `MAX_ROWS`
per account the least recently seen rows are deleted when the account connects. Access hashes are
account-specific tokens, not the user's secrets: they are stored per account, never logged, and
deleted with the account."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from ..base_store import Doc, Repo

PEERS = "peers"
#: A row not seen for this long is deleted (TTL index on `seen_at`).
MAX_AGE_DAYS = 90
#: At most this many rows per account (the least recently seen beyond it are deleted).
MAX_ROWS = 100_000

#: (marked peer id, access hash, username, phone, name), as Telethon's sessions keep a peer.
Row = tuple[int, int, str | None, str | None, str | None]


def peer_key(account_id: str, peer_id: int) -> str:
    return f"{account_id}:{int(peer_id)}"


async def create_peer_indexes(db: AsyncDatabase[Any]) -> None:
    col = db[PEERS]
    await col.create_index([("account_id", ASCENDING), ("seen_at", DESCENDING)])
    await col.create_index("seen_at", expireAfterSeconds=MAX_AGE_DAYS * 86400)


class PeersRepo(Repo):
    """What each account learnt about peers (access hashes are per account): lets a new connection
    reach an id it never saw itself."""

    name = PEERS

    async def save(self, account_id: str, rows: Sequence[Row], at: datetime) -> int:
        """Upsert `rows` (peer id, hash, username, phone, name) of one account, seen at `at`."""
        if not rows:
            return 0
        ops = [
            UpdateOne(
                {"_id": peer_key(account_id, pid)},
                {
                    "$set": {
                        "account_id": account_id,
                        "peer_id": int(pid),
                        "access_hash": int(h),
                        "username": username,
                        "phone": phone,
                        "name": name,
                        "seen_at": at,
                    }
                },
                upsert=True,
            )
            for pid, h, username, phone, name in rows
        ]
        await self.col.bulk_write(ops, ordered=False)
        return len(ops)

    async def load(self, account_id: str, limit: int = MAX_ROWS) -> list[Doc]:
        """The account's rows, most recently seen first, at most `limit`."""
        cursor = (
            self.col.find(
                {"account_id": account_id},
                {
                    "_id": 0,
                    "peer_id": 1,
                    "access_hash": 1,
                    "username": 1,
                    "phone": 1,
                    "name": 1,
                    "seen_at": 1,
                },
            )
            .sort([("seen_at", DESCENDING)])
            .limit(limit)
        )
        return await cursor.to_list(None)

    async def trim(self, account_id: str, older_than: datetime) -> int:
        """Delete the account's rows last seen before `older_than` (the overflow beyond MAX_ROWS)."""
        res = await self.col.delete_many({"account_id": account_id, "seen_at": {"$lt": older_than}})
        return res.deleted_count

    async def expire(self, before: datetime) -> int:
        """Delete rows not seen since `before` (the TTL index does it too, once a minute at best)."""
        res = await self.col.delete_many({"seen_at": {"$lt": before}})
        return res.deleted_count

    async def forget(self, account_id: str) -> int:
        """Every row of an account (it was removed)."""
        res = await self.col.delete_many({"account_id": account_id})
        return res.deleted_count

    async def accounts(self) -> list[str]:
        return [str(a) for a in await self.col.distinct("account_id")]

    async def count_of(self, account_id: str) -> int:
        return await self.col.count_documents({"account_id": account_id})


def max_age() -> timedelta:
    return timedelta(days=MAX_AGE_DAYS)
