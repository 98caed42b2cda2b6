"""Trigger rules: save (every reference checked), delete, toggle, list, and the dry run
(`test-trigger-rule`), which asks the same engine (`engine.py`) the inbound path asks, with the stored
cooldown and day counts, reserving nothing and sending nothing.

Save refuses, with a clear error: keyword sets, source groups, templates (and inactive templates) and
sender accounts that do not exist (accounts are checked with tg-session when it answers, else at
send time, like the queue does), an unknown time-window timezone, and `start_scenario` actions
naming a scenario that does not exist (NOT_FOUND; asked through `missing_scenarios`, collaboration's,
set by bootstrap; one deleted or deactivated later is the firing's error, as a deleted template is). `overlapWarning` names the other active rules that
use one of the same keyword sets in a group both watch (they are all evaluated on the same messages;
see the engine's docstring for the order and exclusivity).

Counters (`triggerCount` firings whose cooldown and day count were reserved, `successCount` those
whose every action succeeded, `failureCount` the others, `lastTriggeredAt`) are written by the
inbound path, once per firing (rule_store.py).
"""

from __future__ import annotations

import builtins
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from tgm_contracts import Service
from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_campaign import EntityChanged
from tgm_contracts.models.campaign import TemplateVariable
from tgm_contracts.rpc_session import DescribeAccounts, DescribeAccountsRequest
from tgm_contracts.settings import GeneralSettings
from tgm_contracts.sys import SettingsGet, SettingsSections
from tgm_runtime import Conflict, DomainError, Invalid, NotFound
from tgm_runtime.routes import answers
from tgm_runtime.single_flight import SingleFlight

from ..messaging.clock import Clock, utc
from ..messaging.rules import Rules
from ..messaging.stores import MessagingStores
from ..messaging.templates import (
    MissingVariables,
    TemplateError,
    merge_values,
    parse,
    recipient_values,
    render,
)
from . import engine
from .channel import BOT_SCOPES
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .matcher import Hit
from .ports import Call, Emit
from .rule_store import COUNTERS
from .store import AutomationStores

log = logging.getLogger("tgm.campaign.automation")

#: How long a replica keeps the active rules before reading them again (its own writes clear it).
ACTIVE_TTL = 1.0


def sender_variables(
    *,
    first_name: str | None,
    username: str | None,
    last_name: str | None = None,
    group_title: str | None = None,
    keyword: str | None = None,
) -> dict[str, str]:
    """A reply's template variables from the message's sender (and where and why it matched): the
    reply job carries them, so `{first_name}` renders even in a group reply, whose peer is the chat."""
    values: dict[str, str | None] = {
        **recipient_values(first_name, last_name, username),
        "group_title": group_title,
        "keyword": keyword,
    }
    return {k: v[:1000] for k, v in values.items() if v}


def render_template(
    content: str,
    declared: Sequence[TemplateVariable],
    values: Mapping[str, str],
    rng: random.Random,
    at: datetime,
) -> tuple[str, str | None]:
    """The text a template gives for these values (missing variables kept as `{name}`, and said)."""
    seq = parse(content)
    context = {"date": at.strftime("%Y-%m-%d"), "time": at.strftime("%H:%M")}
    merged = merge_values(declared, values, context)
    try:
        return render(seq, merged, rng), None
    except MissingVariables as exc:
        return render(seq, merged, rng, missing="keep"), f"a real send fails (template_error): {exc}"


Request = Callable[[str, dict[str, Any], type[BaseModel], float], Awaitable[Any]]
"""`runtime.request(subject, body, response_model, timeout)`."""

#: How long general.timezone (the gateway's) is kept before asking again.
TIMEZONE_TTL = 30.0


