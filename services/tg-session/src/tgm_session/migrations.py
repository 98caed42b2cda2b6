"""Numbered migrations of the tg-session database (applied at start and by `run-migrations`)."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_runtime import Migration

from .fleet.peer_store import create_peer_indexes
from .store import create_indexes


async def _indexes(db: AsyncDatabase[Any]) -> None:
    await create_indexes(db)


MIGRATIONS: list[Migration] = [
    Migration(1, "indexes: accounts by phone, credentials by api_id, sends by job id, jobs", _indexes),
    Migration(2, "indexes: accounts by member chat (pick-accounts memberOfChatId)", _indexes),
    Migration(3, "indexes: peers by account and last seen, TTL 90 days on seen_at", create_peer_indexes),
    Migration(
        4,
        "indexes: collected users and peers by user id and username (describe-users)",
        _indexes,
    ),
    Migration(
        5, "indexes: accounts by creation time (get-accounts pages of the fleet in creation order)", _indexes
    ),
    Migration(
        6,
        "indexes: keyset pages of collected users, created groups, credential scrapes and IP bindings"
        " (sort field, _id)",
        _indexes,
    ),
]
