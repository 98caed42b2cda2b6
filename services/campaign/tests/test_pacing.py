"""Pacing maths with a fake clock: every limit, the FLOOD_WAIT and PEER_FLOOD reactions, warm-up."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from tgm_campaign.messaging.pacing import (
    DAY,
    AccountPace,
    AccountProfile,
    Limits,
    Pacer,
    Target,
    earliest,
    next_slot,
    rate_window,
    recipient_hold,
    release_window,
    reserve_window,
    window_hold,
)
from tgm_contracts.models.campaign import LimitKind
from tgm_contracts.settings import ComplianceSettings, PacingSettings

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

TZ = ZoneInfo("Asia/Taipei")
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=TZ).timestamp()  # outside the default quiet hours


def limits(**kw) -> Limits:
    base = dict(jitter_min=0.0, jitter_max=0.0, margin=0.0, quiet_start=None, quiet_end=None)
    base.update(kw)
    return Limits(**base)


def kinds(holds) -> set[LimitKind]:
    return {h.kind for h in holds}


PRIVATE = Target("private", "id:1")


def test_next_slot_sliding_window() -> None:
    assert next_slot([], 3, 60, 100) == 100
    assert next_slot([50, 60], 3, 60, 100) == 100
    # three in the window: the oldest must leave it first
    assert next_slot([50, 60, 70], 3, 60, 100) == 110
    # events older than the window do not count
    assert next_slot([10, 60, 70], 3, 60, 100) == 100
    # more events than the cap (a cap lowered while sending): wait for enough to leave
    assert next_slot([50, 55, 60, 70], 2, 60, 100) == 120
    assert next_slot([1, 2], 0, 60, 100) == float("inf")


def test_rate_window_rounds_down() -> None:
    assert rate_window(25) == (25, 1.0)
    assert rate_window(2.5) == (2, 1.0)
    assert rate_window(0.5) == (1, 2.0)
    with pytest.raises(ValueError):
        rate_window(0)


def test_account_minute_and_hour_windows() -> None:
    pacer = Pacer(limits(per_account_per_minute=3, per_account_per_hour=5))
    pace = AccountPace("a")
    t = NOON
    for i in range(3):
        assert pacer.account_holds(pace, None, Target("private", f"id:{i}"), t) == []
        pace = pacer.reserve(pace, Target("private", f"id:{i}"), t)
        t += 1
    holds = pacer.account_holds(pace, None, Target("private", "id:9"), t)
    assert kinds(holds) == {LimitKind.ACCOUNT_MINUTE}
    assert holds[0].until == NOON + 60 and holds[0].used == 3 and holds[0].cap == 3
    t = NOON + 60
    assert pacer.account_holds(pace, None, Target("private", "id:9"), t) == []
    for i in range(2):
        pace = pacer.reserve(pace, Target("private", f"id:{10 + i}"), t + i)
    holds = pacer.account_holds(pace, None, Target("private", "id:99"), NOON + 125)
    assert kinds(holds) == {LimitKind.ACCOUNT_HOUR}
    assert holds[0].until == NOON + 3600  # the first send of the hour must leave the window


def test_margin_widens_windows() -> None:
    pacer = Pacer(limits(per_account_per_minute=1, margin=1.5))
    pace = pacer.reserve(AccountPace("a"), PRIVATE, NOON)
    hold = pacer.account_holds(pace, None, Target("private", "id:2"), NOON + 60)
    assert kinds(hold) == {LimitKind.ACCOUNT_MINUTE} and hold[0].until == NOON + 61.5
    assert pacer.account_holds(pace, None, Target("private", "id:2"), NOON + 61.5) == []


def test_per_chat_interval_private_and_group() -> None:
    pacer = Pacer(limits(per_chat_min_interval=1.0, per_group_per_minute=2))
    pace = pacer.reserve(AccountPace("a"), PRIVATE, NOON)
    holds = pacer.account_holds(pace, None, PRIVATE, NOON + 0.5)
    assert kinds(holds) == {LimitKind.PER_CHAT} and holds[0].until == NOON + 1.0
    assert pacer.account_holds(pace, None, Target("private", "id:2"), NOON + 0.5) == []  # other chat
    g = Target("group", "id:-100")
    pace = pacer.reserve(pace, g, NOON + 1)
    pace = pacer.reserve(pace, g, NOON + 2)
    holds = pacer.account_holds(pace, None, g, NOON + 10)
    assert kinds(holds) == {LimitKind.PER_GROUP}
    assert holds[0].until == NOON + 61 and holds[0].detail == "id:-100"
    holds = pacer.account_holds(pace, None, g, NOON + 2.5)
    assert kinds(holds) == {LimitKind.PER_GROUP, LimitKind.PER_CHAT}
    assert earliest(holds, NOON + 2.5) == NOON + 61


def test_jitter_spacing_is_random_within_bounds() -> None:
    pacer = Pacer(limits(jitter_min=2.0, jitter_max=8.0), random.Random(7))
    gaps = []
    pace = AccountPace("a")
    t = NOON
    for i in range(50):
        pace = pacer.reserve(pace, Target("private", f"id:{i}"), t)
        assert kinds(pacer.account_holds(pace, None, Target("private", "id:x"), t)) == {LimitKind.JITTER}
        gaps.append(pace.next_at - t)
        t = pace.next_at
        assert pacer.account_holds(pace, None, Target("private", "id:x"), t) == []
    assert all(2.0 <= g <= 8.0 for g in gaps)
    assert len({round(g, 3) for g in gaps}) > 40  # not a fixed sleep


def test_quiet_hours_in_the_account_zone() -> None:
    lim = limits(
        quiet_start=60, quiet_end=7 * 60, timezone="Asia/Taipei", account_timezones={"ny": "America/New_York"}
    )
    pacer = Pacer(lim)
    three_am = datetime(2026, 3, 2, 3, 0, tzinfo=TZ).timestamp()
    holds = pacer.account_holds(AccountPace("tw"), None, PRIVATE, three_am)
    assert kinds(holds) == {LimitKind.QUIET_HOURS}
    assert holds[0].until == datetime(2026, 3, 2, 7, 0, tzinfo=TZ).timestamp()
    # the same instant is 14:00 in New York: not quiet there
    assert pacer.account_holds(AccountPace("ny"), None, PRIVATE, three_am) == []
    # immediate sends are not held by quiet hours
    assert (
        pacer.account_holds(AccountPace("tw"), None, Target("private", "id:1", urgent=True), three_am) == []
    )


def test_quiet_hours_crossing_midnight() -> None:
    pacer = Pacer(limits(quiet_start=22 * 60, quiet_end=6 * 60, timezone="Asia/Taipei"))
    late = datetime(2026, 3, 2, 23, 30, tzinfo=TZ).timestamp()
    assert pacer.quiet_until(late, "a") == datetime(2026, 3, 3, 6, 0, tzinfo=TZ).timestamp()
    early = datetime(2026, 3, 3, 5, 59, tzinfo=TZ).timestamp()
    assert pacer.quiet_until(early, "a") == datetime(2026, 3, 3, 6, 0, tzinfo=TZ).timestamp()
    assert pacer.quiet_until(datetime(2026, 3, 3, 6, 0, tzinfo=TZ).timestamp(), "a") is None
    assert pacer.quiet_until(datetime(2026, 3, 2, 21, 59, tzinfo=TZ).timestamp(), "a") is None


def test_daily_non_contact_cap_slides_over_24_hours() -> None:
    pacer = Pacer(limits(daily_non_contacts=2, warmup_days=0))
    cold = Target("private", "id:5", non_contact=True)
    pace = AccountPace("a")
    pace = pacer.reserve(pace, Target("private", "id:1", non_contact=True), NOON)
    pace = pacer.reserve(pace, Target("private", "id:2", non_contact=True), NOON + 10)
    holds = pacer.account_holds(pace, None, cold, NOON + 3600)
    assert kinds(holds) == {LimitKind.ACCOUNT_DAILY_NON_CONTACTS} and holds[0].until == NOON + DAY
    # messages to people in a conversation with the account are not capped by it
    assert pacer.account_holds(pace, None, Target("private", "id:7"), NOON + 3600) == []
    assert pacer.account_holds(pace, None, cold, NOON + DAY) == []


def test_warmup_ramps_the_non_contact_cap() -> None:
    pacer = Pacer(limits(daily_non_contacts=20, warmup_days=7))
    pace = AccountPace("a")
    caps = [pacer.non_contact_cap(AccountProfile("a", age_days=d), pace, NOON) for d in range(9)]
    assert caps == [2, 5, 7, 10, 12, 15, 17, 20, 20]
    assert pacer.non_contact_cap(AccountProfile("a", age_days=0, warmup=False), pace, NOON) == 20
    # without a profile the first time this service saw the account counts
    seen = AccountPace("a", first_seen=NOON - 3 * DAY)
    assert pacer.non_contact_cap(None, seen, NOON) == 10
    cold = Target("private", "id:5", non_contact=True)
    young = AccountProfile("a", age_days=0.5)
    pace = pacer.reserve(pacer.reserve(pace, cold, NOON), Target("private", "id:6", non_contact=True), NOON)
    holds = pacer.account_holds(pace, young, Target("private", "id:9", non_contact=True), NOON + 1)
    assert kinds(holds) == {LimitKind.WARMUP} and holds[0].cap == 2


def test_warmup_day_zero_with_zero_cap_lifts_next_day() -> None:
    pacer = Pacer(limits(daily_non_contacts=5, warmup_days=7))  # 5·1//8 == 0 on day 0
    profile = AccountProfile("a", age_days=0.25)
    holds = pacer.account_holds(AccountPace("a"), profile, Target("private", "id:1", non_contact=True), NOON)
    assert kinds(holds) == {LimitKind.WARMUP}
    assert holds[0].until == pytest.approx(NOON + 0.75 * DAY)


def test_flood_wait_moves_the_window_past_the_wait() -> None:
    pacer = Pacer(limits(margin=1.0))
    pace = pacer.flood_wait(AccountPace("a"), NOON, 30)
    holds = pacer.account_holds(pace, None, PRIVATE, NOON + 30)
    assert kinds(holds) == {LimitKind.FLOOD_WAIT} and holds[0].until == NOON + 31
    assert pacer.account_holds(pace, None, PRIVATE, NOON + 31) == []
    # a shorter wait never shortens a longer one
    assert pacer.flood_wait(pace, NOON + 1, 5).flood_until == NOON + 31


def test_peer_flood_cools_the_account_down() -> None:
    pacer = Pacer(limits(peer_flood_cooldown=6 * 3600))
    pace = pacer.peer_flood(AccountPace("a"), NOON)
    holds = pacer.account_holds(pace, None, PRIVATE, NOON + 3600)
    assert kinds(holds) == {LimitKind.PEER_FLOOD} and holds[0].until == NOON + 6 * 3600


def test_shared_windows_global_api_and_recipient() -> None:
    times: list[float] = []
    for i in range(3):
        assert window_hold(LimitKind.GLOBAL, times, 3, 1.0, NOON + i * 0.1, 0.0) is None
        times = reserve_window(times, NOON + i * 0.1, 1.0)
    hold = window_hold(LimitKind.GLOBAL, times, 3, 1.0, NOON + 0.5, 0.0)
    assert hold is not None and hold.until == pytest.approx(NOON + 1.0)
    times = release_window(times, NOON + 0.2)
    assert window_hold(LimitKind.GLOBAL, times, 3, 1.0, NOON + 0.5, 0.0) is None

    lim = limits(recipient_daily_cap=2, recipient_total_cap=3)
    assert recipient_hold([], 0, lim, NOON) is None
    hold = recipient_hold([NOON - 10, NOON - 5], 2, lim, NOON)
    assert hold is not None and hold.until == NOON - 10 + DAY and hold.detail == "daily"
    hold = recipient_hold([], 3, lim, NOON)
    assert hold is not None and hold.until is None and hold.detail == "total"


def test_backoff_doubles_and_caps() -> None:
    pacer = Pacer(limits(retry_base=10, retry_max=60))
    assert [pacer.backoff(a) for a in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_pace_round_trips_through_a_document() -> None:
    pacer = Pacer(limits())
    pace = pacer.reserve(AccountPace("a"), Target("group", "@grp.x"), NOON)
    pace = pacer.flood_wait(pace, NOON, 10)
    again = AccountPace.from_doc("a", pace.to_doc())
    assert again == pace


def test_limits_follow_the_settings() -> None:
    lim = Limits.from_settings(
        PacingSettings(per_account_per_minute=7, quiet_hours_start=None, quiet_hours_end=None),
        ComplianceSettings(per_recipient_daily_cap=9),
    )
    assert lim.per_account_per_minute == 7 and lim.quiet_start is None and lim.recipient_daily_cap == 9
    default = Limits.from_settings(PacingSettings())
    assert default.quiet_start == 60 and default.quiet_end == 420 and default.daily_non_contacts == 20


def test_sends_in_flight_per_account() -> None:
    pacer = Pacer(limits())
    pace = pacer.reserve(AccountPace("a"), PRIVATE, NOON, busy_for=30, token="t1")
    holds = pacer.account_holds(pace, None, Target("private", "id:2"), NOON + 1)
    assert kinds(holds) == {LimitKind.JITTER} and holds[0].until == NOON + 30
    assert holds[0].detail == "1 send(s) in flight"
    # a lost outcome (a crashed replica) stops holding when the send would have timed out
    assert pacer.account_holds(pace, None, Target("private", "id:2"), NOON + 30) == []
    # with three allowed, two in flight do not hold; a third does, until the earliest gives up
    three = Pacer(limits(max_in_flight=3))
    pace = three.reserve(AccountPace("a"), PRIVATE, NOON, busy_for=30, token="t1")
    pace = three.reserve(pace, Target("private", "id:2"), NOON + 1, busy_for=30, token="t2")
    assert three.account_holds(pace, None, Target("private", "id:3"), NOON + 2) == []
    pace = three.reserve(pace, Target("private", "id:3"), NOON + 2, busy_for=30, token="t3")
    holds = three.account_holds(pace, None, Target("private", "id:4"), NOON + 3)
    assert kinds(holds) == {LimitKind.JITTER} and holds[0].until == NOON + 30
    assert set(pace.inflight) == {"t1", "t2", "t3"}


def test_a_finished_send_counts_from_its_outcome() -> None:
    """A slow send counted from its reservation would let a seventh send share a minute with it on
    Telegram's side; counted from its outcome (the later end of when Telegram got it) it cannot."""
    pacer = Pacer(limits(per_account_per_minute=2, per_group_per_minute=2, per_chat_min_interval=5.0))
    group = Target("group", "chat:-100")
    pace = pacer.reserve(AccountPace("a"), group, NOON, busy_for=30, token="slow")
    pace = pacer.settled(pace, group, NOON, NOON + 4, "slow")  # Telegram took 4 s to answer
    assert pace.sends == [NOON + 4] and pace.groups["chat:-100"] == [NOON + 4]
    assert pace.inflight == {}
    pace = pacer.reserve(pace, group, NOON + 10, busy_for=30, token="fast")
    pace = pacer.settled(pace, group, NOON + 10, NOON + 10.2, "fast")
    # the minute window frees 60 s after the slow send's outcome, not after its reservation
    holds = pacer.account_holds(pace, None, Target("group", "chat:-200"), NOON + 61)
    assert LimitKind.ACCOUNT_MINUTE in kinds(holds)
    assert pacer.account_holds(pace, None, Target("group", "chat:-200"), NOON + 64.5) == []
    # a private chat's interval runs from the outcome too
    pace = pacer.reserve(pace, PRIVATE, NOON + 200, busy_for=30, token="p")
    pace = pacer.settled(pace, PRIVATE, NOON + 200, NOON + 203, "p")
    assert pace.chats[PRIVATE.chat] == NOON + 203
    # an outcome "before" the reservation (a clock step) never moves a send earlier
    same = pacer.settled(pace, PRIVATE, NOON + 203, NOON + 100, "none")
    assert same.sends == pace.sends and same.chats == pace.chats


