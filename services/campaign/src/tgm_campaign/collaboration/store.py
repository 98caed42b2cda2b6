"""Every store of the collaboration domain, made from one database (no use case touches a
collection itself)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from .library_store import LibraryStore
from .run_store import RunStore
from .swarm_store import SwarmStore


@dataclass(frozen=True)
class CollaborationStores:
    library: LibraryStore
    runs: RunStore
    swarms: SwarmStore

    @classmethod
    def of(cls, db: AsyncDatabase[Any]) -> CollaborationStores:
        return cls(library=LibraryStore(db), runs=RunStore(db), swarms=SwarmStore(db))


def indexes() -> dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]]:
    from . import library_store, run_store, swarm_store

    out: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {}
    for module in (library_store, run_store, swarm_store):
        for collection, items in module.INDEXES.items():
            out.setdefault(collection, []).extend(items)
    return out
