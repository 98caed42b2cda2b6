"""Newest-first keyset pages read as time windows, so the embedded database reads only the page.

Measured on the embedded default (`secantusd`, 10,000 documents with an index on (time, _id)):
`find({}).sort(time desc, _id desc).limit(51)` costs ~210 ms, and the keyset's `$or` filter the
same, because the server sorts every document; an equality filter and a time range in ONE flat
filter (`{"state": "done", "started_at": {"$gte": a, "$lte": b}}`) is an index range read that costs
~50 µs per document it returns (a 60-document window ~3 ms, an empty one < 1 ms), while the same
conditions under `$and` read everything again (~230 ms). Real MongoDB serves both shapes from the
index; the windowed read stays right there, and cheap.

`read_newest(collection, order, query, cursor, limit)` is `order.where` + sort + limit + `order.page`
for an order `(time field, _id)` descending:

1. The window ends at the cursor's instant (inclusive: documents sharing it are told apart by `_id`
   in Python) or, for the first page, has no end; it starts `span` earlier.
2. Documents after the cursor are kept; while fewer than `limit + 1` are found the next window, just
   older, is read with four times the span. Past `FLOOR` the rest of the collection is one last read
   (sorted, limited: only reached at the very end of a list).
3. The span is learnt per (collection, filter): the next page's first window is sized for about
   `limit + 1` documents at the density just seen (`SPAN_START` until then), and a first page's
   window starts from the newest row the last first page found (rows newer than it are read too).

The filter must be flat (no `$or` / `$and` at its top, the time field not in it) for the embedded
server to use its index; any other filter is read the plain way (`order.where`, sort, limit), as is an
ascending order. Results equal the plain read's: tests compare them (`test_windowed.py`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .counts import canonical
from .cursor import Keyset, decode

#: The first window before anything is learnt about a list's density.
SPAN_START = timedelta(hours=1)
#: Windows never shrink below this (a burst of documents in one instant is read whole anyway).
SPAN_MIN = timedelta(seconds=1)
#: Older than this, the rest of a list is read in one sorted query (no product data is that old).
FLOOR = datetime(2015, 1, 1, tzinfo=UTC)
#: Lists whose spans are remembered (per collection and filter).
SPANS_KEPT = 512

Key = tuple[str, str, str]


@dataclass
class _Learnt:
    """What the last pages of one list taught: the span that holds about a page, and the newest time
    a first page found (the next first page's window ends there, or now if earlier, so a list whose
    newest row is hours old is not widened into)."""

    span: timedelta = SPAN_START
    newest: datetime | None = None


_learnt: OrderedDict[Key, _Learnt] = OrderedDict()


def flat(query: Mapping[str, Any], field: str) -> bool:
    """Whether `query` can take the window's time range beside its own conditions."""
    return field not in query and not any(k.startswith("$") for k in query)


async def read_newest(
    collection: Any,
    order: Keyset,
    query: Mapping[str, Any],
    cursor: str | None,
    limit: int,
    projection: Mapping[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of `query` in `order` (newest first) after `cursor`, and the next page's cursor."""
    field = order.fields[0]
    after = tuple(decode(cursor, 2, order.tag)) if cursor and len(order.fields) == 2 else None
    windowed = (
        order.descending
        and len(order.fields) == 2
        and order.fields[1] == "_id"
        and field not in order.nullable  # a range never returns the documents without the time
        and flat(query, field)
        and (after is None or isinstance(after[0], datetime))
    )
    if not windowed:
        docs = (
            await collection.find(order.where(query, cursor), projection)
            .sort(order.sort())
            .limit(limit + 1)
            .to_list()
        )
        return order.page(docs, limit)
    key: Key = (collection.database.name, collection.name, canonical(query))
    learnt = _learnt.get(key) or _Learnt()
    span = learnt.span
    want = limit + 1
    found: list[dict[str, Any]] = []
    upper: datetime | None = after[0] if after else None  # inclusive on the first window only
    inclusive = True
    covered = timedelta(0)
    first_page = upper is None
    while True:
        if upper is not None:
            top = upper
        else:  # the first window of a first page: no end (rows newer than any seen are in it)
            now = datetime.now(UTC)
            top = min(now, learnt.newest or now)
        lower = top - span
        if lower < FLOOR:  # the rest of the list, one sorted read: after the cursor, or below the last window
            rest = order.where(query, cursor) if inclusive else {**query, field: {"$lt": upper}}
            docs = (
                await collection.find(rest, projection).sort(order.sort()).limit(want - len(found)).to_list()
            )
            found += docs
            break
        bound = {"$gte": lower}
        if upper is not None:
            bound["$lte" if inclusive else "$lt"] = upper
        docs = await collection.find({**query, field: bound}, projection).to_list()
        found += _after(docs, field, after)
        covered += span
        if len(found) >= want:
            break
        upper, inclusive, span = lower, False, span * 4
    found.sort(key=lambda d: (d[field], d["_id"]), reverse=True)
    if first_page and found and isinstance(found[0][field], datetime) and found[0][field].tzinfo:
        learnt.newest = found[0][field]
    if covered:
        learnt.span = _span(found, field, covered, want)
    _learnt[key] = learnt
    _learnt.move_to_end(key)
    while len(_learnt) > SPANS_KEPT:
        _learnt.popitem(last=False)
    return order.page(found[:want], limit)


def _after(docs: list[dict[str, Any]], field: str, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
    if after is None:
        return docs
    return [d for d in docs if (d[field], d["_id"]) < after]


def _span(found: list[dict[str, Any]], field: str, covered: timedelta, want: int) -> timedelta:
    """The span for about `want` documents at the density just read: over the time the documents
    found span (empty stretches before them do not count), else the windows'."""
    spread = found[0][field] - found[-1][field] if len(found) > 1 else timedelta(0)
    if spread > timedelta(0):
        span = spread * (want * 1.5 / (len(found) - 1))
    else:
        span = covered * (want * 1.5 / len(found)) if found else covered * 4
    return max(SPAN_MIN, min(span, timedelta(days=3650)))
