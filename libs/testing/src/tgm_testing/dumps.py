"""Everything a stack stored, as text to search: for tests that prove a secret appears nowhere
(`tests/e2e/test_secrets_e2e.py`, `test_tailchat_e2e.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bson import json_util
from pymongo import MongoClient


def databases(mongodb_uri: str) -> str:
    """Every document of every collection of every database but MongoDB's own, as extended JSON."""
    client: MongoClient[Any] = MongoClient(mongodb_uri)
    try:
        out = []
        for name in client.list_database_names():
            if name in ("admin", "local", "config"):
                continue
            for col in client[name].list_collection_names():
                out.append(json_util.dumps(list(client[name][col].find({}))))
        return "\n".join(out)
    finally:
        client.close()


def files(root: Path, max_bytes: int = 512 * 2**20) -> bytes:
    """The bytes of every file below `root` (logs, a data directory), each up to `max_bytes`."""
    return b"\n".join(p.read_bytes() for p in root.rglob("*") if p.is_file() and p.stat().st_size < max_bytes)
