"""The trigger-rule engine: which rules fire on one message, and why the others do not. Pure (no I/O,
no clock, no randomness of its own): the inbound path (`service.py`) and `test-trigger-rule`
(`rule_service.py`) both call it, so a dry run answers exactly what a real message would do.

Evaluation order and how many rules fire (the campaign README quotes this):

- Every active rule is evaluated, highest `priority` first; ties by creation time (older first), then
  by id. A rule is *eligible* when a keyword of its sets matched (among the hits of the group's bound
  sets), and every condition and limit below holds.
- Several rules may fire on one message. An eligible rule fires unless an `exclusive` rule earlier in
  that order fired on the same message; when an exclusive rule fires, every rule after it (lower
  priority, or same priority created later) is skipped with outcome `exclusive`. Non-exclusive rules
  fire together (e.g. a `notify` rule next to a reply rule). Why: one operator intent ("answer the
  price question once") maps to one exclusive rule, while watching rules (leads, notifications) must
  not be silenced by it — the contract's `exclusive` flag says which is which.
- At most one reply action per rule (the contract refuses more), so a user gets one reply per rule.
  The inbound path reserves cooldown and daily count atomically before running a rule's actions; a
  rule that loses that race did not fire, so it does not shadow the rules after it (`select` takes
  the outcome of each reservation).

Conditions, in the order they are checked and reported (`ConditionCheck.condition`):
`source_group` (sourceType `specific`: the group is one of sourceGroupIds), `keyword_sets` (a hit of
one of the rule's sets), `sender` (a known user id: nothing to reply to or count for anonymous
posts), `new_member_only` (joined in the last 24 h; unknown counts as not new), `exclude_admin`
(unknown admin status counts as not admin, said in the detail), `time_range` (local time in the
window's timezone, else `general.timezone`; an end before the start crosses midnight; start == end is
the whole day), `once_per_user`, `min_intent_score` (no score known counts as 0), `exclude_lead_stages`
(no lead passes), `cooldown` (per rule and user: the rule's `cooldownSeconds`, else
`compliance.triggerCooldownSeconds`), `daily_limit` (firings of the rule today, the day in
`general.timezone`: the count resets at local midnight). Every check is reported even after a failure,
so the operator sees all that blocks a rule; the first failure is the `reason`.

The delay before replying is uniform in [delayMin, delayMax] from the generator the caller gives
(the inbound path seeds it with the firing key, so a redelivered message gets the same delay).

The inbound path judges limits and windows at the time it processes the message (the reply goes out
then); test-trigger-rule at the sample's `at`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tgm_contracts.commands.automation import TriggerRuleSpec

from .matcher import Hit

NEW_MEMBER_SECONDS = 24 * 3600
"""How recent a join must be for `newMemberOnly`."""

Outcome = Literal["fired", "not_matched", "condition_failed", "cooldown", "daily_limit", "exclusive"]


@dataclass(frozen=True)
class Rule:
    """A rule as the engine sees it: its spec plus identity and creation time (for the order)."""

    id: str
    spec: TriggerRuleSpec
    created_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class Facts:
    """What is known of one message and its sender."""

    text: str
    at: datetime  # aware; the time limits and windows are judged at
    group_id: str | None = None
    user_id: int | str | None = None  # Telegram's number; `tailchat:<id>` for a Tailchat sender
    username: str | None = None
    first_name: str | None = None
    is_admin: bool | None = None  # None: unknown
    is_new_member: bool | None = None  # None: unknown
    intent_score: int | None = None
    lead_stage: str | None = None  # None: not a lead


@dataclass(frozen=True)
class RuleState:
    """A rule's stored state for this user and today."""

    last_fired_at: datetime | None = None  # for this user
    today_count: int = 0
    #: the stored cooldown as read (`rule_users`: whether it exists, its last firing key): what a
    #: reservation made beside the day's gives back if the day refuses (`FiringStore.release_user`)
    user_stored: bool = False
    last_key: str | None = None

    @property
    def fired_for_user(self) -> bool:
        """Ever fired for this user (once per user)."""
        return bool(self.last_key)


@dataclass(frozen=True)
class Settings:
    timezone: str = "Asia/Taipei"  # general.timezone
    default_cooldown: int = 600  # compliance.triggerCooldownSeconds


