"""Half-open time windows `[since, until)` as a database condition, the way every filter of analytics
reads them (alerts by last seen, logs by timestamp)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


def between(
    since: datetime | None, until: datetime | None, normal: Callable[[datetime], Any]
) -> dict[str, Any] | None:
    """`{"$gte": since, "$lt": until}` with the bounds given, in the stored form `normal` makes; None
    without either."""
    cond: dict[str, Any] = {}
    if since:
        cond["$gte"] = normal(since)
    if until:
        cond["$lt"] = normal(until)
    return cond or None
