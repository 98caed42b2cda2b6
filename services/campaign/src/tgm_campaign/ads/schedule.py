"""When an ad campaign's runs are (pure functions over aware datetimes, UTC out).

- `once`: one run at `startAt` (now, when `startAt` is past or absent at start).
- `daily`: at each of `times` (local `HH:MM`) on `weekdays` (every day when absent).
- `interval`: every `intervalMinutes`, phased on the campaign's first run (`anchor`): missed runs are
  not made up one by one, the next one just happens at the next point of the phase.
- `cron`: a five-field expression evaluated by `cronsim` (as analytics does) in the time zone, so
  `0 9 * * 1-5` means 09:00 local on both sides of a daylight-saving change.

Every type: not before `startAt`, none after `endAt` (`next_run` answers None), `maxRuns` is the
caller's (it counts runs). Quiet hours (`TimeWindow`, may cross midnight) move a run that falls in
them to the window's end (`out_of_quiet`). Wall times that do not exist (spring forward) run at the
same UTC offset as before the gap, i.e. an hour later on the wall clock; doubled ones (fall back) run
once, at the first.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from tgm_contracts.commands.ads import AdSchedule
from tgm_contracts.models.campaign import TimeWindow
from tgm_runtime import Invalid

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TINY = timedelta(microseconds=1)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"unknown time zone {name!r}", {"field": "schedule.timezone", "timezone": name}
        ) from None


def check(schedule: AdSchedule) -> None:
    """Refuse what the contract's shape let through: an unknown zone, a cron cronsim cannot read."""
    if schedule.timezone:
        zone(schedule.timezone)
    if schedule.cron is not None and schedule.type == "cron":
        try:
            CronSim(schedule.cron, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise Invalid(f"cron {schedule.cron!r} is not valid: {exc}", {"field": "schedule.cron"}) from None


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _wall(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tz).astimezone(UTC)


def next_run(
    schedule: AdSchedule,
    after: datetime,
    tz_name: str,
    *,
    inclusive: bool = False,
    anchor: datetime | None = None,
) -> datetime | None:
    """The first run after `after` (at or after with `inclusive`), never before `startAt`, None past
    `endAt`. `tz_name`: the zone when the schedule names none. `anchor`: an interval's phase (its
    first run)."""
    after = _aware(after)
    tz = zone(schedule.timezone or tz_name)
    start = _aware(schedule.start_at) if schedule.start_at else None
    if start is not None and start > after:
        after, inclusive = start, True
    at: datetime | None
    if schedule.type == "once":
        # One run: at startAt, or now when that is past (the caller asks once, inclusive, at start).
        at = after if inclusive else None
    elif schedule.type == "daily":
        at = _daily(schedule, after, tz, inclusive)
    elif schedule.type == "interval":
        assert schedule.interval_minutes is not None
        step = timedelta(minutes=schedule.interval_minutes)
        base = _aware(anchor) if anchor is not None else None
        if base is None or base > after:
            at = base if base is not None else after if inclusive else after + step
        else:
            k = (after - base) // step
            at = base + k * step
            if at < after or (at == after and not inclusive):
                at += step
    else:
        assert schedule.cron is not None
        local = (after - TINY if inclusive else after).astimezone(tz)
        try:
            at = next(CronSim(schedule.cron, local))
        except (CronSimError, StopIteration):
            return None
        at = at.astimezone(UTC)
    if at is None:
        return None
    end = _aware(schedule.end_at) if schedule.end_at else None
    if end is not None and at > end:
        return None
    return at


def _daily(schedule: AdSchedule, after: datetime, tz: ZoneInfo, inclusive: bool) -> datetime | None:
    times = sorted(set(schedule.times or []))
    days = set(schedule.weekdays or WEEKDAYS)
    first = after.astimezone(tz).date() - timedelta(days=1)
    for offset in range(9):
        day = first + timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in days:
            continue
        for hhmm in times:
            at = _wall(day, hhmm, tz)
            if at > after or (inclusive and at == after):
                return at
    return None


def _minutes(hhmm: str) -> int:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return hour * 60 + minute


def out_of_quiet(at: datetime, window: TimeWindow | None, tz_name: str) -> datetime:
    """`at`, or the end of the quiet window `at` falls in (local time of the window's zone)."""
    if window is None:
        return at
    tz = zone(window.timezone or tz_name)
    start, end = _minutes(window.start), _minutes(window.end)
    if start == end:
        return at
    local = _aware(at).astimezone(tz)
    now_m = local.hour * 60 + local.minute
    inside = start <= now_m < end if start < end else now_m >= start or now_m < end
    if not inside:
        return at
    day = local.date()
    if start > end and now_m >= start:
        day += timedelta(days=1)  # the window crosses midnight: it ends tomorrow
    return _wall(day, window.end, tz)