def test_warmup_assumed_without_a_profile_is_looked_at_again_soon() -> None:
    """A fixed reply job of an account with warm-up disabled sat `scheduled` a day away (reason
    rate_limit) after a tg-session restart: get-accounts failed, so the account had no profile, the
    warm-up cap was assumed (day 0: 2 strangers), its 24 h lift was the job's wait, and the planner
    reschedules a fixed job held longer than LONG_WAIT to that lift. The assumption is now rechecked
    within PROFILE_RECHECK seconds; with the profile back, the job goes."""
    from tgm_campaign.messaging.pacing import PROFILE_RECHECK
    from tgm_campaign.messaging.pause_store import Pauses
    from tgm_campaign.messaging.planning import LONG_WAIT, Plan, RoundPlanner, RoundView, Seen

    lim = limits(daily_non_contacts=20, warmup_days=7)
    pacer = Pacer(lim)
    pace = AccountPace("a")
    for i, at in enumerate((NOON - 60, NOON - 30)):  # two replies to strangers: day 0's cap of 2
        pace = pacer.reserve(pace, Target("private", f"id:{i}", non_contact=True), at)
    cold = Target("private", "id:9", non_contact=True)
    holds = pacer.account_holds(pace, None, cold, NOON)
    assert kinds(holds) == {LimitKind.WARMUP} and holds[0].detail == "profile unknown"
    assert NOON < holds[0].until <= NOON + PROFILE_RECHECK < NOON + LONG_WAIT
    # a known profile decides: warm-up off sends now, warm-up on holds until the window slides
    assert pacer.account_holds(pace, AccountProfile("a", age_days=0.0, warmup=False), cold, NOON) == []
    known = pacer.account_holds(pace, AccountProfile("a", age_days=0.0), cold, NOON)
    assert kinds(known) == {LimitKind.WARMUP} and known[0].until == NOON - 60 + DAY

    def round_with(profiles: dict[str, AccountProfile]) -> list[object]:
        seen = Seen(
            now_ts=NOON, now=datetime.fromtimestamp(NOON, TZ), limits=lim, pauses=Pauses([]),
            paces={"a": pace}, held={}, pools={}, accounts={"a"}, profiles=profiles, aliases={},
            blocked={}, talking={}, windows={}, entries={}, totals={},
        )  # fmt: skip
        job = {"_id": "j1", "peer_key": "id:9", "kind": "private", "account_id": "a", "fixed": True}
        plan = RoundPlanner(seen, RoundView(), {}, random.Random(1), NOON).plan([job])
        assert plan.next_at <= NOON + PROFILE_RECHECK or plan.decisions, plan
        return plan.decisions

    assert round_with({}) == []  # waits in the due set (not rescheduled a day away)
    sent = round_with({"a": AccountProfile("a", age_days=0.0, warmup=False)})
    assert len(sent) == 1 and isinstance(sent[0], Plan) and sent[0].account == "a"
