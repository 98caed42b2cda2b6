"""The trigger-rule engine (`automation/engine.py`): each condition and limit, cooldown, the daily
limit across local midnight in general.timezone, priority order and exclusivity, the delay."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_campaign.automation.engine import (
    Exclusivity,
    Facts,
    Rule,
    RuleState,
    Settings,
    decide,
    evaluate,
    in_window,
    local_day,
    ordered,
    rule_of,
)
from tgm_campaign.automation.matcher import Hit
from tgm_contracts.commands.automation import TriggerRuleSpec

pytestmark = [pytest.mark.component, pytest.mark.timeout(10)]

T0 = datetime(2025, 3, 10, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Taipei
TPE = Settings(timezone="Asia/Taipei", default_cooldown=600)


def rule(rid: str = "tr_a", created: datetime = T0, **kw: Any) -> Rule:
    spec: dict[str, Any] = {
        "name": rid,
        "keyword_set_ids": ["ks_1"],
        "actions": [{"type": "notify"}],
        "delay_min": 0,
        "delay_max": 0,
    }
    spec.update(kw)
    return Rule(id=rid, spec=TriggerRuleSpec.model_validate(spec), created_at=created)


def hit(set_id: str = "ks_1", keyword: str = "price") -> Hit:
    return Hit(set_id=set_id, keyword_id="kw_1", keyword=keyword, match_type="contains", start=0, end=5)


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {"text": "what is the price", "at": T0, "group_id": "grp_1", "user_id": 42}
    base.update(kw)
    return Facts(**base)


def check(ev: Any, name: str) -> Any:
    return next(c for c in ev.checks if c.condition == name)


def test_a_matching_rule_with_defaults_fires_and_reports_every_check() -> None:
    ev = evaluate(rule(), facts(), [hit()], RuleState(), TPE)
    assert ev.outcome == "fired" and ev.eligible and ev.reason is None
    assert ev.keyword == "price"
    names = [c.condition for c in ev.checks]
    assert names == [
        "source_group",
        "keyword_sets",
        "sender",
        "exclude_admin",
        "exclude_lead_stages",
        "cooldown",
        "daily_limit",
    ]
    assert all(c.passed for c in ev.checks)
    assert ev.day == "2025-03-10" and ev.cooldown == 600


def test_no_hit_of_the_rules_sets_is_not_matched_above_any_other_failure() -> None:
    ev = evaluate(rule(), facts(user_id=None), [hit("ks_other")], RuleState(), TPE)
    assert ev.outcome == "not_matched" and not ev.matched
    assert ev.reason is not None and ev.reason.startswith("keyword_sets")
    assert not check(ev, "sender").passed  # still reported


def test_source_groups_specific() -> None:
    r = rule(source_type="specific", source_group_ids=["grp_2"])
    assert evaluate(r, facts(group_id="grp_1"), [hit()], RuleState(), TPE).outcome == "condition_failed"
    assert evaluate(r, facts(group_id="grp_2"), [hit()], RuleState(), TPE).outcome == "fired"
    assert evaluate(r, facts(group_id=None), [hit()], RuleState(), TPE).outcome == "condition_failed"


def test_anonymous_sender_cannot_fire() -> None:
    ev = evaluate(rule(), facts(user_id=None), [hit()], RuleState(), TPE)
    assert ev.outcome == "condition_failed" and ev.reason is not None and "anonymous" in ev.reason


def test_new_member_only() -> None:
    r = rule(conditions={"new_member_only": True})
    assert evaluate(r, facts(is_new_member=True), [hit()], RuleState(), TPE).eligible
    for known in (False, None):
        ev = evaluate(r, facts(is_new_member=known), [hit()], RuleState(), TPE)
        assert ev.outcome == "condition_failed" and not check(ev, "new_member_only").passed


def test_exclude_admin_known_and_unknown() -> None:
    r = rule()  # exclude_admin defaults to True
    assert evaluate(r, facts(is_admin=True), [hit()], RuleState(), TPE).outcome == "condition_failed"
    unknown = evaluate(r, facts(is_admin=None), [hit()], RuleState(), TPE)
    assert unknown.eligible and "unknown" in (check(unknown, "exclude_admin").detail or "")
    off = rule(conditions={"exclude_admin": False})
    assert evaluate(off, facts(is_admin=True), [hit()], RuleState(), TPE).eligible


def test_time_window_in_general_timezone_and_across_midnight() -> None:
    day = rule(conditions={"time_range": {"start": "09:00", "end": "18:00"}})
    assert evaluate(day, facts(at=T0), [hit()], RuleState(), TPE).eligible  # 12:00 Taipei
    # 12:00 Taipei is 04:00 UTC: with general.timezone UTC the same instant is outside 09-18.
    utc = Settings(timezone="UTC")
    assert evaluate(day, facts(at=T0), [hit()], RuleState(), utc).outcome == "condition_failed"
    night = rule(conditions={"time_range": {"start": "22:00", "end": "06:00"}})
    at_23 = T0 + timedelta(hours=11)  # 23:00 Taipei
    at_05 = T0 + timedelta(hours=17)  # 05:00 Taipei, next day
    assert evaluate(night, facts(at=at_23), [hit()], RuleState(), TPE).eligible
    assert evaluate(night, facts(at=at_05), [hit()], RuleState(), TPE).eligible
    assert not evaluate(night, facts(at=T0), [hit()], RuleState(), TPE).eligible
    own_zone = rule(conditions={"time_range": {"start": "03:00", "end": "05:00", "timezone": "UTC"}})
    assert evaluate(own_zone, facts(at=T0), [hit()], RuleState(), TPE).eligible
    bad = rule(conditions={"time_range": {"start": "09:00", "end": "18:00", "timezone": "Mars/Olympus"}})
    ev = evaluate(bad, facts(at=T0), [hit()], RuleState(), TPE)
    assert ev.eligible and "unknown zone" in (check(ev, "time_range").detail or "")
    assert in_window(T0, "10:00", "10:00")  # start == end: the whole day


def test_once_per_user() -> None:
    r = rule(conditions={"once_per_user": True})
    assert evaluate(r, facts(), [hit()], RuleState(), TPE).eligible
    ev = evaluate(r, facts(), [hit()], RuleState(user_stored=True, last_key="earlier-firing"), TPE)
    assert ev.outcome == "condition_failed" and not check(ev, "once_per_user").passed


def test_min_intent_score() -> None:
    r = rule(conditions={"min_intent_score": 50})
    assert evaluate(r, facts(intent_score=50), [hit()], RuleState(), TPE).eligible
    assert not evaluate(r, facts(intent_score=49), [hit()], RuleState(), TPE).eligible
    none = evaluate(r, facts(intent_score=None), [hit()], RuleState(), TPE)
    assert not none.eligible and "none known" in (check(none, "min_intent_score").detail or "")


def test_excluded_lead_stages() -> None:
    r = rule()  # closed_won and closed_lost by default
    assert not evaluate(r, facts(lead_stage="closed_won"), [hit()], RuleState(), TPE).eligible
    assert evaluate(r, facts(lead_stage="new"), [hit()], RuleState(), TPE).eligible
    assert evaluate(r, facts(lead_stage=None), [hit()], RuleState(), TPE).eligible
    custom = rule(conditions={"exclude_lead_stages": ["replied"]})
    assert not evaluate(custom, facts(lead_stage="replied"), [hit()], RuleState(), TPE).eligible
    assert evaluate(custom, facts(lead_stage="closed_won"), [hit()], RuleState(), TPE).eligible


def test_cooldown_rule_value_else_compliance_setting() -> None:
    own = rule(cooldown_seconds=60)
    state = RuleState(last_fired_at=T0 - timedelta(seconds=59))
    ev = evaluate(own, facts(), [hit()], state, TPE)
    assert ev.outcome == "cooldown" and "1 s left" in (ev.reason or "")
    assert evaluate(own, facts(), [hit()], RuleState(last_fired_at=T0 - timedelta(seconds=60)), TPE).eligible
    default = rule()
    state = RuleState(last_fired_at=T0 - timedelta(seconds=599))
    assert evaluate(default, facts(), [hit()], state, TPE).outcome == "cooldown"
    assert evaluate(default, facts(), [hit()], state, Settings(default_cooldown=500)).eligible
    zero = rule(cooldown_seconds=0)
    assert evaluate(zero, facts(), [hit()], RuleState(last_fired_at=T0), TPE).eligible
    dry = evaluate(default, facts(), [hit()], RuleState(last_fired_at=T0), TPE, ignore_cooldown=True)
    assert dry.eligible


def test_daily_limit_and_its_local_midnight() -> None:
    r = rule(daily_limit=3)
    assert evaluate(r, facts(), [hit()], RuleState(today_count=2), TPE).eligible
    ev = evaluate(r, facts(), [hit()], RuleState(today_count=3), TPE)
    assert ev.outcome == "daily_limit" and not check(ev, "daily_limit").passed
    # 23:59 and 00:00 Taipei are different days, though both are 15:59/16:00 UTC on one UTC day.
    before = datetime(2025, 3, 10, 15, 59, tzinfo=UTC)
    after = datetime(2025, 3, 10, 16, 0, tzinfo=UTC)
    assert local_day(before, TPE) == "2025-03-10"
    assert local_day(after, TPE) == "2025-03-11"
    assert local_day(after, Settings(timezone="UTC")) == "2025-03-10"
    assert evaluate(r, facts(at=after), [hit()], RuleState(), TPE).day == "2025-03-11"


def test_delay_is_within_bounds_and_repeatable_with_a_seeded_generator() -> None:
    r = rule(delay_min=30, delay_max=120)
    delays = {evaluate(r, facts(), [hit()], RuleState(), TPE, random.Random(i)).delay for i in range(200)}
    assert min(delays) >= 30 and max(delays) <= 120 and len(delays) > 20
    a = evaluate(r, facts(), [hit()], RuleState(), TPE, random.Random("k")).delay
    b = evaluate(r, facts(), [hit()], RuleState(), TPE, random.Random("k")).delay
    assert a == b


def test_priority_order_ties_by_creation() -> None:
    low = rule("tr_low", priority=1)
    high = rule("tr_high", priority=9)
    old = rule("tr_old", priority=5, created=T0 - timedelta(days=1))
    new = rule("tr_new", priority=5, created=T0)
    assert [r.id for r in ordered([low, new, high, old])] == ["tr_high", "tr_old", "tr_new", "tr_low"]


def test_exclusive_rule_shadows_later_ones_non_exclusive_fire_together() -> None:
    watcher = rule("tr_watch", priority=10, exclusive=False)
    first = rule("tr_first", priority=5, exclusive=True)
    second = rule("tr_second", priority=3, exclusive=True)
    inactive = rule("tr_off", priority=99, is_active=False)
    evs = decide([second, inactive, first, watcher], facts(), [hit()], {}, TPE)
    assert [(e.rule.id, e.outcome) for e in evs] == [
        ("tr_watch", "fired"),
        ("tr_first", "fired"),
        ("tr_second", "exclusive"),
    ]
    assert "tr_first" in (evs[2].reason or "")


def test_a_blocked_exclusive_rule_does_not_shadow() -> None:
    first = rule("tr_first", priority=5, exclusive=True, daily_limit=1)
    second = rule("tr_second", priority=3, exclusive=True)
    evs = decide([first, second], facts(), [hit()], {"tr_first": RuleState(today_count=1)}, TPE)
    assert [(e.rule.id, e.outcome) for e in evs] == [("tr_first", "daily_limit"), ("tr_second", "fired")]
    # the inbound path: the first one was eligible but lost its reservation race
    gate = Exclusivity()
    a = evaluate(rule("tr_a", exclusive=True), facts(), [hit()], RuleState(), TPE)
    b = evaluate(rule("tr_b", exclusive=True), facts(), [hit()], RuleState(), TPE)
    assert not gate.blocks(a)  # reserving a failed: not reported as fired
    assert not gate.blocks(b)
    gate.fired(b)
    c = evaluate(rule("tr_c"), facts(), [hit()], RuleState(), TPE)
    assert gate.blocks(c) and c.outcome == "exclusive"


def test_rule_of_a_stored_document() -> None:
    doc = {
        "_id": "tr_x",
        "name": "x",
        "priority": 4,
        "keyword_set_ids": ["ks_1"],
        "actions": [{"type": "reply_template", "template_id": "t1", "target": "group_reply"}],
        "conditions": {"exclude_admin": False, "exclude_lead_stages": []},
        "trigger_count": 3,
        "created_at": datetime(2025, 1, 1),  # naive, as read back without tz_aware
    }
    r = rule_of(doc)
    assert r.id == "tr_x" and r.spec.priority == 4 and r.created_at.tzinfo is not None
    assert r.spec.actions[0].type == "reply_template"
    assert evaluate(r, facts(is_admin=True, lead_stage="closed_won"), [hit()], RuleState(), TPE).eligible
