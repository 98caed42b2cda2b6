"""Pure stats logic: buckets in time zones (with DST), empty buckets, reply detection, event -> fact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tgm_analytics.stats.facts import fact_of
from tgm_analytics.stats.queries import Scope, _series
from tgm_analytics.stats.timeline import REPLY_WINDOW, Timeline, detect_replies, zone
from tgm_contracts import events_ai as ai
from tgm_contracts import events_analytics as an
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_hour_buckets_cover_the_window_and_start_at_the_hour_at_or_before_since() -> None:
    tl = Timeline.build(utc(2026, 3, 1, 10, 30), utc(2026, 3, 1, 13, 0), "hour", zone("UTC"))
    assert tl.starts == (utc(2026, 3, 1, 10), utc(2026, 3, 1, 11), utc(2026, 3, 1, 12))
    assert tl.index(utc(2026, 3, 1, 10, 29)) is None  # before since: outside the window
    assert tl.index(utc(2026, 3, 1, 10, 30)) == 0
    assert tl.index(utc(2026, 3, 1, 12, 59, 59)) == 2
    assert tl.index(utc(2026, 3, 1, 13, 0)) is None  # until is excluded


def test_half_hour_offset_zone_gets_local_hour_boundaries() -> None:
    tl = Timeline.build(utc(2026, 3, 1, 0, 0), utc(2026, 3, 1, 2, 0), "hour", zone("Asia/Kolkata"))
    # 00:00 UTC is 05:30 local, inside the 05:00 local hour (23:30 UTC); then 06:00 and 07:00 local.
    assert tl.starts == (utc(2026, 2, 28, 23, 30), utc(2026, 3, 1, 0, 30), utc(2026, 3, 1, 1, 30))


def test_day_buckets_follow_local_midnight_across_spring_forward() -> None:
    # Europe/Berlin springs forward on 2026-03-29 (02:00 -> 03:00): that local day lasts 23 hours.
    tz = zone("Europe/Berlin")
    tl = Timeline.build(utc(2026, 3, 27, 23), utc(2026, 3, 30, 22), "day", tz)
    assert tl.starts == (
        utc(2026, 3, 27, 23),  # 2026-03-28 00:00 CET
        utc(2026, 3, 28, 23),  # 2026-03-29 00:00 CET
        utc(2026, 3, 29, 22),  # 2026-03-30 00:00 CEST
    )
    assert [b - a for a, b in zip(tl.starts, tl.starts[1:], strict=False)] == [
        timedelta(hours=24),
        timedelta(hours=23),
    ]
    assert tl.index(utc(2026, 3, 29, 21, 59)) == 1  # 23:59 CEST on the 29th
    assert tl.index(utc(2026, 3, 29, 22, 0)) == 2


def test_hour_buckets_keep_the_repeated_hour_of_fall_back_apart() -> None:
    # America/New_York falls back on 2026-11-01: 01:00-02:00 local happens twice (EDT, then EST).
    tz = zone("America/New_York")
    tl = Timeline.build(utc(2026, 11, 1, 4), utc(2026, 11, 1, 8), "hour", tz)
    assert len(tl) == 4  # four real hours, although the wall clock shows 00, 01, 01, 02
    assert [s.astimezone(tz).hour for s in tl.starts] == [0, 1, 1, 2]
    day = Timeline.build(utc(2026, 11, 1, 4), utc(2026, 11, 3, 5), "day", tz)
    assert day.starts[1] - day.starts[0] == timedelta(hours=25)


def test_unknown_zone_and_empty_window_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Mars/Olympus")
    with pytest.raises(ValueError):
        Timeline.build(T0, T0, "hour", zone("UTC"))


def test_series_have_every_bucket_with_zeros_and_group_top() -> None:
    tl = Timeline.build(T0, T0 + timedelta(hours=4), "hour", zone("UTC"))
    items = [
        (T0 + timedelta(minutes=5), {"a": "x"}, 1.0, None),
        (T0 + timedelta(hours=2), {"a": "x"}, 1.0, None),
        (T0 + timedelta(hours=2), {"a": "y"}, 1.0, None),
        (T0 + timedelta(hours=3), {}, 1.0, None),  # no account: only in the ungrouped series
    ]
    (flat,) = _series("m", items, tl, "none", 10)
    assert [p.value for p in flat.points] == [1, 0, 2, 1] and flat.total == 4 and flat.key is None
    grouped = _series("m", items, tl, "account", 1)
    assert [(s.key, s.total) for s in grouped] == [("x", 2.0)]
    assert [p.value for p in grouped[0].points] == [1, 0, 1, 0]
    (empty,) = _series("m", [], tl, "none", 10)
    assert [p.value for p in empty.points] == [0, 0, 0, 0]
    distinct = [
        (T0, {}, 1.0, 7),
        (T0 + timedelta(minutes=1), {}, 1.0, 7),
        (T0 + timedelta(hours=1), {}, 1.0, 7),
    ]
    (users,) = _series("active_users", distinct, tl, "none", 10)
    assert [p.value for p in users.points] == [1, 1, 0, 0] and users.total == 1


def test_a_reply_answers_the_latest_unanswered_send_within_the_window() -> None:
    k = ("acc", 5)
    sends = [(k, T0, "s1"), (k, T0 + timedelta(hours=10), "s2")]
    receives = [
        (k, T0 + timedelta(hours=1), "r1"),  # answers s1
        (k, T0 + timedelta(hours=2), "r2"),  # s1 already answered: not a new reply
        (k, T0 + timedelta(hours=11), "r3"),  # answers s2
    ]
    assert detect_replies(sends, receives) == [("r1", "s1"), ("r3", "s2")]


def test_late_messages_and_other_conversations_are_not_replies() -> None:
    late = T0 + REPLY_WINDOW + timedelta(seconds=1)
    assert detect_replies([(("a", 1), T0, "s")], [(("a", 1), late, "r")]) == []
    # the same user writing to another account, and a message before any send
    assert detect_replies([(("a", 1), T0, "s")], [(("b", 1), T0 + timedelta(minutes=1), "r")]) == []
    assert detect_replies([(("a", 1), T0, "s")], [(("a", 1), T0 - timedelta(minutes=1), "r")]) == []
    # at exactly the same instant, the send comes first and is answered
    assert detect_replies([(("a", 1), T0, "s")], [(("a", 1), T0, "r")]) == [("r", "s")]
    # exactly at the window's end still counts
    assert detect_replies([(("a", 1), T0, "s")], [(("a", 1), T0 + REPLY_WINDOW, "r")]) == [("r", "s")]


def test_fact_of_maps_events_to_kinds_and_skips_double_counts() -> None:
    sent = ts.MessageSent(
        account_id="a1", chat_kind="private", chat_id=42, message_id=1, sent_at=T0, job_id="j1", origin="rpc"
    )
    f = fact_of(sent)
    assert f is not None
    assert {k: f[k] for k in ("k", "a", "ch", "ck", "u", "j", "s", "n")} == {
        "k": "sent",
        "a": "a1",
        "ch": 42,
        "ck": "private",
        "u": 42,
        "j": "j1",
        "s": "tg-session",
        "n": 1,
    }
    assert f["_id"] == "sent:a1:42:1"  # keyed by the Telegram message (test_group_facts_once.py)
    campaign_sent = cp.MessageSent(job_id="j1", account_id="a1", peer="42", message_id=1, sent_at=T0)
    assert fact_of(campaign_sent) is None  # the same send as tg-session's message-sent
    outgoing = ts.MessageReceived(
        account_id="a1", chat_kind="private", chat_id=42, message_id=2, date=T0, is_outgoing=True
    )
    assert fact_of(outgoing) is None
    group_msg = ts.MessageReceived(
        account_id="a1", chat_kind="supergroup", chat_id=-1001, message_id=3, date=T0, sender_id=9
    )
    assert fact_of(group_msg)["ck"] == "group"  # type: ignore[index]
    failed = ts.MessageSendFailed(
        account_id="a1", peer="-100", error_code="TELEGRAM_ERROR", telegram_error="CHAT_WRITE_FORBIDDEN"
    )
    ff = fact_of(failed)
    assert ff is not None and (ff["ch"], ff["ck"], ff["e"]) == (-100, "group", "CHAT_WRITE_FORBIDDEN")
    by_name = fact_of(ts.MessageSendFailed(account_id="a1", peer="@someone", error_code="NOT_FOUND"))
    assert by_name is not None and "ch" not in by_name and by_name["e"] == "NOT_FOUND"
    wait = fact_of(ts.FloodWaitRecorded(account_id="a1", seconds=30, until=T0, category="send"))
    assert wait is not None and (wait["k"], wait["n"]) == ("flood_wait", 30)
    handoff = ai.AiResponseGenerated(
        account_id="a1", user_id="42", provider="local", model="m", confidence=0.2, handoff=True
    )
    assert fact_of(handoff)["k"] == "ai_handoff"  # type: ignore[index]
    repeat = an.AlertRaised(
        alert_id="x",
        level="warning",
        code="c",
        title="t",
        message="m",
        first_seen_at=T0,
        last_seen_at=T0,
        repeat=True,
    )
    assert fact_of(repeat) is None
    assert fact_of(cp.UserBlacklisted(user_id=5, blacklisted=False)) is None


def test_scope_keeps_only_facts_carrying_the_filtered_value() -> None:
    f = {"a": "a1", "ch": 5, "ck": "private"}
    assert Scope(account_id="a1").keep(f)
    assert not Scope(account_id="a2").keep(f)
    assert not Scope(campaign_id="c1").keep(f)  # the fact names no campaign
    assert Scope(campaign_id="c1").keep(f, campaign=False)
    assert not Scope(chat_kind="group").keep(f)
    assert Scope(chat_ids=frozenset({5, 6})).keep(f)
