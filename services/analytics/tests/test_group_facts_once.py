"""Facts of what happened in Telegram, not of the events that told us (issue 12: the scripted session
found a group's message and a member's join counted once per fleet account in the group, our own send
counted twice when its echo came first, and a reply missed when it was published before its send)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tgm_analytics.stats.facts import fact_of
from tgm_analytics.stats.timeline import detect_replies
from tgm_contracts import events_session as ts
from tgm_contracts.models.session import TelegramUser

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _id(evt: ts.MessageReceived | ts.MemberJoined) -> str:
    fact = fact_of(evt)
    assert fact is not None
    return str(fact["_id"])


def test_a_supergroup_message_seen_by_two_accounts_is_one_fact_a_basic_groups_stay_apart() -> None:
    def seen(account: str, kind: str, message_id: int) -> ts.MessageReceived:
        return ts.MessageReceived(
            account_id=account, chat_kind=kind, chat_id=-1001, message_id=message_id, date=T0, sender_id=9
        )

    assert _id(seen("a1", "supergroup", 7)) == _id(seen("a2", "supergroup", 7)) == "received:-1001:7"
    assert _id(seen("a1", "supergroup", 7)) != _id(seen("a1", "supergroup", 8))
    # a basic group numbers messages per member: the same id in two accounts is two messages
    assert _id(seen("a1", "group", 7)) != _id(seen("a2", "group", 7))
    private = seen("a1", "private", 7)
    assert _id(private) == private.event_id


def test_a_join_seen_by_two_accounts_is_one_fact() -> None:
    def seen(account: str, user: int, at: datetime = T0) -> ts.MemberJoined:
        return ts.MemberJoined(
            account_id=account, chat_id=-1001, user=TelegramUser(user_id=user), joined_at=at
        )

    assert _id(seen("a1", 5)) == _id(seen("a2", 5))
    assert _id(seen("a1", 5)) != _id(seen("a1", 6))
    assert _id(seen("a1", 5)) != _id(seen("a1", 5, datetime(2026, 3, 2, tzinfo=UTC)))  # joined again later


def test_one_telegram_message_is_one_send_whichever_events_report_it() -> None:
    ours = ts.MessageSent(
        account_id="a1", job_id="j1", chat_kind="private", chat_id=9, message_id=7, sent_at=T0
    )
    echo = ts.MessageSent(
        account_id="a1", chat_kind="private", chat_id=9, message_id=7, sent_at=T0, origin="external"
    )
    mine, typed = fact_of(ours), fact_of(echo)
    assert mine is not None and typed is not None
    assert mine["_id"] == typed["_id"] == "sent:a1:9:7" and mine["m"] == 7
    assert (mine["o"], typed["o"]) == ("queue", "external")


def test_a_conversation_with_message_ids_is_ordered_by_them_not_by_publish_time() -> None:
    # the answer was published 6 ms before the send it answers was (the send's echo was checked first)
    send = ("c", datetime(2026, 3, 1, 0, 0, 0, 6000, tzinfo=UTC), {"m": 10})
    answer = ("c", datetime(2026, 3, 1, 0, 0, 0, 0, tzinfo=UTC), {"m": 11})
    assert detect_replies([send], [answer], seq=lambda p: p["m"]) == [({"m": 11}, {"m": 10})]
    assert detect_replies([send], [answer]) == []  # by time alone it came first
    old = ("c", answer[1], {})  # a fact stored without its message id: time order, as before
    assert detect_replies([send], [old], seq=lambda p: p.get("m")) == []
