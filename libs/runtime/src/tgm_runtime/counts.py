"""List totals counted once, not once per page (issue 16: reads that do not scan).

A page's `total` was a `count_documents` of the list's filter on every page. On the embedded
database a count reads every document of the collection (it has no count from an index), so at
1,000 rows it cost 35–60 ms of the database server per page, more than the page itself
(`bench/lists/last-run.txt`), and reading a list page by page counted it once per page.

`cached_count(collection, query)` remembers a count per (database, collection, filter) until the
collection is written or `TTL` seconds pass:

- **Writes through this process** invalidate at once. `WriteWatch`, a PyMongo command listener the
  runtime installs on its client (`ServiceRuntime.connect_database`), bumps the collection's
  generation when an `insert`, `update`, `delete`, `findAndModify` or `drop` starts and again when it ends;
  a count is kept only if the generation did not move while it ran, and used only while it still
  matches. So a total read after a write of this process includes it, as before.
- **Writes by another process** (another replica, an operator's shell) are seen within `TTL`: the
  total is then up to `TTL` seconds old. `Page.total` says "where cheap to count"; this is that.
- Concurrent callers of one count share it (`SingleFlight`), unless a write came between them.

The memo is process-wide (one per process, like the connection pool): several runtimes in one
process (the tests' replicas) share it, which only makes it fresher. Keys are bounded (`MAX_KEYS`,
oldest dropped), and the filter is part of the key in canonical form (sorted, by `repr`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pymongo import monitoring

from .single_flight import SingleFlight

#: How long a count stays in use when nothing this process does writes its collection.
TTL = 10.0
#: Counts remembered at once (filters differ by page options rarely: by the list's own filters).
MAX_KEYS = 1024

WRITES = frozenset({"insert", "update", "delete", "findAndModify", "drop"})

Key = tuple[str, str, str]


class _Counts:
    def __init__(self) -> None:
        self.generation: dict[tuple[str, str], int] = {}
        self.kept: OrderedDict[Key, tuple[int, float, int]] = OrderedDict()  # gen, at, value
        self.flight = SingleFlight()
        self.hits = self.misses = 0

    def bump(self, db: str, coll: str) -> None:
        key = (db, coll)
        self.generation[key] = self.generation.get(key, 0) + 1

    async def count(self, collection: Any, query: Mapping[str, Any]) -> int:
        db, coll = collection.database.name, collection.name
        key: Key = (db, coll, canonical(query))
        gen = self.generation.get((db, coll), 0)
        kept = self.kept.get(key)
        if kept is not None and kept[0] == gen and time.monotonic() - kept[1] < TTL:
            self.hits += 1
            return kept[2]
        self.misses += 1

        async def count_now() -> int:
            started_gen = self.generation.get((db, coll), 0)
            value = int(await collection.count_documents(dict(query)))
            if self.generation.get((db, coll), 0) == started_gen:  # no write ran meanwhile
                self.kept[key] = (started_gen, time.monotonic(), value)
                self.kept.move_to_end(key)
                while len(self.kept) > MAX_KEYS:
                    self.kept.popitem(last=False)
            return value

        # Keyed by the generation too: a caller after a write never shares a count begun before it.
        return await self.flight.run((key, gen), count_now)


COUNTS = _Counts()


async def cached_count(collection: Any, query: Mapping[str, Any]) -> int:
    """`collection.count_documents(query)`, remembered until this process writes the collection or
    `TTL` seconds pass (see the module's doc)."""
    return await COUNTS.count(collection, query)


def canonical(value: Any) -> str:
    """A filter as a key: equal filters give equal strings whatever their keys' order."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k!r}:{canonical(value[k])}" for k in sorted(value, key=str)) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    return f"{type(value).__name__}:{value!r}"


class WriteWatch(monitoring.CommandListener):
    """Bumps a collection's count generation when a write command of the client starts and ends."""

    def __init__(self) -> None:
        self._writing: dict[tuple[str, int], tuple[str, str]] = {}  # (connection, request) -> db, coll

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name not in WRITES:
            return
        coll = event.command.get(event.command_name)
        if isinstance(coll, str):
            COUNTS.bump(event.database_name, coll)
            self._writing[(str(event.connection_id), event.request_id)] = (event.database_name, coll)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._end(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._end(event)

    def _end(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        if event.command_name in WRITES:
            found = self._writing.pop((str(event.connection_id), event.request_id), None)
            if found is not None:
                COUNTS.bump(*found)
