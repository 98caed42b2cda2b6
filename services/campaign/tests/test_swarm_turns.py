"""A swarm's turn-taking (`collaboration/turns.py`, pure): who answers, the rotation, the caps and
pacing, the self / role / fleet exclusion, triggers, and the state a redelivery finds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tgm_campaign.collaboration import turns
from tgm_campaign.collaboration.turns import Decision, Message, Participant, Rules, State, apply, decide

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]

ROLES = [
    Participant("r1", "acct0", telegram_id=9000, username="alice_pro"),
    Participant("r2", "acct1", telegram_id=9001, username="bob_fan"),
    Participant("r3", "acct2", telegram_id=9002, username="carol_new"),
]
FLEET = {9000, 9001, 9002, 9100}
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()

#: answer every question at once: no probability, no interval, no caps to speak of
OPEN = Rules(probability=1.0, min_interval=0, per_hour=120, share=1.0, window=20, account_interval=0)


def msg(
    mid: int, text: str = "how much is it?", sender: int | None = 101, at: float | None = None, **kw
) -> Message:
    return Message(
        message_id=mid, sender_id=sender, text=text, at=T0 + mid if at is None else at, listener="acct0", **kw
    )


def run(rules: Rules, messages: list[Message], usable: set[str] | None = None, chance: float = 0.0):
    """Decide each message in turn, carrying the state; the decisions and the final state."""
    state, out = State(), []
    for m in messages:
        d = decide(rules, ROLES, FLEET, state, m, chance, usable)
        state = apply(state, m, d)
        out.append(d)
    return out, state


def test_rotation_least_recent_first_in_role_order() -> None:
    decisions, state = run(OPEN, [msg(i) for i in range(1, 8)])
    assert [d.outcome for d in decisions] == ["answered"] * 7
    assert [d.account_id for d in decisions] == [
        "acct0",
        "acct1",
        "acct2",
        "acct0",
        "acct1",
        "acct2",
        "acct0",
    ]
    assert state.answered_total == 7 and [e.ordinal for e in state.recent] == list(range(7))
    assert state.account_last == {"acct0": T0 + 7, "acct1": T0 + 5, "acct2": T0 + 6}


def test_no_account_answers_itself_another_role_or_the_fleet() -> None:
    d, _ = run(OPEN, [msg(1, sender=9001)])  # written by a role account (bob)
    assert d[0].outcome == "role_account" and not d[0].member and "acct1" in (d[0].detail or "")
    d, _ = run(OPEN, [msg(1, sender=9100)])  # another fleet account, not in the swarm
    assert d[0].outcome == "fleet_account"
    d, _ = run(OPEN, [msg(1, is_outgoing=True, sender=9000)])  # the listener's own message
    assert d[0].outcome == "own_message"
    d, _ = run(OPEN, [msg(1, sender=None)])  # a channel post
    assert d[0].outcome == "anonymous"
    # none of them is the group's traffic: the share window and everyN do not count them
    _, state = run(OPEN, [msg(1, sender=9001), msg(2, sender=9100)])
    assert state.since_answer == 0 and not any(e.member for e in state.recent)


def test_group_interval_hourly_cap_and_per_account_rest() -> None:
    rules = Rules(probability=1.0, min_interval=60, per_hour=3, share=1.0, account_interval=0)
    times = [0, 30, 60, 120, 180, 240, 3000, 3700]
    decisions, _ = run(rules, [msg(i + 1, at=T0 + t) for i, t in enumerate(times)])
    outcomes = [d.outcome for d in decisions]
    assert outcomes == [
        "answered",  # 0
        "group_interval",  # 30 s after the last answer
        "answered",  # 60
        "answered",  # 120
        "hourly_cap",  # 3 answers in the last hour
        "hourly_cap",
        "hourly_cap",  # 3000: still 3 within the hour (0, 60, 120)
        "answered",  # 3700: the answer at 0 left the hour
    ]
    assert "spoke 30 s ago" in (decisions[1].detail or "")
    # each account rests 100 s between its own answers
    rules = Rules(probability=1.0, min_interval=40, per_hour=100, share=1.0, account_interval=100)
    decisions, _ = run(rules, [msg(i + 1, at=T0 + 40 * i) for i in range(4)] + [msg(5, at=T0 + 200)])
    assert [(d.outcome, d.account_id) for d in decisions] == [
        ("answered", "acct0"),
        ("answered", "acct1"),
        ("answered", "acct2"),
        ("answered", "acct0"),  # 120 s: acct0 answered at 0, rested 100 s
        ("answered", "acct1"),  # 200 s: acct0 (120) still resting; acct1 (40) spoke least recently
    ]


def test_account_rest_refuses_when_every_account_spoke_recently() -> None:
    rules = Rules(probability=1.0, min_interval=10, per_hour=100, share=1.0, account_interval=100)
    decisions, _ = run(rules, [msg(i + 1, at=T0 + 10 * i) for i in range(5)])
    assert [(d.outcome, d.account_id) for d in decisions] == [
        ("answered", "acct0"),
        ("answered", "acct1"),
        ("answered", "acct2"),
        ("no_account", None),  # 30 s: every account answered less than 100 s ago
        ("no_account", None),
    ]


def test_share_of_the_groups_traffic_is_capped() -> None:
    rules = Rules(probability=1.0, min_interval=0, per_hour=120, share=0.25, window=8, account_interval=0)
    decisions, state = run(rules, [msg(i) for i in range(1, 25)])
    answered = [i for i, d in enumerate(decisions, 1) if d.answer]
    # never more than 2 answers (25 % of 8) among any 8 consecutive members' messages
    for start in range(1, 25):
        assert sum(1 for a in answered if start <= a < start + 8) <= 2, answered
    assert len(answered) == 6 and {d.outcome for d in decisions if not d.answer} == {"share_cap"}
    # a swarm's own traffic is not the group's: role messages between do not open room
    state2 = state
    for i in range(25, 35):
        m = msg(i, sender=9001)
        state2 = apply(state2, m, decide(rules, ROLES, FLEET, state2, m, 0.0, None))
    d = decide(rules, ROLES, FLEET, state2, msg(40), 0.0, None)
    assert d.outcome == decide(rules, ROLES, FLEET, state, msg(40), 0.0, None).outcome


def test_triggers_keywords_questions_mentions_every_n_and_none_declared() -> None:
    only_q = Rules(questions=True, mentions=False, probability=1.0, min_interval=0, share=1.0)
    assert decide(only_q, ROLES, FLEET, State(), msg(1, "nice weather"), 0.0, None).outcome == "no_trigger"
    assert (
        decide(only_q, ROLES, FLEET, State(), msg(1, "Does it ship to Spain"), 0.0, None).trigger
        == "question"
    )
    assert decide(only_q, ROLES, FLEET, State(), msg(1, "这个多少钱"), 0.0, None).trigger == "question"
    kw = Rules(keyword_sets=True, questions=False, mentions=False, probability=1.0, min_interval=0, share=1.0)
    assert decide(kw, ROLES, FLEET, State(), msg(1, "what?"), 0.0, None).outcome == "no_trigger"
    d = decide(kw, ROLES, FLEET, State(), msg(1, "vpn deal", keyword="vpn"), 0.0, None)
    assert (d.outcome, d.trigger) == ("answered", "keyword")
    # a mention picks the mentioned account (if rested) and skips the probability draw
    mention = Rules(questions=False, mentions=True, probability=0.0, min_interval=0, share=1.0)
    d = decide(mention, ROLES, FLEET, State(), msg(1, "@Carol_New what do you think"), 0.99, None)
    assert (d.outcome, d.trigger, d.account_id) == ("answered", "mention", "acct2")
    d = decide(mention, ROLES, FLEET, State(), msg(1, "agreed", mentioned=True), 0.99, None)
    assert (d.trigger, d.account_id) == ("mention", "acct0")  # the listener (acct0) was replied to
    # every 3rd member's message
    every = Rules(questions=False, mentions=False, every_n=3, probability=1.0, min_interval=0, share=1.0)
    decisions, _ = run(every, [msg(i, "ok") for i in range(1, 8)])
    assert [d.outcome for d in decisions] == ["no_trigger", "no_trigger", "answered"] * 2 + ["no_trigger"]
    # no trigger declared: any member's message is a candidate
    anything = Rules(questions=False, mentions=False, probability=1.0, min_interval=0, share=1.0)
    assert decide(anything, ROLES, FLEET, State(), msg(1, "ok"), 0.0, None).trigger == "any"


def test_probability_is_the_messages_own_repeatable_draw() -> None:
    rules = Rules(probability=0.3, min_interval=0, per_hour=120, share=1.0, account_interval=0)
    draws = [turns.draw("swm_x", m) for m in range(1, 401)]
    assert draws == [turns.draw("swm_x", m) for m in range(1, 401)]
    decisions = [decide(rules, ROLES, FLEET, State(), msg(m), c, None) for m, c in enumerate(draws, 1)]
    share = sum(1 for d in decisions if d.answer) / len(decisions)
    assert 0.22 < share < 0.38, share
    assert {d.outcome for d in decisions if not d.answer} == {"probability"}


def test_unusable_accounts_no_text_and_active_hours() -> None:
    d = decide(OPEN, ROLES, FLEET, State(), msg(1), 0.0, {"acct2"})
    assert d.account_id == "acct2"
    assert decide(OPEN, ROLES, FLEET, State(), msg(1), 0.0, set()).outcome == "no_account"
    d = decide(OPEN, ROLES, FLEET, State(), msg(1, "", has_media=True), 0.0, None)
    assert (d.outcome, d.member) == ("no_text", True)
    night = Rules(probability=1.0, min_interval=0, share=1.0, active_hours=("22:00", "06:00", "UTC"))
    assert decide(night, ROLES, FLEET, State(), msg(1), 0.0, None).outcome == "inactive_hours"  # 12:00 UTC
    local = Rules(probability=1.0, min_interval=0, share=1.0, active_hours=("19:00", "21:00", "Asia/Taipei"))
    assert decide(local, ROLES, FLEET, State(), msg(1), 0.0, None).outcome == "answered"  # 20:00 in Taipei
    # activeHours without a zone are the operator's general.timezone (passed in), not UTC
    bare = {"reply_probability": 1.0, "min_interval_seconds": 0, "max_traffic_share": 1.0}
    bare["active_hours"] = {"start": "19:00", "end": "21:00"}
    assert (
        decide(Rules.of(bare, "Asia/Taipei"), ROLES, FLEET, State(), msg(1), 0.0, None).outcome == "answered"
    )
    assert decide(Rules.of(bare), ROLES, FLEET, State(), msg(1), 0.0, None).outcome == "inactive_hours"


def test_state_round_trips_and_a_decided_message_is_found() -> None:
    _, state = run(OPEN, [msg(1), msg(2, sender=9001), msg(3)])
    again = State.of(state.doc())
    assert again.doc() == state.doc()
    entry = again.find(3)
    assert entry is not None and (entry.outcome, entry.account_id, entry.ordinal) == ("answered", "acct1", 1)
    assert again.find(99) is None
    assert Decision("answered", True, "acct0").answer and not Decision("share_cap", True).answer
    # the list is bounded
    _, big = run(OPEN, [msg(i, sender=9001) for i in range(1, turns.RECENT + 50)])
    assert len(big.recent) == turns.RECENT and big.recent[-1].message_id == turns.RECENT + 49


def test_rules_of_a_stored_spec() -> None:
    from tgm_contracts.commands.collaboration import SwarmSpec

    spec = SwarmSpec.model_validate(
        {
            "chat": -1001,
            "roleIds": ["a", "b"],
            "triggers": {"keywordSetIds": ["ks1"], "questions": False, "everyNMessages": 4},
            "replyProbability": 0.5,
            "minIntervalSeconds": 30,
            "maxMessagesPerHour": 7,
            "maxTrafficShare": 0.2,
            "trafficWindow": 10,
            "activeHours": {"start": "09:00", "end": "18:00", "timezone": "Europe/Paris"},
        }
    )
    rules = Rules.of(spec.model_dump(by_alias=False))
    assert rules == Rules(
        keyword_sets=True,
        questions=False,
        mentions=True,
        every_n=4,
        probability=0.5,
        min_interval=30.0,
        per_hour=7,
        share=0.2,
        window=10,
        account_interval=None,
        active_hours=("09:00", "18:00", "Europe/Paris"),
    )
