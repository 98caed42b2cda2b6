"""Time as the campaign stores it: epoch seconds in the code (a `Clock` is injectable for tests),
aware datetimes with the database's millisecond precision in documents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware datetime with the database's millisecond precision."""
    whole = int(ts * 1000)
    return datetime.fromtimestamp(whole / 1000, UTC)


def epoch(at: datetime) -> float:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


def aware(at: datetime | None) -> datetime | None:
    """A datetime read back from the database as an aware one (documents hold UTC; a naive value is
    UTC without its zone). None stays None."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at
