"""Dump a service's database to a portable archive (gzip'd extended-JSON lines) and restore it.

The archive goes to the NATS object store declared in contracts, so any replica on any machine can
write it and any replica can restore it; the gateway bundles the parts into one file.
"""

from __future__ import annotations

import gzip
import io
from typing import Any

from bson import json_util
from pymongo.asynchronous.database import AsyncDatabase

from .errors import Invalid

# What a restore must never overwrite: the record of applied migrations belongs to the code running now.
SKIP = {"_migrations", "_backups"}


async def dump(db: AsyncDatabase[Any]) -> tuple[bytes, dict[str, int]]:
    buf = io.BytesIO()
    counts: dict[str, int] = {}
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        for name in sorted(await db.list_collection_names()):
            if name in SKIP or name.startswith("system."):
                continue
            n = 0
            async for doc in db[name].find({}):
                line = json_util.dumps({"c": name, "d": doc}, json_options=json_util.CANONICAL_JSON_OPTIONS)
                gz.write(line.encode() + b"\n")
                n += 1
            counts[name] = n
            gz.write(json_util.dumps({"c": name, "end": n}).encode() + b"\n")
    return buf.getvalue(), counts


def parse(archive: bytes) -> dict[str, list[dict[str, Any]]]:
    """Read a whole archive before touching the database, so a corrupt one changes nothing."""
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        text = gzip.decompress(archive).decode()
        for line in text.splitlines():
            rec = json_util.loads(line)
            name = rec["c"]
            if "end" in rec:
                if len(out.get(name, [])) != rec["end"]:
                    raise ValueError(f"collection {name} is truncated")
                out.setdefault(name, [])
            else:
                out.setdefault(name, []).append(rec["d"])
    except Exception as exc:
        raise Invalid(f"backup archive is unreadable: {exc}") from None
    return out


async def restore(db: AsyncDatabase[Any], archive: bytes) -> dict[str, int]:
    data = parse(archive)
    existing = set(await db.list_collection_names())
    for name in existing - SKIP - set(data):
        if not name.startswith("system."):
            await db[name].delete_many({})
    for name, docs in data.items():
        await db[name].delete_many({})
        for i in range(0, len(docs), 1000):
            await db[name].insert_many(docs[i : i + 1000], ordered=False)
    return {name: len(docs) for name, docs in data.items()}
