"""When schedules run and which period a run covers (pure functions over aware datetimes).

Cron expressions are evaluated by `cronsim` in the schedule's time zone, so `0 8 * * *` means 08:00
local on both sides of a daylight-saving change. Across a change cron's usual rules hold: a time that
does not exist that day (spring forward) runs at the first minute after the gap, and a time that
happens twice (fall back) runs once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from tgm_runtime import Invalid

#: Macros the contract accepts, as the five fields they stand for.
MACROS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

#: Hour buckets for the windows of a day, day buckets for longer ones.
DEFAULT_BUCKET: dict[str, str] = {
    "last_24h": "hour",
    "previous_day": "hour",
    "last_7d": "day",
    "previous_week": "day",
    "last_30d": "day",
    "previous_month": "day",
}


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown time zone {name!r}", {"timezone": name}) from None


def check_cron(expr: str) -> str:
    """The cron text if cronsim can evaluate it (the contract checked its shape already)."""
    try:
        CronSim(MACROS.get(expr, expr), datetime(2000, 1, 1))
    except CronSimError as exc:
        raise Invalid(f"cron {expr!r} is not valid: {exc}", {"cron": expr}) from None
    return expr


def next_run(
    now: datetime,
    *,
    cron: str | None = None,
    interval_seconds: int | None = None,
    timezone: str | None = None,
    previous: datetime | None = None,
) -> datetime:
    """The first run strictly after `now` (UTC).

    Interval schedules keep their phase: the next run is `previous + k * interval` for the smallest k
    that lands after now (missed runs are not made up one by one; the next run just happens).
    """
    if cron is not None:
        local = now.astimezone(zone(timezone))
        it = CronSim(MACROS.get(cron, cron), local)
        return next(it).astimezone(UTC)
    if interval_seconds is None:
        raise ValueError("a schedule has a cron or an interval")
    step = timedelta(seconds=interval_seconds)
    if previous is None:
        return now + step
    if previous > now:
        return previous
    return previous + ((now - previous) // step + 1) * step


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def relative_window(window: str, timezone: str | None, now: datetime) -> tuple[datetime, datetime]:
    """`[since, until)` in UTC for a relative window at `now`; calendar windows follow the time zone."""
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    if window == "last_24h":
        return now - timedelta(hours=24), now
    if window == "last_7d":
        return now - timedelta(days=7), now
    if window == "last_30d":
        return now - timedelta(days=30), now
    if window == "previous_day":
        return _midnight(today - timedelta(days=1), tz), _midnight(today, tz)
    if window == "previous_week":
        monday = today - timedelta(days=today.weekday())
        return _midnight(monday - timedelta(days=7), tz), _midnight(monday, tz)
    if window == "previous_month":
        first = today.replace(day=1)
        return _midnight((first - timedelta(days=1)).replace(day=1), tz), _midnight(first, tz)
    raise Invalid(f"unknown window {window!r}")
