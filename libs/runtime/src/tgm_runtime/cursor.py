"""The one keyset-cursor codec: pages that stay right while documents are added, in any sort order.

A page is read in a total order over some fields ending with a unique one (usually `_id`): the next
page starts *after* the last document's values, not at an offset, so inserts and deletes between two
pages neither repeat nor skip a document. `Keyset` holds that order; the cursor it hands out is opaque
(URL-safe base64 of JSON, datetimes tagged) and carries a tag naming the order it belongs to, so a
cursor from another sort order is refused instead of silently reading the wrong slice.

    order = Keyset(("last_seen_at", "_id"), descending=True)
    docs = await col.find(order.where(query, req.cursor)).sort(order.sort()).limit(req.limit + 1).to_list()
    items, next_cursor = order.page(docs, req.limit)

Fields named in `nullable` may be missing or null; the database sorts those lowest, and the filter
follows it. Only the store builds the query (it is a database dict); use cases pass cursors through.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import Invalid

_DT = "$dt"


def _enc(value: Any) -> Any:
    if isinstance(value, datetime):
        return {_DT: value.isoformat()}
    return value


def _dec(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {_DT}:
        return datetime.fromisoformat(value[_DT])
    return value


def encode(values: Sequence[Any], tag: str = "") -> str:
    """An opaque cursor for `values` (JSON types and datetimes) under the order named `tag`."""
    raw = json.dumps({"o": tag, "v": [_enc(v) for v in values]}, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, size: int, tag: str = "") -> list[Any]:
    """The values of a cursor made by `encode` for the same order, or `Invalid` (a client's mistake)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = raw["v"]
        if raw.get("o") != tag or not isinstance(values, list) or len(values) != size:
            raise ValueError("another order")
        return [_dec(v) for v in values]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            "cursor is not one this command gave out for this order",
            [{"loc": ["cursor"], "msg": "pass back the nextCursor of the previous page unchanged"}],
        ) from None


@dataclass(frozen=True)
class Keyset:
    """A total order over `fields` (the last one unique) and the cursors that page through it."""

    fields: tuple[str, ...]
    descending: bool = False
    nullable: frozenset[str] = field(default_factory=frozenset)

    @property
    def tag(self) -> str:
        return ("-" if self.descending else "+") + ",".join(self.fields)

    def sort(self) -> list[tuple[str, int]]:
        direction = -1 if self.descending else 1
        return [(f, direction) for f in self.fields]

    def cursor_of(self, doc: Mapping[str, Any]) -> str:
        return encode([doc.get(f) for f in self.fields], self.tag)

    def after(self, cursor: str) -> dict[str, Any]:
        """The filter for documents strictly after the cursor's position in this order."""
        values = decode(cursor, len(self.fields), self.tag)
        branches: list[dict[str, Any]] = []
        for i, name in enumerate(self.fields):
            beyond = self._beyond(name, values[i])
            if beyond is None:
                continue
            branch = {f: values[j] for j, f in enumerate(self.fields[:i])}
            branches.append({**branch, **beyond} if "$or" not in beyond else {"$and": [branch, beyond]})
        return {"$or": branches} if branches else {"_id": {"$exists": False}}

    def _beyond(self, name: str, value: Any) -> dict[str, Any] | None:
        """Documents whose `name` comes strictly after `value` (nulls sort lowest)."""
        if value is None:
            # Ascending: everything non-null is after null; descending: nothing is below null.
            return None if self.descending else {name: {"$ne": None}}
        if self.descending:
            below = {name: {"$lt": value}}
            return {"$or": [below, {name: None}]} if name in self.nullable else below
        return {name: {"$gt": value}}

    def where(self, query: Mapping[str, Any], cursor: str | None) -> dict[str, Any]:
        """`query` restricted to what follows `cursor` (all of it without one)."""
        q = dict(query)
        if not cursor:
            return q
        after = self.after(cursor)
        return {"$and": [q, after]} if q else after

    def page(self, docs: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """Trim a `limit + 1` read to `limit` documents and the cursor of the next page (None at the end)."""
        more = len(docs) > limit
        docs = docs[:limit]
        return docs, (self.cursor_of(docs[-1]) if more and docs else None)
