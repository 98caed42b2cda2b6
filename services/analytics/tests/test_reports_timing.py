"""When schedules run (cron in a time zone, across daylight-saving changes; intervals keep their phase)
and which period a run covers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tgm_analytics.reports.timing import check_cron, next_run, relative_window
from tgm_runtime import DomainError

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

BERLIN = ZoneInfo("Europe/Berlin")
NY = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz).astimezone(UTC)


def test_daily_cron_keeps_local_time_across_spring_forward() -> None:
    before = next_run(local(BERLIN, 2026, 3, 27, 9, 0), cron="0 8 * * *", timezone="Europe/Berlin")
    after = next_run(local(BERLIN, 2026, 3, 28, 9, 0), cron="0 8 * * *", timezone="Europe/Berlin")
    assert before == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)  # 08:00 CET = 07:00 UTC
    assert after == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 08:00 CEST = 06:00 UTC
    assert after.astimezone(BERLIN).hour == 8


def test_time_in_the_spring_gap_runs_after_the_gap_and_fall_back_runs_once() -> None:
    gap = next_run(local(BERLIN, 2026, 3, 28, 12, 0), cron="30 2 * * *", timezone="Europe/Berlin")
    assert gap.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)
    first = next_run(local(BERLIN, 2026, 10, 24, 12, 0), cron="30 2 * * *", timezone="Europe/Berlin")
    second = next_run(first, cron="30 2 * * *", timezone="Europe/Berlin")
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first of the two
    assert second == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # next day, 02:30 CET: not twice


def test_cron_is_strictly_after_now_macros_and_names() -> None:
    at8 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
    assert next_run(at8, cron="0 8 * * *") == at8 + timedelta(days=1)
    assert next_run(at8, cron="@daily") == datetime(2026, 5, 5, 0, 0, tzinfo=UTC)
    assert next_run(at8, cron="@weekly") == datetime(2026, 5, 10, 0, 0, tzinfo=UTC)  # a Sunday
    assert next_run(at8, cron="@monthly") == datetime(2026, 6, 1, tzinfo=UTC)
    friday = datetime(2026, 5, 8, 9, 0, tzinfo=UTC)
    assert next_run(friday, cron="0 8 * * mon-fri") == datetime(2026, 5, 11, 8, 0, tzinfo=UTC)


def test_impossible_cron_is_refused() -> None:
    with pytest.raises(DomainError) as exc:
        check_cron("0 0 31 2 *")
    assert exc.value.code.value == "VALIDATION_ERROR"
    assert check_cron("*/15 9-17 * * 1-5") == "*/15 9-17 * * 1-5"


def test_interval_keeps_its_phase_and_skips_missed_runs() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert next_run(now, interval_seconds=3600) == now + timedelta(hours=1)
    due = now - timedelta(minutes=10)
    assert next_run(now, interval_seconds=3600, previous=due) == due + timedelta(hours=1)
    long_ago = now - timedelta(hours=5, minutes=30)
    assert next_run(now, interval_seconds=3600, previous=long_ago) == now + timedelta(minutes=30)
    later = now + timedelta(minutes=5)
    assert next_run(now, interval_seconds=3600, previous=later) == later


def test_relative_windows_follow_the_calendar_of_the_zone() -> None:
    now = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)  # Monday; New York moved to EDT on Sunday the 8th
    since, until = relative_window("previous_day", "America/New_York", now)
    assert since == local(NY, 2026, 3, 8, 0, 0) and until == local(NY, 2026, 3, 9, 0, 0)
    assert until - since == timedelta(hours=23)
    since, until = relative_window("previous_week", "America/New_York", now)
    assert since.astimezone(NY).date().isoformat() == "2026-03-02" and until == local(NY, 2026, 3, 9, 0, 0)
    since, until = relative_window("previous_month", "UTC", now)
    assert (since, until) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    jan = datetime(2026, 1, 15, tzinfo=UTC)
    assert relative_window("previous_month", "UTC", jan)[0] == datetime(2025, 12, 1, tzinfo=UTC)
    assert relative_window("last_24h", "Asia/Taipei", now) == (now - timedelta(hours=24), now)
    assert relative_window("last_7d", None, now) == (now - timedelta(days=7), now)


def test_unknown_zone_is_a_validation_error() -> None:
    with pytest.raises(DomainError) as exc:
        relative_window("last_24h", "Mars/Olympus", datetime.now(UTC))
    assert exc.value.code.value == "VALIDATION_ERROR"
