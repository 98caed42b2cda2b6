"""The gateway's own database: API keys and the record of backups and restores."""

from __future__ import annotations

from typing import Any

from tgm_runtime import Migration


async def _indexes(db: Any) -> None:
    await db["api_keys"].create_index("created_at")
    await db["_backups"].create_index([("started_at", -1)])


MIGRATIONS = [Migration(1, "api key and backup indexes", _indexes)]