class GeneralZone:
    """`general.timezone`: the gateway owns the section, so it is asked (`sys settings-get`, with a
    deadline) and kept `TIMEZONE_TTL`; its default (GeneralSettings) until the gateway has answered,
    the last answer while it does not."""

    def __init__(self, request: Request | None) -> None:
        self._request = request
        self._value: tuple[float, str] | None = None

    async def get(self) -> str:
        now = time.monotonic()
        if self._value is not None and now - self._value[0] < TIMEZONE_TTL:
            return self._value[1]
        current = self._value[1] if self._value is not None else GeneralSettings().timezone
        if self._request is None:
            return current
        try:
            reply = await self._request(
                SettingsGet.subject(Service.GATEWAY), {"sections": ["general"]}, SettingsSections, 2.0
            )
            tz = next((s.values.get("timezone") for s in reply.sections if s.section == "general"), None)
            current = tz if isinstance(tz, str) and tz else current
            self._value = (now, current)
        except DomainError as exc:
            log.info("general.timezone unknown (%s); using %s", exc.code.value, current)
            self._value = (now - TIMEZONE_TTL + 5.0, current)  # ask again soon
        return current


class TriggerRuleService:
    def __init__(
        self,
        stores: AutomationStores,
        keywords: KeywordSetService,
        groups: GroupService,
        messaging: MessagingStores,
        rules: Rules,
        call: Call,
        emit: Emit,
        clock: Clock,
        request: Request | None = None,
    ) -> None:
        self.stores, self.keywords, self.groups, self.messaging = stores, keywords, groups, messaging
        self.rules, self.call, self.emit, self.clock = rules, call, emit, clock
        self.zone = GeneralZone(request)
        self._active: tuple[float, list[dict[str, Any]]] | None = None
        self._flight = SingleFlight()  # concurrent messages share one refresh of the active rules
        #: scenario ids -> those that do not exist (collaboration's; set by bootstrap, no import cycle)
        self.missing_scenarios: Callable[[list[str]], Awaitable[list[str]]] | None = None

    # --- commands ----------------------------------------------------------------------------------

    async def _validate(self, spec: cmd.TriggerRuleSpec) -> None:
        scenario_ids = [a.scenario_id for a in spec.actions if a.type == "start_scenario"]
        if scenario_ids and self.missing_scenarios is not None:
            missing = await self.missing_scenarios(list(dict.fromkeys(scenario_ids)))
            if missing:
                raise NotFound(
                    f"no such scenario: {', '.join(missing)}", {"field": "actions", "missing": missing}
                )
        missing_sets = await self.keywords.missing(list(dict.fromkeys(spec.keyword_set_ids)))
        if missing_sets:
            raise NotFound(
                f"no such keyword set: {', '.join(missing_sets)}",
                {"field": "keywordSetIds", "missing": missing_sets},
            )
        # `tailchat:<appId>` / `telegram:<botId>` name a bot as a source (channel.py), not a monitored group
        groups = [g for g in dict.fromkeys(spec.source_group_ids) if not g.startswith(BOT_SCOPES)]
        if groups:
            missing_groups = await self.groups.missing(groups)
            if missing_groups:
                raise NotFound(
                    f"no such monitored group: {', '.join(missing_groups)}",
                    {"field": "sourceGroupIds", "missing": missing_groups},
                )
        for action in spec.actions:
            if action.type == "reply_template":
                tpl = await self.messaging.templates.get(action.template_id)
                if tpl is None:
                    raise NotFound(
                        f"template {action.template_id} does not exist",
                        {"field": "actions", "missing": [action.template_id]},
                    )
                if not tpl.get("is_active", True):
                    raise Conflict(f"template {action.template_id} is inactive; activate it first")
        window = spec.conditions.time_range
        if window is not None and window.timezone:
            try:
                ZoneInfo(window.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise Invalid(
                    f"unknown timezone {window.timezone!r} (an IANA name such as Asia/Taipei)",
                    {"field": "conditions.timeRange.timezone"},
                ) from None
        if spec.sender_account_ids:
            ids = list(dict.fromkeys(spec.sender_account_ids))
            try:
                briefs = await self.call(DescribeAccounts, DescribeAccountsRequest(account_ids=ids), 5.0)
            except DomainError as exc:  # tg-session cannot say now: the queue checks at send time
                log.info(
                    "describe-accounts failed (%s); sender accounts are checked at send time", exc.code.value
                )
                return
            if briefs.missing:
                raise NotFound(
                    f"no such account: {', '.join(briefs.missing)}",
                    {"field": "senderAccountIds", "missing": list(briefs.missing)},
                )

    @answers(cmd.SaveTriggerRule, principal=True)
    async def save(self, req: cmd.SaveTriggerRuleRequest, by: str | None) -> cmd.TriggerRuleView:
        await self._validate(req)
        fields = req.model_dump(mode="json", by_alias=False, exclude={"id"})
        now = utc(self.clock())
        if req.id is None:
            doc = await self.stores.rules.create(fields, now)
            action = "created"
        else:
            found = await self.stores.rules.replace(req.id, fields, now)
            if found is None:
                raise NotFound(f"trigger rule {req.id} does not exist")
            doc, action = found, "updated"
        self._active = None
        await self.emit(EntityChanged(entity="trigger_rule", entity_id=doc["_id"], action=action, by=by))
        return await self.view(doc)

    @answers(cmd.DeleteTriggerRule, principal=True)
    async def delete(self, req: cmd.RuleIdRequest, by: str | None) -> Ack:
        if not await self.stores.rules.delete(req.id):
            raise NotFound(f"trigger rule {req.id} does not exist")
        await self.stores.firings.forget_rule(req.id)
        self._active = None
        await self.emit(EntityChanged(entity="trigger_rule", entity_id=req.id, action="deleted", by=by))
        return Ack(affected=1)

    @answers(cmd.ToggleTriggerRule, principal=True)
    async def toggle(self, req: cmd.ToggleTriggerRuleRequest, by: str | None) -> cmd.TriggerRuleView:
        if req.is_active is not False:  # activating: its references must still hold
            current = await self.stores.rules.get(req.id)
            if current is None:
                raise NotFound(f"trigger rule {req.id} does not exist")
            if req.is_active is True or not current.get("is_active", True):
                if not current.get("keyword_set_ids"):
                    raise Conflict(
                        f"trigger rule {req.id} has no keyword set (its sets were deleted): save it with one"
                        " before activating it",
                        {"field": "keywordSetIds"},
                    )
                await self._validate(engine.rule_of(current).spec)
        doc = await self.stores.rules.set_active(req.id, req.is_active, utc(self.clock()))
        if doc is None:
            raise NotFound(f"trigger rule {req.id} does not exist")
        self._active = None
        await self.emit(EntityChanged(entity="trigger_rule", entity_id=req.id, action="updated", by=by))
        return await self.view(doc)

    @answers(cmd.GetTriggerRules)
    async def list(self, req: cmd.GetTriggerRulesRequest) -> Page[cmd.TriggerRuleView]:
        docs = await self.stores.rules.find(
            active_only=req.active_only, keyword_set_id=req.keyword_set_id, group_id=req.group_id
        )
        overlaps = Overlaps(await self.active())
        views = [self._view(d, overlaps) for d in docs]
        return Page[cmd.TriggerRuleView](items=views, total=len(views))

    # --- views -------------------------------------------------------------------------------------

    async def view(self, doc: Mapping[str, Any]) -> cmd.TriggerRuleView:
        return self._view(doc, Overlaps(await self.active()))

    def _view(self, doc: Mapping[str, Any], overlaps: Overlaps) -> cmd.TriggerRuleView:
        fields = {k: v for k, v in doc.items() if k in cmd.TriggerRuleView.model_fields and k not in COUNTERS}
        return cmd.TriggerRuleView.model_validate(
            {
                **fields,
                "id": doc["_id"],
                "trigger_count": doc.get("trigger_count", 0),
                "success_count": doc.get("success_count", 0),
                "last_triggered_at": doc.get("last_triggered_at"),
                "overlap_warning": overlaps.warning(doc),
            }
        )

    async def active(self) -> builtins.list[dict[str, Any]]:
        """Active rules, highest priority first (cached briefly)."""
        now = time.monotonic()
        if self._active is not None and now - self._active[0] < ACTIVE_TTL:
            return self._active[1]
        return await self._flight.run("active", self._read_active)

    async def _read_active(self) -> builtins.list[dict[str, Any]]:
        now = time.monotonic()
        docs = await self.stores.rules.find(active_only=True)
        self._active = (now, docs)
        return docs

    async def active_rules(self) -> builtins.list[engine.Rule]:
        """Active rules as the engine sees them (a stored rule that no longer validates is skipped)."""
        out = []
        for doc in await self.active():
            try:
                out.append(engine.rule_of(doc))
            except ValueError as exc:
                log.error("trigger rule %s is unreadable (%s); skipped", doc.get("_id"), exc)
        return out

    async def settings(self) -> engine.Settings:
        compliance = await self._flight.run("compliance", self.rules.compliance)
        return engine.Settings(
            timezone=await self._flight.run("zone", self.zone.get),
            default_cooldown=compliance.trigger_cooldown_seconds,
        )

    # --- the dry run ---------------------------------------------------------------------------------

    @answers(cmd.TestTriggerRule)
    async def test(self, req: cmd.TriggerTestRequest) -> cmd.TriggerTestResult:
        now = utc(self.clock())
        if req.rule_id is not None:
            doc = await self.stores.rules.get(req.rule_id)
            if doc is None:
                raise NotFound(f"trigger rule {req.rule_id} does not exist")
            rule = engine.rule_of(doc)
        else:
            assert req.rule is not None
            rule = engine.Rule(id="unsaved", spec=req.rule, created_at=now)
        msg, sender = req.message, req.message.sender
        at = msg.at or now
        group: dict[str, Any] | None = None
        sets = list(rule.spec.keyword_set_ids)
        unbound: list[str] = []
        if msg.group_id is not None:
            group = await self.messaging.groups.get(msg.group_id)
            if group is None:
                raise NotFound(f"monitored group {msg.group_id} does not exist")
            bound = set(group.get("keyword_set_ids") or [])
            unbound = [s for s in sets if s not in bound]
            sets = [s for s in sets if s in bound]
        matcher = await self.keywords.matcher()
        hits = matcher.match(msg.text, sets) if sets else []
        lead = None
        if sender.user_id is not None or sender.username is not None:
            lead = await self.messaging.leads.by_identity(sender.user_id, sender.username)
        facts = engine.Facts(
            text=msg.text,
            at=at,
            group_id=msg.group_id,
            user_id=sender.user_id,
            username=sender.username,
            first_name=sender.first_name,
            is_admin=sender.is_admin,
            is_new_member=sender.is_new_member,
            intent_score=sender.intent_score
            if sender.intent_score is not None
            else (lead or {}).get("intent_score"),
            lead_stage=(lead or {}).get("stage"),
        )
        settings = await self.settings()
        others = [r for r in await self.active_rules() if r.id != rule.id]
        candidates = [*others, rule] if rule.spec.is_active else others
        days = {r.id: engine.local_day(at, settings) for r in [*others, rule]}
        states = await self.stores.firings.states(days, sender.user_id)
        rng = random.Random(f"test|{rule.id}|{msg.text}")
        evs = engine.decide(
            candidates, facts, hits, states, settings, rng, ignore_cooldown=req.ignore_cooldown
        )
        ev = next((e for e in evs if e.rule.id == rule.id), None)
        if ev is None:  # an inactive rule: evaluated on its own, and said
            ev = engine.evaluate(
                rule,
                facts,
                hits,
                states.get(rule.id, engine.RuleState()),
                settings,
                rng,
                ignore_cooldown=req.ignore_cooldown,
            )
        checks = [
            cmd.ConditionCheck(condition=c.condition, passed=c.passed, detail=c.detail) for c in ev.checks
        ]
        if unbound:
            checks.insert(
                1,
                cmd.ConditionCheck(
                    condition="keyword_sets_bound",
                    passed=bool(sets),
                    detail=f"not bound to group {msg.group_id} (never matched there): {', '.join(unbound)}",
                ),
            )
        if not rule.spec.is_active:
            checks.insert(
                0, cmd.ConditionCheck(condition="active", passed=False, detail="the rule is inactive")
            )
        if ev.outcome == "exclusive":
            checks.append(cmd.ConditionCheck(condition="exclusive", passed=False, detail=ev.reason))
        would_fire = ev.eligible and rule.spec.is_active
        reason = (
            None
            if would_fire
            else ("the rule is inactive" if not rule.spec.is_active and ev.eligible else ev.reason)
        )
        actions = await self._plan(rule, ev, facts, group, at, settings) if would_fire else []
        return cmd.TriggerTestResult(
            matched=ev.matched,
            would_fire=would_fire,
            matches=[match_view(h) for h in ev.hits],
            conditions=checks,
            cooldown_blocked=any(c.condition == "cooldown" and not c.passed for c in ev.checks),
            daily_limit_reached=any(c.condition == "daily_limit" and not c.passed for c in ev.checks),
            actions=actions,
            reason=reason,
        )

    async def _plan(
        self,
        rule: engine.Rule,
        ev: engine.Evaluation,
        facts: engine.Facts,
        group: Mapping[str, Any] | None,
        at: datetime,
        settings: engine.Settings,
    ) -> builtins.list[cmd.PlannedAction]:
        spec = rule.spec
        sender_id = (
            spec.sender_account_ids[0]
            if spec.sender_type == "specific" and len(spec.sender_account_ids) == 1
            else None
        )
        who = {
            "auto": "a healthy account that is a member of the group, chosen by the queue at send time",
            "listener": "the listener account that saw the message",
            "specific": f"one of {', '.join(spec.sender_account_ids)}",
        }[spec.sender_type]
        tz, _ = engine.zone(settings.timezone, "UTC")
        local = at.astimezone(tz)
        out: list[cmd.PlannedAction] = []
        for action in spec.actions:
            if action.type == "reply_template":
                tpl = await self.messaging.templates.get(action.template_id)
                if tpl is None:
                    out.append(
                        cmd.PlannedAction(
                            type=action.type, detail=f"template {action.template_id} does not exist"
                        )
                    )
                    continue
                declared = [TemplateVariable.model_validate(v) for v in tpl.get("variables") or []]
                values = sender_variables(
                    first_name=facts.first_name,
                    username=facts.username,
                    group_title=(group or {}).get("title"),
                    keyword=ev.keyword,
                )
                try:
                    text, note = render_template(tpl["content"], declared, values, random.Random(), local)
                except TemplateError as exc:
                    text, note = None, f"the template does not parse: {exc}"
                where = (
                    "a private message to the sender"
                    if action.target == "private"
                    else "a reply in the group"
                )
                out.append(
                    cmd.PlannedAction(
                        type=action.type,
                        text=text,
                        sender_account_id=sender_id,
                        delay_seconds=ev.delay,
                        detail=f"{where}, sent by {who}" + (f"; {note}" if note else ""),
                    )
                )
            elif action.type == "ai_reply":
                what = (
                    "sent"
                    if action.mode == "full"
                    else "suggested to an operator (reply-suggested), not sent"
                )
                extra = "".join(
                    [
                        f", strategy {action.strategy_id}" if action.strategy_id else "",
                        "; with the rule's extra prompt" if action.prompt else "",
                    ]
                )
                out.append(
                    cmd.PlannedAction(
                        type=action.type,
                        sender_account_id=sender_id,
                        delay_seconds=ev.delay if action.mode == "full" else None,
                        detail=f"the ai service drafts a reply with the knowledge base and the user's memory when"
                        f" the rule fires (not generated in a dry run), {what}"
                        f" as {'a private message' if action.target == 'private' else 'a reply in the group'}"
                        f" by {who}{extra}",
                    )
                )
            elif action.type == "add_lead":
                out.append(
                    cmd.PlannedAction(
                        type=action.type,
                        detail=f"create or update the sender's lead: source keyword, group {facts.group_id},"
                        f" keyword {ev.keyword!r}, stage {action.stage.value}"
                        + (f", tags {', '.join(action.tags)}" if action.tags else ""),
                    )
                )
            elif action.type == "notify":
                out.append(
                    cmd.PlannedAction(
                        type=action.type,
                        text=notify_text(
                            action.message, rule.name, facts, ev.keyword, (group or {}).get("title")
                        ),
                        detail=f"operator notification ({action.channel})",
                    )
                )
            else:
                out.append(
                    cmd.PlannedAction(
                        type=action.type,
                        detail=f"start scenario {getattr(action, 'scenario_id', '')} for the sender",
                    )
                )
        return out


def notify_text(
    template: str | None, rule_name: str, facts: engine.Facts, keyword: str | None, group_title: str | None
) -> str:
    """A `notify` action's message: its own text (variables rendered, unknown ones kept), else a summary."""
    who = facts.first_name or (f"@{facts.username}" if facts.username else f"user {facts.user_id}")
    where = group_title or facts.group_id or "a group"
    if not template:
        return f"{rule_name}: {who} in {where} matched {keyword!r}: {facts.text[:300]}"[:1000]
    values = {
        **sender_variables(
            first_name=facts.first_name, username=facts.username, group_title=group_title, keyword=keyword
        ),
        "rule": rule_name,
        "text": facts.text[:500],
    }
    try:
        return render(parse(template), values, random.Random(), missing="keep")[:1000]
    except TemplateError:
        return template[:1000]


def match_view(h: Hit) -> cmd.KeywordMatch:
    return cmd.KeywordMatch(
        keyword_set_id=h.set_id,
        keyword_id=h.keyword_id,
        keyword=h.keyword,
        match_type=h.match_type,
        start=h.start,
        end=h.end,
        score=h.score,
    )


OVERLAP_CHARS = 1000


class Overlaps:
    """The active rules indexed by keyword set, built once per list: a rule's overlap warning then
    looks only at the rules sharing one of its sets, and stops once the warning is full. Comparing
    every rule with every active rule cost get-trigger-rules of 1,000 rules 0.7 s of campaign CPU
    (`bench/lists`)."""

    def __init__(self, active: Sequence[Mapping[str, Any]]) -> None:
        self.active = active
        self.by_set: dict[str, list[int]] = {}
        self.sources: list[set[str] | None] = []
        for i, other in enumerate(active):
            for set_id in dict.fromkeys(other.get("keyword_set_ids") or []):
                self.by_set.setdefault(set_id, []).append(i)
            self.sources.append(_sources(other))

    def warning(self, doc: Mapping[str, Any]) -> str | None:
        """Other active rules sharing a keyword set with this one in a group both watch (in the order
        of `active`: highest priority first)."""
        near = sorted({i for s in doc.get("keyword_set_ids") or [] for i in self.by_set.get(s, ())})
        mine = _sources(doc)
        text, names = "also matching the same keyword sets: ", 0
        for i in near:
            other, theirs = self.active[i], self.sources[i]
            if other["_id"] == doc.get("_id"):
                continue
            if mine is not None and theirs is not None and not mine & theirs:
                continue
            text += (
                "; " if names else ""
            ) + f"{other.get('name')} ({other['_id']}, priority {other.get('priority')})"
            names += 1
            if len(text) >= OVERLAP_CHARS:
                break
        return text[:OVERLAP_CHARS] if names else None


def _sources(rule: Mapping[str, Any]) -> set[str] | None:
    """The groups a rule watches; None for all of them."""
    return None if rule.get("source_type", "all") == "all" else set(rule.get("source_group_ids") or [])
