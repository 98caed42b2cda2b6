"""Pure time logic of the statistics: windows cut into hour or day buckets, and reply detection.

Buckets follow the wall clock of a time zone: a day bucket runs from local midnight to the next local
midnight (23 or 25 hours across a DST change), an hour bucket from a local hour boundary to the next
(so a zone with a half-hour offset gets half-past-UTC boundaries). Every bucket start is returned in
UTC. The first bucket starts at the boundary at or before `since`, so it may begin before the window;
only events inside `[since, until)` are ever counted in it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR = timedelta(hours=1)
S = TypeVar("S")
R = TypeVar("R")

#: An inbound private message answers one of our sends when it arrives within this long after it.
REPLY_WINDOW = timedelta(hours=72)


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; raises ValueError for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def bucket_floor(t: datetime, bucket: str, tz: ZoneInfo) -> datetime:
    """The start (UTC) of the bucket holding instant `t`."""
    local = t.astimezone(tz)
    if bucket == "hour":
        # `replace` keeps the fold of `local`, so the repeated hour of a DST fall-back stays distinct.
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    return datetime.combine(local.date(), time(0), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Timeline:
    """The bucket starts covering `[since, until)`, in order, in UTC."""

    since: datetime
    until: datetime
    bucket: str
    tz: ZoneInfo
    starts: tuple[datetime, ...]

    @classmethod
    def build(cls, since: datetime, until: datetime, bucket: str, tz: ZoneInfo) -> Timeline:
        if since >= until:
            raise ValueError("since must be before until")
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        first = bucket_floor(since, bucket, tz)
        starts: list[datetime] = []
        if bucket == "hour":
            # A local hour boundary plus one real hour is the next local hour boundary (whole- and
            # half-hour offsets alike), including across DST changes.
            t = first
            while t < until:
                starts.append(t)
                t += HOUR
        else:
            day = first.astimezone(tz).date()
            t = first
            while t < until:
                starts.append(t)
                day += timedelta(days=1)
                t = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        return cls(since, until, bucket, tz, tuple(starts))

    def __len__(self) -> int:
        return len(self.starts)

    def contains(self, t: datetime) -> bool:
        return self.since <= t < self.until

    def index(self, t: datetime) -> int | None:
        """The bucket of `t`, or None outside the window."""
        if not self.since <= t < self.until:
            return None
        return bisect.bisect_right(self.starts, t) - 1

    def zeros(self) -> list[int]:
        return [0] * len(self.starts)


def detect_replies(
    sends: Iterable[tuple[Hashable, datetime, S]],
    receives: Iterable[tuple[Hashable, datetime, R]],
    window: timedelta = REPLY_WINDOW,
    seq: Callable[[Any], int | None] | None = None,
) -> list[tuple[R, S]]:
    """Replies among inbound private messages, each paired with the send it answers.

    `sends` are our private sends and `receives` the inbound private messages, each as
    `(conversation key, time, payload)` where the key is `(account id, chat id)`. An inbound message at
    `t` is a reply when the conversation's latest send `s` before it satisfies `t - s <= window` and no
    earlier inbound message already answered `s`: a send is answered at most once (five messages after
    one send are one reply) and the next send re-arms the conversation. Returns `(receive payload,
    answered send payload)` pairs.

    `seq(payload)`: the message's Telegram id when known. A conversation whose every item has one is
    ordered by it (Telegram's own order of the conversation), not by time: events stamped when they
    were published can be out of order by milliseconds (a send's echo checked against the database
    before it is published, the answer right after it not).
    """
    timeline: dict[Hashable, list[tuple[datetime, int, Any]]] = {}
    # Sends are tagged 0 and messages 1, so at equal times the send sorts first and can be answered.
    for key, t, payload in sends:
        timeline.setdefault(key, []).append((t, 0, payload))
    for key, t, received in receives:
        timeline.setdefault(key, []).append((t, 1, received))
    out: list[tuple[R, S]] = []
    for items in timeline.values():
        known = [i for _, _, p in items if (i := seq(p)) is not None] if seq is not None else []
        if known and len(known) == len(items):
            items = [item for _, item in sorted(zip(known, items, strict=True), key=lambda pair: pair[0])]
        else:
            items.sort(key=lambda item: (item[0], item[1]))
        armed: tuple[datetime, Any] | None = None
        for t, kind, payload in items:
            if kind == 0:
                armed = (t, payload)
            elif armed is not None:
                if t - armed[0] <= window:
                    out.append((payload, armed[1]))
                armed = None
    return out
