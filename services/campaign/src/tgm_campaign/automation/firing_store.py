"""PLACEHOLDER (being written): the `automation_seen` store of automation."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 3.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}


class FiringStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
