"""Numbered migrations of the ai database: the indexes its queries use."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from tgm_runtime import Migration


async def _indexes(db: AsyncDatabase[Any]) -> None:
    await db["knowledge"].create_index([("scope", ASCENDING), ("type", ASCENDING)])
    await db["knowledge"].create_index([("document_id", ASCENDING)])
    await db["knowledge"].create_index([("scope", ASCENDING), ("dedupe", ASCENDING)])
    await db["knowledge"].create_index([("created_at", DESCENDING)])
    await db["documents"].create_index([("scope", ASCENDING), ("created_at", DESCENDING)])
    await db["documents"].create_index([("state", ASCENDING), ("updated_at", ASCENDING)])
    await db["faq_candidates"].create_index([("scope", ASCENDING), ("status", ASCENDING)])
    await db["memories"].create_index([("account_id", ASCENDING), ("user_id", ASCENDING)])
    await db["strategy_assignments"].create_index([("strategy_id", ASCENDING)])
    await db["strategies"].create_index([("name", ASCENDING)], unique=True)
    await db["usage"].create_index([("day", ASCENDING), ("provider", ASCENDING), ("model", ASCENDING)])


MIGRATIONS = [Migration(1, "ai indexes", _indexes)]
