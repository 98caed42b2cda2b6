"""PLACEHOLDER (being written): the `collaboration_runs` store of collaboration."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

#: collection -> [(keys, options)], created by migration 4.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}


class RunStore:
    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
