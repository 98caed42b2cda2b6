"""Ad schedules: once / daily at times on weekdays / every N minutes / cron, in a time zone, across a
daylight-saving change, bounded by startAt, endAt; quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tgm_campaign.ads.schedule import check, next_run, out_of_quiet
from tgm_contracts.commands.ads import AdSchedule
from tgm_contracts.models.campaign import TimeWindow
from tgm_runtime import Invalid

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_once_runs_at_start_at_or_now_and_then_never() -> None:
    s = AdSchedule(type="once", start_at=at(2026, 5, 1, 12))
    assert next_run(s, at(2026, 5, 1, 8), "UTC", inclusive=True) == at(2026, 5, 1, 12)
    assert next_run(s, at(2026, 5, 1, 13), "UTC", inclusive=True) == at(2026, 5, 1, 13)  # late: now
    assert next_run(s, at(2026, 5, 1, 12), "UTC") is None  # after its run: nothing more


def test_daily_times_in_zone_and_weekdays() -> None:
    s = AdSchedule(type="daily", times=["18:30", "09:00"], weekdays=["mon", "wed"], timezone="Asia/Taipei")
    # Tue 2026-05-05 10:00 Taipei (02:00 UTC): the next is Wed 09:00 Taipei = 01:00 UTC.
    first = next_run(s, at(2026, 5, 5, 2), "UTC")
    assert first == at(2026, 5, 6, 1)
    second = next_run(s, first, "UTC")  # type: ignore[arg-type]
    assert second == at(2026, 5, 6, 10, 30)
    third = next_run(s, second, "UTC")  # type: ignore[arg-type]
    assert third == at(2026, 5, 11, 1)  # Monday
    assert next_run(s, first, "UTC", inclusive=True) == first  # type: ignore[arg-type]


def test_daily_across_daylight_saving_keeps_local_time() -> None:
    s = AdSchedule(type="daily", times=["09:00"], timezone="Europe/Berlin")
    assert next_run(s, at(2026, 3, 28, 12), "UTC") == at(2026, 3, 29, 7)  # CEST from 29 March
    assert next_run(s, at(2026, 3, 27, 12), "UTC") == at(2026, 3, 28, 8)  # CET the day before


def test_interval_keeps_its_phase_and_does_not_make_up_missed_runs() -> None:
    s = AdSchedule(type="interval", interval_minutes=30)
    anchor = at(2026, 5, 1, 12)
    assert next_run(s, anchor, "UTC", anchor=anchor) == at(2026, 5, 1, 12, 30)
    # Down for two hours: the next run is the next point of the phase, not four catch-ups.
    assert next_run(s, at(2026, 5, 1, 14, 10), "UTC", anchor=anchor) == at(2026, 5, 1, 14, 30)
    assert next_run(s, at(2026, 5, 1, 14, 30), "UTC", inclusive=True, anchor=anchor) == at(2026, 5, 1, 14, 30)
    # The first run of an interval campaign is at start (or startAt).
    assert next_run(s, at(2026, 5, 1, 9), "UTC", inclusive=True) == at(2026, 5, 1, 9)


def test_cron_in_zone_start_and_end() -> None:
    s = AdSchedule(
        type="cron",
        cron="0 9 * * 1-5",
        timezone="Europe/Berlin",
        start_at=at(2026, 3, 30, 0),
        end_at=at(2026, 4, 1, 12),
    )
    assert next_run(s, at(2026, 3, 27, 10), "UTC") == at(2026, 3, 30, 7)  # not before startAt
    assert next_run(s, at(2026, 3, 30, 7), "UTC", inclusive=True) == at(2026, 3, 30, 7)
    assert next_run(s, at(2026, 3, 30, 7), "UTC") == at(2026, 3, 31, 7)
    assert next_run(s, at(2026, 4, 1, 7), "UTC") is None  # past endAt


def test_zone_falls_back_to_the_callers() -> None:
    s = AdSchedule(type="daily", times=["09:00"])
    assert next_run(s, at(2026, 5, 1, 0), "Asia/Taipei") == at(2026, 5, 1, 1)


def test_bad_zone_and_bad_cron_are_invalid() -> None:
    with pytest.raises(Invalid):
        check(AdSchedule(type="daily", times=["09:00"], timezone="Mars/Olympus"))
    with pytest.raises(Invalid):
        check(AdSchedule(type="cron", cron="99 * * * *"))
    with pytest.raises(Invalid):
        next_run(AdSchedule(type="daily", times=["09:00"]), at(2026, 1, 1), "Nowhere/Zone")


def test_quiet_hours_move_a_run_to_their_end() -> None:
    night = TimeWindow(start="22:00", end="07:00", timezone="Asia/Taipei")
    # 23:30 Taipei (15:30 UTC) -> 07:00 Taipei next day (23:00 UTC).
    assert out_of_quiet(at(2026, 5, 1, 15, 30), night, "UTC") == at(2026, 5, 1, 23)
    # 03:00 Taipei (19:00 UTC prev day) -> 07:00 Taipei same day.
    assert out_of_quiet(at(2026, 5, 1, 19), night, "UTC") == at(2026, 5, 1, 23)
    noon = at(2026, 5, 1, 4)
    assert out_of_quiet(noon, night, "UTC") == noon
    lunch = TimeWindow(start="12:00", end="13:00")
    assert out_of_quiet(at(2026, 5, 1, 12, 15), lunch, "UTC") == at(2026, 5, 1, 13)
    assert out_of_quiet(at(2026, 5, 1, 13), lunch, "UTC") == at(2026, 5, 1, 13)
    assert out_of_quiet(noon, None, "UTC") == noon


def test_every_schedule_moves_forward() -> None:
    """Asked again from each answer, every schedule advances (no run twice, no stuck loop)."""
    schedules = [
        AdSchedule(type="daily", times=["00:00", "12:00"], timezone="America/New_York"),
        AdSchedule(type="interval", interval_minutes=10),
        AdSchedule(type="cron", cron="*/7 * * * *", timezone="Australia/Lord_Howe"),
    ]
    for s in schedules:
        t = at(2026, 10, 3, 0)
        anchor = t
        for _ in range(200):
            n = next_run(s, t, "UTC", anchor=anchor)
            assert n is not None and n > t and n - t <= timedelta(days=1)
            t = n