@dataclass(frozen=True)
class Check:
    condition: str
    passed: bool
    detail: str | None = None


@dataclass
class Evaluation:
    rule: Rule
    hits: list[Hit]
    checks: list[Check] = field(default_factory=list)
    outcome: Outcome = "fired"
    reason: str | None = None
    delay: int = 0
    day: str = ""  # the local day the daily limit counts in (YYYY-MM-DD)
    cooldown: int = 0

    @property
    def matched(self) -> bool:
        return bool(self.hits)

    @property
    def eligible(self) -> bool:
        return self.outcome == "fired"

    @property
    def keyword(self) -> str | None:
        return self.hits[0].keyword if self.hits else None


def zone(name: str | None, fallback: str) -> tuple[ZoneInfo, str | None]:
    """The zone named, else the fallback (and a note saying so), else UTC."""
    for candidate in (name, fallback):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate), (
                None if candidate == name or name is None else f"unknown zone {name}"
            )
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC"), "no usable timezone; UTC"


def local_day(at: datetime, settings: Settings) -> str:
    """The day (in general.timezone) a firing at `at` counts in."""
    tz, _ = zone(settings.timezone, "UTC")
    return at.astimezone(tz).strftime("%Y-%m-%d")


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """Highest priority first; ties by creation (older first), then id."""
    return sorted(rules, key=lambda r: (-r.spec.priority, r.created_at, r.id))


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(local: datetime, start: str, end: str) -> bool:
    now, s, e = local.hour * 60 + local.minute, _minutes(start), _minutes(end)
    if s == e:
        return True
    return s <= now < e if s < e else (now >= s or now < e)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def evaluate(
    rule: Rule,
    facts: Facts,
    hits: Sequence[Hit],
    state: RuleState,
    settings: Settings,
    rng: random.Random | None = None,
    *,
    ignore_cooldown: bool = False,
) -> Evaluation:
    """One rule on one message: every check, the outcome (`fired` = eligible) and the delay."""
    spec = rule.spec
    at = _aware(facts.at)
    sets = set(spec.keyword_set_ids)
    own = [h for h in hits if h.set_id in sets]
    ev = Evaluation(rule=rule, hits=own, day=local_day(at, settings))
    ev.cooldown = spec.cooldown_seconds if spec.cooldown_seconds is not None else settings.default_cooldown
    checks = ev.checks
    failed: list[tuple[Outcome, str]] = []

    def check(name: str, passed: bool, detail: str | None, outcome: Outcome = "condition_failed") -> None:
        checks.append(Check(name, passed, detail))
        if not passed:
            failed.append((outcome, f"{name}: {detail}" if detail else name))

    if spec.source_type == "specific":
        ok = facts.group_id is not None and facts.group_id in spec.source_group_ids
        check(
            "source_group",
            ok,
            f"group {facts.group_id} is{'' if ok else ' not'} one of the rule's source groups"
            if facts.group_id
            else "no group given and the rule watches specific groups",
        )
    else:
        check("source_group", True, "every monitored group")
    if own:
        first = own[0]
        check("keyword_sets", True, f"{first.match_type} {first.keyword!r} of set {first.set_id}")
    else:
        check("keyword_sets", False, "no keyword of the rule's sets matched", "not_matched")
    check(
        "sender",
        facts.user_id is not None,
        None if facts.user_id is not None else "anonymous sender (no user id): nothing to reply to",
    )
    cond = spec.conditions
    if cond.new_member_only:
        check(
            "new_member_only",
            facts.is_new_member is True,
            {True: "joined in the last 24 h", False: "not a new member", None: "no recent join known"}[
                facts.is_new_member
            ],
        )
    if cond.exclude_admin:
        check(
            "exclude_admin",
            facts.is_admin is not True,
            {
                True: "the sender is a group admin",
                False: "not an admin",
                None: "admin status unknown: treated as not admin",
            }[facts.is_admin],
        )
    if cond.time_range is not None:
        tz, note = zone(cond.time_range.timezone, settings.timezone)
        local = at.astimezone(tz)
        ok = in_window(local, cond.time_range.start, cond.time_range.end)
        detail = f"{local.strftime('%H:%M')} {tz.key} is {'' if ok else 'not '}within {cond.time_range.start}-{cond.time_range.end}"
        check("time_range", ok, f"{detail} ({note})" if note else detail)
    if cond.once_per_user:
        check(
            "once_per_user",
            not state.fired_for_user,
            "already fired for this user" if state.fired_for_user else "never fired for this user",
        )
    if cond.min_intent_score is not None:
        score = facts.intent_score if facts.intent_score is not None else 0
        check(
            "min_intent_score",
            score >= cond.min_intent_score,
            f"intent {score}{'' if facts.intent_score is not None else ' (none known)'}"
            f" {'>=' if score >= cond.min_intent_score else '<'} {cond.min_intent_score}",
        )
    if cond.exclude_lead_stages:
        excluded = {s.value for s in cond.exclude_lead_stages}
        ok = facts.lead_stage not in excluded
        check(
            "exclude_lead_stages",
            ok,
            "not a lead"
            if facts.lead_stage is None
            else f"lead stage {facts.lead_stage}{' is excluded' if not ok else ''}",
        )
    if ignore_cooldown:
        check("cooldown", True, "ignored (dry run)")
    elif state.last_fired_at is not None and ev.cooldown > 0:
        until = _aware(state.last_fired_at) + timedelta(seconds=ev.cooldown)
        ok = at >= until
        left = max(0, int((until - at).total_seconds() + 0.999))
        check(
            "cooldown",
            ok,
            f"{ev.cooldown} s per user; last fired {int((at - _aware(state.last_fired_at)).total_seconds())} s ago"
            + ("" if ok else f", {left} s left"),
            "cooldown",
        )
    else:
        check("cooldown", True, f"{ev.cooldown} s per user; not fired for this user recently")
    ok = state.today_count < spec.daily_limit
    check(
        "daily_limit",
        ok,
        f"{state.today_count} of {spec.daily_limit} today ({ev.day}, {settings.timezone})",
        "daily_limit",
    )
    if failed:
        # A keyword miss is the reason above all (nothing else matters without a match).
        miss = next((f for f in failed if f[0] == "not_matched"), None)
        ev.outcome, ev.reason = miss or failed[0]
    else:
        r = rng or random.Random()
        ev.delay = r.randint(spec.delay_min, spec.delay_max)
    return ev


