"""Keyset pages in tests: read every page of a list command, and the cursors it must refuse."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_runtime.cursor import encode

#: Three instants, one per second: rows share them so that pages end inside a run of equal values.
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TIMES = [BASE + timedelta(seconds=s) for s in (0, 0, 0, 1, 1, 2, 3)]


async def read_all(r: Any, cmd: Any, payload: dict[str, Any], key: str, limit: int = 3) -> list[Any]:
    """Every item's `key`, page after page (each page `limit` items but the last), in order."""
    seen: list[Any] = []
    cursor: str | None = None
    for _ in range(50):
        page = await r.ok(cmd, {**payload, "limit": limit, **({"cursor": cursor} if cursor else {})})
        seen += [item[key] for item in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            assert 0 < len(page["items"]) <= limit or not seen, page
            return seen
        assert len(page["items"]) == limit, page
    raise AssertionError("the pages did not end")


def in_order(rows: Iterable[dict[str, Any]], field: Callable[[dict[str, Any]], Any], desc: bool) -> list[str]:
    """The rows' `_id`s in (field, _id) order, missing or null values lowest (as the database sorts)."""

    def by(d: dict[str, Any]) -> tuple[Any, ...]:
        v = field(d)
        return ((0,) if v is None else (1, v), d["_id"])

    return [d["_id"] for d in sorted(rows, key=by, reverse=desc)]


#: Cursors no page gives out: an offset (the old format), garbage, another order's, a wrong shape.
BAD_CURSORS = [
    "3",
    "not a cursor!",
    "eyJvIjoi",  # cut-off base64 of JSON
    encode([BASE, "acc_x"], "+created_at,_id"),  # get-accounts' oldest-first order
    encode([1, 2, 3], "-started_at,_id"),
]


async def refuses_bad_cursors(r: Any, cmd: Any, payload: dict[str, Any]) -> None:
    for bad in BAD_CURSORS:
        reply = await r.call(cmd, {**payload, "cursor": bad})
        assert not reply["ok"] and reply["error"]["code"] == "VALIDATION_ERROR", (bad, reply)
