"""The gateway's own database: API keys and the record of backups and restores."""

from __future__ import annotations

from typing import Any

from tgm_runtime import Migration

from .audit import store as audit_store


async def _indexes(db: Any) -> None:
    await db["api_keys"].create_index("created_at")
    await db["_backups"].create_index([("started_at", -1)])


async def _audit_indexes(db: Any) -> None:
    for keys, options in audit_store.INDEXES:
        await db["audit"].create_index(keys, **options)


MIGRATIONS = [
    Migration(1, "api key and backup indexes", _indexes),
    Migration(2, "the audit trail: newest first, expiring at its retention", _audit_indexes),
]