class Exclusivity:
    """Exclusivity in evaluation order: once an exclusive rule has fired, every later eligible rule
    is skipped (outcome `exclusive`). The inbound path tells it which rules really fired (their
    reservation held); the dry run assumes every eligible rule does."""

    def __init__(self) -> None:
        self.by: str | None = None

    def blocks(self, ev: Evaluation) -> bool:
        """True (and the evaluation marked `exclusive`) when an exclusive rule fired before it."""
        if self.by is None:
            return False
        ev.outcome, ev.reason = "exclusive", f"exclusive rule {self.by!r} fired first"
        return True

    def fired(self, ev: Evaluation) -> None:
        if ev.rule.spec.exclusive and self.by is None:
            self.by = ev.rule.name


def select(evaluations: Sequence[Evaluation]) -> list[Evaluation]:
    """Apply exclusivity to evaluations in order, every eligible rule assumed to fire (dry run)."""
    gate = Exclusivity()
    for ev in evaluations:
        if ev.eligible and not gate.blocks(ev):
            gate.fired(ev)
    return list(evaluations)


def decide(
    rules: Iterable[Rule],
    facts: Facts,
    hits: Sequence[Hit],
    states: Mapping[str, RuleState],
    settings: Settings,
    rng: random.Random | None = None,
    *,
    ignore_cooldown: bool = False,
) -> list[Evaluation]:
    """Every active rule on the message, in evaluation order, exclusivity applied (dry run)."""
    evs = [
        evaluate(
            r, facts, hits, states.get(r.id, RuleState()), settings, rng, ignore_cooldown=ignore_cooldown
        )
        for r in ordered(r for r in rules if r.spec.is_active)
    ]
    return select(evs)


def rule_of(doc: Mapping[str, Any]) -> Rule:
    """A `trigger_rules` document as an engine rule."""
    fields = set(TriggerRuleSpec.model_fields)
    spec = TriggerRuleSpec.model_validate({k: v for k, v in doc.items() if k in fields})
    return Rule(id=str(doc["_id"]), spec=spec, created_at=_aware(doc["created_at"]))
