"""The inbound path: a monitored group's message -> claimed once -> matched -> rules decided ->
actions run, replies only through messaging's paced queue, leads only through crm's use case.

`on_message(evt)`, step by step (each step idempotent, because a failure raises and the runtime
redelivers the event with backoff; bad data is dropped, never a crash of the consumer):

1. Only group messages with text, not our own (`isOutgoing`, or the sender is one of the fleet's
   accounts: our replies in a group must not trigger rules), of a monitored group that is watched
   (`GroupService.by_chat`, `MonitoringService.watching`). Those look-ups go through short TTL
   caches, and concurrent events share one refresh (`SingleFlight`: with 32 events in flight an
   expiry made 32 identical queries).
2. Match the group's bound keyword sets (`KeywordSetService.matcher`, pure). No hit (most
   messages): only the group's `last_message_at`, kept in memory and written once a second
   (`GroupService.flush_seen`): no database write per message.
3. A hit: claim (chat id, message id) (`FiringStore.claim`): every listener account in the group
   publishes its own event for the same message; the first event id owns it, a redelivery of that
   event runs again, the other listeners' copies are skipped — across tg-session and campaign
   replicas. In one replica the first copy to get there also claims it in memory (`_claim_here`),
   so the others, right behind it, cost no query. After the rules (step 4 on), the run of
   the claim counts the matches (`count_matches`, `GroupService.seen_message`: idempotent per
   message key, each counter keeping the keys it counted), so a run killed after the rules or
   mid-count is counted by its redelivery (`again`), once; every run publishes `KeywordMatched`
   (same event ids: JetStream drops a copy).
4. Decide with the engine (`engine.py`: priority order, conditions, cooldown, daily limit,
   exclusivity), judged at processing time in general.timezone. Facts: the lead (stage, intent), a
   recent join (`on_join`; none on record: waits for the joins consumer to catch up,
   `_joined_recently`), the group's admins (tg-session's `get-group-members`, filter `admins`,
   through the listener account; cached per chat for `ADMINS_TTL`; unknown when it cannot answer).
5. For each eligible rule, in order: reserve the day's count then the user's cooldown with
   conditional upserts keyed by the firing `<rule>|<chat>|<message>` (never over the limit, even
   with two replicas racing; a refused cooldown gives the day's slot back), then write the firing,
   `fired` or `blocked`; a refused reservation is outcome `cooldown` / `daily_limit`, and does not
   shadow later rules. A `fired` firing's insert goes with its first action when that action is
   harmless to repeat (a Telegram reply, a lead's capture, a notification), so it does not delay
   the reply job; it is written before any action's record. A crash before the firing is written
   leaves reservations (and maybe the reply's keyed job) the redelivery finds as its own (on a redelivery a cooldown / daily-limit verdict is decided again by the
   reservation, which knows its key).
6. Run the fired rule's actions, `add_lead` first (so a reply job belongs to the lead: its
   blacklist and do-not-contact apply, a delivery moves it to contacted), then the others in their
   order; each is recorded on the firing when done (the last in the write that finishes the
   firing), so a redelivery runs only the rest:
   - `reply_template`: a job through `QueueService.reply` with the template and the sender's
     variables, `notBefore` = fired at + the rule's delay (drawn once, stored on the firing), key
     `trg:<rule>:<chat>:<message>` (a redelivery or another replica never makes a second job).
     Sender: `listener` the account that saw it; `specific` the rule's account (or a pool of them);
     `auto` a pool job: in a group reply any healthy member of the chat (the queue's member pool),
     privately the group's member accounts (else the listener), whichever the scheduler finds with
     pacing room.
   - `ai_reply`: ai's `ai-generate-response` for the account that will send (the listener, the
     rule's first healthy specific account, or the least-used healthy member of the chat), with
     `AI_TIMEOUT`; `full` queues the text like a template reply (escaped: the AI's braces are not
     spintax) when the fleet's AI auto-reply is on (`ai.autoReply`, switched by one-click; read at
     most every 5 s) and ai asked for no handoff; otherwise, and always in `semi`, it publishes
     `ReplySuggested` for an operator and sends nothing. AI unavailable or late: the
     action fails with the reason (the firing is counted as a failure, not retried).
   - `add_lead`: `LeadService.capture` (source `keyword`, group, keyword, set, intent).
   - `notify`: `OperatorNotified`.
7. `TriggerFired` per matched rule (fired / cooldown / daily_limit / condition_failed, or `error`
   when an action failed, with the detail); the rule's counters once per firing (rule_store.py
   `count_firing`: triggered and success/failure in one write when the actions are done, before
   the firing is finished, so a resumed firing is counted too and the reply is not queued behind a
   write of the rule document).

Latency budget (bench/automation/decision.py; the embedded database serves one operation at a
time, ~1-2 ms of its CPU each, and findAndModify scans a collection): a message with no hit makes
no database operation (the group and monitoring state are cached, `last_message_at` is batched); a
matched one (a reply rule) makes 11 operations up to its reply job's insert, in 3 round trips one
after another: claim ‖ lead ‖ rule state (the claim sent with the decision's reads, `_rules`); day ‖
cooldown ‖ the reply's reads (template, aliases, blocks: made ahead, `_read_ahead`; the two
reservations at once, the one held given back when the other refuses, `_reserve`); the firing's
insert ‖ the job's (the insert goes with the first action when repeating it is harmless, `_repeatable`).
6 after it, in 5
(template use, counters, firing done, match counts ‖ group, claim done). The reply job, due after
the rule's delay, wakes no scheduler round (`Scheduler.wake(due=)`), and crm's consumers of its
events read the lead only (tracked users from their cached set): counted by
tests/test_automation_ops_integration.py and `decision.py --count-ops`.
   Events made more than once on a redelivery carry the same event id, so JetStream's duplicate
   window drops the copy.

`on_join(evt)` records (chat, user, joined_at) for `newMemberOnly` (24 h).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from tgm_contracts.commands.accounts import GetAccounts, GetAccountsRequest
from tgm_contracts.commands.ai import AiGenerateResponse, GenerateResponseRequest
from tgm_contracts.commands.telegram_ops import GetGroupMembers, GetGroupMembersRequest
from tgm_contracts.events_campaign import (
    PREVIEW_CHARS,
    KeywordMatched,
    OperatorNotified,
    ReplySuggested,
    TriggerFired,
)
from tgm_contracts.events_channels import ChannelMessageReceived, TelegramBotMessageReceived
from tgm_contracts.events_session import MemberJoined, MessageReceived
from tgm_contracts.models.campaign import AccountChoice, AccountPool, MessageBody
from tgm_runtime import DomainError
from tgm_runtime.routes import consumes, hears
from tgm_runtime.single_flight import SingleFlight

from ..crm.leads import LeadService
from ..messaging.clock import Clock, utc
from ..messaging.rules import Rules
from ..messaging.service import QueueService, ReplyReads
from ..messaging.templates import MAX_MESSAGE
from . import engine
from .ai_control import AiControl
from .channel import ChannelReplies, Inbound, bot_message, scope_group, scope_id, telegram_message
from .firing_store import Claim, firing_key, message_key
from .group_service import GroupService
from .keyword_service import KeywordSetService
from .matcher import Hit
from .monitoring_service import MonitoringService
from .ports import Call, Emit, JoinsIdle
from .rule_service import TriggerRuleService, notify_text, sender_variables
from .store import AutomationStores

log = logging.getLogger("tgm.campaign.automation")

GROUP_KINDS = frozenset({"group", "supergroup", "gigagroup"})
#: How long a chat's admins (or the failure to learn them) are remembered.
ADMINS_TTL = 300.0
ADMINS_FAILED_TTL = 60.0
#: How long the fleet's own Telegram user ids are remembered.
OWN_TTL = 300.0
#: Deadline of the AI reply.
AI_TIMEOUT = 30.0
#: Deadline of the tg-session look-ups (admins, own accounts).
LOOKUP_TIMEOUT = 5.0
#: Group messages handled at once per replica. Campaign has ONE durable consumer of
#: `message-received` (`campaign_message_received`, `runtime.on_event`) that runs automation, crm,
#: history, collaboration and swarms on each event; its workers are the largest any of them asks for,
#: this. Nothing here depends on the order of events (the claims and reservations are
#: conditional writes, exact under any interleaving, as between replicas), and a message with no hit
#: costs no database write, so it need not wait behind a matching one's decision. Bounded so the
#: events in flight stay far below JetStream's ack wait.
INBOUND_WORKERS = 32
#: Message claims remembered per replica (a listener's copy arrives within seconds of the first).
CLAIMS_KEPT = 10_000
#: `newMemberOnly` and no join on record: how long the decision waits for the joins consumer to
#: record the joins published before the message (`_joined_recently`), and how often it looks.
JOINS_WAIT = 5.0
JOINS_POLL = 0.05
#: The durable of `on_join` (bootstrap asks the runtime about it for `joins_idle`).
JOINS_DURABLE = "automation_joins"


def event_id(*parts: object) -> str:
    """A deterministic event id: the same fact published again is dropped by JetStream's dedupe."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def telegram_id(value: int | str | None) -> int | None:
    """An id as the campaign events carry it: Telegram's numbers only (a Tailchat id is null there)."""
    return value if isinstance(value, int) else None


def literal(text: str) -> str:
    """Text as a template that renders to itself (the queue renders bodies: escape the syntax)."""
    return "".join("\\" + ch if ch in "{}|\\" else ch for ch in text)


StartScenario = Callable[[str, int, str | None, int, str], Awaitable[str]]
"""`await start_scenario(scenario_id, user_id, lead_id, chat_id, key)` -> the collaboration run's id:
the scenario played for that user (their lead when known; `chat_id` is the group when the scenario
names none); `key` makes it idempotent. Raises DomainError when it cannot start."""


class AutomationService:
    def __init__(
        self,
        stores: AutomationStores,
        keywords: KeywordSetService,
        groups: GroupService,
        monitoring: MonitoringService,
        triggers: TriggerRuleService,
        queue: QueueService,
        leads: LeadService,
        rules: Rules,
        call: Call,
        emit: Emit,
        clock: Clock,
        ai: AiControl,
        joins_idle: JoinsIdle | None = None,
    ) -> None:
        self.stores, self.keywords, self.groups, self.monitoring = stores, keywords, groups, monitoring
        self.triggers, self.queue, self.leads, self.rules = triggers, queue, leads, rules
        self.call, self.emit, self.clock, self.ai = call, emit, clock, ai
        self.joins_idle = joins_idle
        self._admins: dict[int, tuple[float, frozenset[int] | None]] = {}
        #: collaboration's `CollaborationService.start_for` (set by bootstrap: no import cycle)
        self.start_scenario: StartScenario | None = None
        self._own: tuple[float, frozenset[int]] | None = None
        #: the per-message look-ups through short TTL caches (the group, the monitoring state, the
        #: fleet's ids): concurrent events share one refresh instead of each making it
        self._flight = SingleFlight()
        self._claimed: dict[str, str] = {}  # message key -> the event id that claimed it here
        #: replies on Tailchat (compliance, template text, the tailchat service's send-channel-reply)
        self.channel = ChannelReplies(queue.stores, rules, call)

    # --- consumers ---------------------------------------------------------------------------------

    @consumes(MemberJoined, durable=JOINS_DURABLE)
    async def on_join(self, evt: MemberJoined) -> None:
        if evt.user is None or evt.user.user_id <= 0:
            return
        await self.stores.firings.joined(evt.chat_id, evt.user.user_id, utc(evt.joined_at.timestamp()))

    # concurrent: the inbound path is exact under any interleaving (claims, conditional reservations)
    @hears(MessageReceived, "automation_messages", max_workers=INBOUND_WORKERS)
    async def on_message(self, evt: MessageReceived) -> None:
        if evt.chat_kind not in GROUP_KINDS or evt.is_outgoing or not evt.text.strip():
            return
        if evt.sender_id is not None and evt.sender_id in await self._flight.run("own", self._own_ids):
            return
        username = evt.chat_username
        group = await self._flight.run(
            ("group", evt.chat_id, username), lambda: self.groups.by_chat(evt.chat_id, username)
        )
        if group is None or not await self._flight.run(
            ("watching", group["_id"]), lambda: self.monitoring.watching(group)
        ):
            return
        if not await self.monitoring.watched_when_written(group, evt.date):
            return  # written before monitoring started or while the group was paused, arrived late
        mkey = message_key(evt.chat_id, evt.message_id)
        owner = self._claimed.get(mkey)
        if owner is not None and owner != evt.event_id:
            return  # another listener's copy of a message this replica claimed: no query, no match
        now = utc(self.clock())
        set_ids = list(group.get("keyword_set_ids") or [])
        hits = (await self.keywords.matcher()).match(evt.text, set_ids) if set_ids else []
        if not hits:  # most messages: only the group's last message time (idempotent), no claim
            await self.groups.seen_message(group["_id"], now)
            return
        if self._claim_here(mkey, evt.event_id) != evt.event_id:
            return  # another listener's copy reached this point first in this replica
        claim = self.stores.firings.claim(evt.chat_id, evt.message_id, evt.event_id, now)
        # The decision first (the claim sent with its reads), then the counters and
        # KeywordMatched: the database serves one operation at a time, so their writes would
        # queue in front of the reply's.
        if not await self._rules(group, telegram_message(evt), hits, now, claim):
            return  # another listener's copy has it, or this event's run already finished
        await self._count(group, evt, hits, now, mkey)
        await self.stores.firings.finish(evt.chat_id, evt.message_id)

    # a bot's DMs and mentions (Tailchat apps, Telegram bot accounts): the same decision path
    # (`channel.py` says what differs)
    @hears(ChannelMessageReceived, "automation_channel_messages", max_workers=8)
    # (tg-session's class has the same event name: a durable of its own, not the shared consumer's
    # `campaign_channel_message_received`, which is the Tailchat class's)
    @consumes(TelegramBotMessageReceived, durable="automation_bot_messages", max_workers=8)
    async def on_channel_message(self, evt: ChannelMessageReceived) -> None:
        msg = bot_message(evt)
        if msg is None:
            return
        scope = scope_id(evt.app_id, evt.channel)
        scoped = [
            r
            for r in await self.triggers.active_rules()
            if r.spec.source_type == "specific" and scope in r.spec.source_group_ids
        ]
        set_ids = sorted({s for r in scoped for s in r.spec.keyword_set_ids})
        hits = (await self.keywords.matcher()).match(msg.text, set_ids) if set_ids else []
        if not hits:
            return
        now = utc(self.clock())
        if await self.channel.opted_out_now(msg, now):
            return
        assert isinstance(msg.chat_id, str) and isinstance(msg.message_id, str)
        claim = self.stores.firings.claim(msg.chat_id, msg.message_id, evt.event_id, now)
        if await self._rules(scope_group(scope, set_ids), msg, hits, now, claim):
            await self.stores.firings.finish(msg.chat_id, msg.message_id)

    def _claim_here(self, key: str, event_id: str) -> str:
        """The event that claims a message in this replica: the first to ask (kept for the newest
        `CLAIMS_KEPT` messages). The other listeners' copies, which arrive right behind it, are
        skipped without a query, and deterministically (two claims sent at once on two pooled
        connections reach the database in either order). The stored claim stays the authority
        across replicas; if the first copy fails, its redelivery (same event id) claims again, and
        the copies skipped meanwhile were never needed."""
        owner = self._claimed.setdefault(key, event_id)
        if len(self._claimed) > CLAIMS_KEPT:
            del self._claimed[next(iter(self._claimed))]
        return owner

    # --- matching ----------------------------------------------------------------------------------

    async def _count(
        self, group: Mapping[str, Any], evt: MessageReceived, hits: Sequence[Hit], at: datetime, mkey: str
    ) -> None:
        """Count the message's matches and publish them. Every run of the claim counts: the counters
        are idempotent per message key (`mkey`), so a run killed mid-count and redelivered counts once
        (and the two counters, in two collections, are written at once)."""
        await asyncio.gather(
            self.keywords.count_matches(hits, at, mkey), self.groups.seen_message(group["_id"], at, mkey)
        )
        sender = evt.sender
        seen: set[tuple[str, str | None, str]] = set()
        for h in hits:
            if (h.set_id, h.keyword_id, h.keyword) in seen:
                continue
            seen.add((h.set_id, h.keyword_id, h.keyword))
            await self.emit(
                KeywordMatched(
                    event_id=event_id("km", evt.chat_id, evt.message_id, h.set_id, h.keyword_id, h.keyword),
                    group_id=group["_id"],
                    chat_id=evt.chat_id,
                    group_title=group.get("title") or evt.chat_title,
                    message_id=evt.message_id,
                    user_id=evt.sender_id,
                    username=sender.username if sender else None,
                    first_name=sender.first_name if sender else None,
                    keyword_set_id=h.set_id,
                    keyword_id=h.keyword_id,
                    keyword=h.keyword,
                    match_type=h.match_type,
                    listener_account_id=evt.account_id,
                    message_preview=evt.text[:PREVIEW_CHARS],
                )
            )

    # --- deciding ----------------------------------------------------------------------------------

    async def _facts(
        self, group: Mapping[str, Any], msg: Inbound, rules: Sequence[engine.Rule], now: datetime
    ) -> tuple[engine.Facts, str | None]:
        """The engine's facts, and the sender's lead id (read once for the decision and the actions)."""
        user_id = msg.sender_id
        tg_user = msg.telegram_user  # leads, admins and joins are Telegram's (a Tailchat sender has none)
        chat = msg.chat_id if isinstance(msg.chat_id, int) else None
        lead = await self.leads.find_for_user(tg_user, msg.username) if tg_user is not None else None
        is_admin: bool | None = None
        if tg_user is not None and chat is not None and any(r.spec.conditions.exclude_admin for r in rules):
            admins = await self._group_admins(chat, msg.account_id)
            is_admin = None if admins is None else tg_user in admins
        is_new: bool | None = None
        if tg_user is not None and chat is not None and any(r.spec.conditions.new_member_only for r in rules):
            is_new = await self._joined_recently(chat, tg_user, now)
        facts = engine.Facts(
            text=msg.text,
            at=now,
            group_id=group["_id"],
            user_id=user_id,
            username=msg.username,
            first_name=msg.first_name,
            is_admin=is_admin,
            is_new_member=is_new,
            intent_score=lead.intent_score if lead else None,
            lead_stage=lead.stage.value if lead else None,
        )
        return facts, lead.id if lead else None

    async def _joined_recently(self, chat: int, user: int, now: datetime) -> bool:
        """Whether `user` joined `chat` in the last 24 h, counting joins published before the message.

        Decision (CI, session 18: a member who joined and said hello at once was judged "not a new
        member"): tg-session publishes a member's join before the message they post next (Telegram
        orders the service message first), but campaign hears joins on a consumer of their own
        (`on_join`), so the message's decision can read the joins collection before that write.
        When no join is on record, the decision waits (at most `JOINS_WAIT`) until the joins consumer
        has nothing pending or in work (`joins_idle`), then reads again. Only these messages wait: a
        newMemberOnly rule matched them and the sender has no join on record, mostly old members."""
        since = now - timedelta(seconds=engine.NEW_MEMBER_SECONDS)
        joined = await self.stores.firings.joined_since(chat, user, since)
        if joined or self.joins_idle is None:
            return joined
        deadline = time.monotonic() + JOINS_WAIT
        idle = await self.joins_idle()
        while idle is False and time.monotonic() < deadline:  # a remote state: looked at, not awaited
            await asyncio.sleep(JOINS_POLL)
            idle = await self.joins_idle()
        if idle is None:
            return False  # the consumer's state is unknown: the join on record is all there is
        return await self.stores.firings.joined_since(chat, user, since)

    async def _rules(
        self,
        group: Mapping[str, Any],
        msg: Inbound,
        hits: Sequence[Hit],
        now: datetime,
        claim: Awaitable[Claim],
    ) -> bool:
        """Claim the message, decide and act; False when the claim is not this event's to run
        (`taken` by another listener's copy, or `done`).

        The claim (`FiringStore.claim`, awaited here) goes to the database together with the
        decision's reads (the sender's lead, the rules' day counts and cooldowns): they are reads,
        harmless when the claim turns out to be another copy's, and one round trip instead of two.
        Its first run (`mine`): no firing of this message exists yet (only the claim's owner opens
        firings), so none is looked up. A later run (`again`, a redelivery) reads the firings first
        and then the facts and states again, for the rules it resumes too."""
        hit_sets = {h.set_id for h in hits}
        rules = [r for r in await self.triggers.active_rules() if hit_sets & set(r.spec.keyword_set_ids)]
        if msg.channel != "telegram":  # only rules naming the app as a source (`channel.scope_id`)
            rules = [r for r in rules if r.spec.source_type == "specific"]
        settings = await self.triggers.settings()
        days = {r.id: engine.local_day(now, settings) for r in rules}
        if rules:
            claimed, (facts, lead_id), states = await asyncio.gather(
                claim, self._facts(group, msg, rules, now), self.stores.firings.states(days, msg.sender_id)
            )
        else:
            claimed = await claim
        if claimed in ("taken", "done"):
            return False
        first = claimed == "mine"
        existing = {} if first else await self.stores.firings.of_message(msg.chat_id, msg.message_id)
        # a rule that already fired on this message (a redelivery) is resumed even if since deactivated
        known = {r.id for r in rules}
        resumed = False
        for rule_id, doc in existing.items():
            if rule_id not in known and doc.get("state") in ("pending", "fired", "done"):
                stored = await self.stores.rules.get(rule_id)
                if stored is not None:
                    rules.append(engine.rule_of(stored))
                    resumed = True
        if not rules:
            return True
        if resumed:
            days = {r.id: engine.local_day(now, settings) for r in rules}
            (facts, lead_id), states = await asyncio.gather(
                self._facts(group, msg, rules, now), self.stores.firings.states(days, msg.sender_id)
            )
        gate = engine.Exclusivity()
        for rule in engine.ordered(rules):
            key = firing_key(rule.id, msg.chat_id, msg.message_id)
            ev = engine.evaluate(rule, facts, hits, states[rule.id], settings, engine_rng(key))
            prior = existing.get(rule.id)
            state = (prior or {}).get("state")
            if state in ("fired", "done"):
                gate.fired(ev)
                if state == "fired":
                    await self._act(prior or {}, rule, ev, facts, group, msg, lead_id)
                continue
            if state == "blocked" or not ev.matched:
                continue
            # On a redelivery the reservations this firing made before a crash (a firing is written
            # after them; `pending` is an earlier version's firing opened before them) make the
            # limits it reads partly its own: the reservation decides again (it knows its own key).
            limited = ev.outcome in ("cooldown", "daily_limit") and not first
            if not ev.eligible and not limited:
                await self._fired_event(
                    rule, facts, group, msg, ev.outcome, ev.reason, key, keyword=ev.keyword
                )
                continue
            if gate.blocks(ev):
                await self._fired_event(
                    rule, facts, group, msg, "condition_failed", ev.reason, key, keyword=ev.keyword
                )
                continue
            # the reply's reads beside the reservations (reads: harmless when the firing is refused)
            reserved, ahead = await asyncio.gather(
                self._reserve(rule, ev, facts, group, msg, key, now, prior, states[rule.id], fresh=first),
                self._read_ahead(rule, msg, lead_id),
            )
            if reserved is None:
                continue
            gate.fired(ev)
            await self._act(
                reserved[0], rule, ev, facts, group, msg, lead_id, opening=reserved[1], ahead=ahead
            )
        return True

    async def _reserve(
        self,
        rule: engine.Rule,
        ev: engine.Evaluation,
        facts: engine.Facts,
        group: Mapping[str, Any],
        msg: Inbound,
        key: str,
        now: datetime,
        prior: Mapping[str, Any] | None,
        seen: engine.RuleState,
        *,
        fresh: bool,
    ) -> tuple[dict[str, Any], Awaitable[tuple[dict[str, Any], bool]] | None] | None:
        """Hold the day's count and the user's cooldown (both at once), then write the firing:
        `fired` (returned) or `blocked` (None, reported).
        `fresh`: the claim's first run, so no reservation of this firing can exist yet (the day's
        look-up for its key is skipped). `seen`: the rule's state the decision read, so that a
        cooldown held while the day refuses is given back as it was (`FiringStore.release_user`;
        the day's count, when the cooldown refuses, likewise). A crash between the writes leaves
        reservations keyed by this firing, which the redelivery holds again.

        A new `fired` firing is returned with its insert not yet sent (`FiringStore.open_new`):
        `_act` sends it together with the first action when running that action again is harmless
        (`_repeatable`: the reply's job is keyed by the firing), so the firing's write does not
        stand between the reservations and the reply job. The reservations gate the reply, and
        they are written first; the firing records what was done and is written before any
        action's record or the firing's end. A crash after the job and before the firing's
        insert is the crash this path survives anyway: the redelivery finds its own
        reservations, writes the firing and queues the reply again, which answers the same job."""
        firings = self.stores.firings
        assert facts.user_id is not None  # the engine's `sender` check
        day = (prior or {}).get("day") or ev.day
        spec = rule.spec
        outcome: str | None = None
        # both at once (one round trip); the one held is given back when the other refuses
        day_held, user_held = await asyncio.gather(
            firings.reserve_day(rule.id, day, key, spec.daily_limit, now, fresh=fresh),
            firings.reserve_user(
                rule.id, facts.user_id, key, now, ev.cooldown, spec.conditions.once_per_user, seen=seen
            ),
        )
        if not day_held:
            outcome = "daily_limit"
            if user_held:
                await firings.release_user(rule.id, facts.user_id, key, seen)
        elif not user_held:
            await firings.release_day(rule.id, day, key)
            outcome = "cooldown"
        doc = {
            "_id": key,
            "rule_id": rule.id,
            "chat_id": msg.chat_id,
            "message_id": msg.message_id,
            "group_id": group["_id"],
            "user_id": facts.user_id,
            "account_id": msg.account_id,
            "keyword": ev.keyword,
            "keyword_set_id": ev.hits[0].set_id if ev.hits else None,
            "day": day,
            "delay": int((prior or {}).get("delay", ev.delay)),
            "done_actions": [],
            "job_ids": [],
            "errors": [],
            "at": (prior or {}).get("at") or now,
        }
        if outcome is not None:
            reason = (
                f"daily_limit: {spec.daily_limit} firings today ({day}) already"
                if outcome == "daily_limit"
                else (
                    "once_per_user: already fired for this user"
                    if spec.conditions.once_per_user
                    else f"cooldown: fired for this user less than {ev.cooldown} s ago"
                )
            )
            blocked = {"state": "blocked", "outcome": outcome, "detail": reason}
            if prior is not None:
                await firings.move(key, ["pending"], blocked, base=prior)
            else:
                await firings.open_new({**doc, **blocked})
            await self._fired_event(rule, facts, group, msg, outcome, reason, key, keyword=ev.keyword)
            return None
        moved = {"state": "fired", "fired_at": now, "not_before": now + timedelta(seconds=doc["delay"])}
        if prior is None:  # counted by `_act` when done (a resumed firing is counted too)
            fresh_doc = {**doc, **moved}
            return fresh_doc, firings.open_new(fresh_doc)
        fired = await firings.move(key, ["pending"], moved, base=prior)  # an earlier version's pending firing
        if fired is None:  # written by a concurrent copy of this event: take what it did
            fired = await firings.get(key)
            if fired is None or fired.get("state") != "fired":
                return None
        return fired, None

    # --- acting ------------------------------------------------------------------------------------

    async def _act(
        self,
        firing: Mapping[str, Any],
        rule: engine.Rule,
        ev: engine.Evaluation,
        facts: engine.Facts,
        group: Mapping[str, Any],
        msg: Inbound,
        sender_lead: str | None = None,
        opening: Awaitable[tuple[dict[str, Any], bool]] | None = None,
        ahead: ReplyReads | None = None,
    ) -> None:
        """Run the fired rule's actions not done yet; `sender_lead` the sender's lead id as the
        decision read it (the firing's own lead id first). `opening`: the new firing's insert
        (`_reserve`), sent with the first action when that one is `_repeatable`, else before it;
        when a concurrent copy of this event wrote the firing first, its firing is acted on as it
        stands (this copy's first action, keyed like every action, changed nothing it had not).
        `ahead`: `_read_ahead`'s reads, for the first template reply."""
        key = firing["_id"]

        done = set(firing.get("done_actions") or [])
        lead_id: str | None = firing.get("lead_id") or sender_lead
        job_ids: list[str] = list(firing.get("job_ids") or [])
        errors: list[str] = list(firing.get("errors") or [])
        keyword = firing.get("keyword") or ev.keyword
        actions = list(enumerate(rule.spec.actions))
        order = [a for a in actions if a[1].type == "add_lead"] + [
            a for a in actions if a[1].type != "add_lead"
        ]

        async def perform(index: int, action: Any) -> tuple[dict[str, Any], str | None]:
            """One action: what it produced (recorded on the firing) and its error, if any."""
            nonlocal lead_id, ahead
            fields: dict[str, Any] = {}
            error: str | None = None
            try:
                if action.type in ("add_lead", "start_scenario") and msg.channel != "telegram":
                    error = (
                        f"{action.type}: a bot's user is not a lead (leads are the fleet's Telegram contacts)"
                    )
                elif action.type == "add_lead":
                    assert msg.telegram_user is not None
                    lead, _ = await self.leads.capture(
                        user_id=msg.telegram_user,
                        username=facts.username,
                        first_name=facts.first_name,
                        last_name=msg.last_name,
                        group_id=group["_id"],
                        group_title=group.get("title") or msg.chat_title,
                        chat_id=telegram_id(msg.chat_id),
                        keyword=keyword,
                        keyword_set_id=firing.get("keyword_set_id"),
                        intent_score=facts.intent_score,
                        stage=action.stage,
                        tags=action.tags,
                        by=f"trigger:{rule.id}",
                    )
                    lead_id = fields["lead_id"] = lead.id
                elif action.type == "reply_template":
                    body = MessageBody(
                        template_id=action.template_id,
                        variables=sender_variables(
                            first_name=facts.first_name,
                            username=facts.username,
                            last_name=msg.last_name,
                            group_title=group.get("title") or msg.chat_title,
                            keyword=keyword,
                        ),
                    )
                    if msg.bot is not None:
                        text = await self.channel.template_text(action.template_id, body.variables, key)
                        sent = await self.channel.send(msg, action.target, text, action.markup, key)
                        job_ids.append(sent)
                    else:
                        job_ids.append(
                            await self._queue_reply(
                                firing, rule, action.target, body, lead_id, group, msg, None, ahead
                            )
                        )
                        ahead = None  # the reads of this reply only
                    fields["job_ids"] = job_ids
                elif action.type == "ai_reply":
                    error = await self._ai(firing, rule, action, facts, group, msg, lead_id, job_ids, fields)
                elif action.type == "notify":
                    text = notify_text(action.message, rule.name, facts, keyword, group.get("title"))
                    await self.emit(
                        OperatorNotified(
                            event_id=event_id("notify", key, index),
                            channel=action.channel,
                            title=f"Trigger {rule.name}"[:200],
                            message=text,
                            rule_id=rule.id,
                            group_id=group["_id"],
                            user_id=telegram_id(facts.user_id),
                            lead_id=lead_id,
                        )
                    )
                elif action.type == "start_scenario":
                    error = await self._start_scenario(action, facts, lead_id, msg, key, index, fields)
            except DomainError as exc:  # a refusal of this action (template deleted, bad sender, ...)
                error = f"{action.type}: {exc.code.value}: {exc.message}"
            return fields, error

        async def run() -> dict[str, Any] | None:
            """The actions; the stored firing instead when a concurrent copy of this event wrote it
            first (acted on in its place), else None."""
            insert = opening
            for index, action in order:
                if index in done:
                    continue
                result: tuple[dict[str, Any], str | None] | None = None
                if insert is not None:
                    if self._repeatable(action, msg):
                        (stored, created), result = await asyncio.gather(insert, perform(index, action))
                    else:
                        stored, created = await insert
                    insert = None
                    if not created:
                        return stored
                fields, error = result if result is not None else await perform(index, action)
                if error is not None:
                    errors.append(error)
                if index == last:  # recorded by the write that finishes the firing
                    final.update(fields)
                    final_index[0] = index
                    continue
                await self.stores.firings.action_done(key, index, fields, error)
            if insert is not None:  # no action left to run (none at all)
                stored, created = await insert
                if not created:
                    return stored
            return None

        last = next((i for i, _ in reversed(order) if i not in done), None)
        final: dict[str, Any] = {}
        final_index: list[int | None] = [None]
        other = await run()
        if other is not None:  # written by a concurrent copy of this event: take what it did
            if other.get("state") == "fired":
                await self._act(other, rule, ev, facts, group, msg, sender_lead)
            return
        success = not errors
        # Counted before the firing is finished: a crash between the two resumes the firing (its
        # last action runs again, idempotent like every action) and the count, once per key, holds.
        await self.stores.rules.count_firing(
            rule.id, key, firing.get("fired_at") or utc(self.clock()), success
        )
        final.update(
            {
                "outcome": "fired" if success else "error",
                "lead_id": lead_id,
                "errors": errors,
                "job_ids": job_ids,
            }
        )
        if not await self.stores.firings.done(key, final, final_index[0]):
            return  # finished by a concurrent copy of this event
        await self._fired_event(
            rule,
            facts,
            group,
            msg,
            "fired" if success else "error",
            "; ".join(errors)[:1000] if errors else None,
            key,
            keyword=keyword,
            lead_id=lead_id,
            job_ids=job_ids,
            actions=[a.type for _, a in order],
        )

    @staticmethod
    def _repeatable(action: Any, msg: Inbound) -> bool:
        """Running the action a second time for the same firing changes nothing (so it may run
        beside the firing's insert): a Telegram reply (its job is keyed by the firing), a lead's
        capture (one lead per user), a notification (its event id is the firing's). Not an AI reply
        (a second generation) nor a scenario or a bot's reply (other services' work)."""
        if action.type == "reply_template":
            return msg.bot is None
        return action.type in ("add_lead", "notify")

    async def _sender(
        self, rule: engine.Rule, group: Mapping[str, Any], msg: Inbound, target: str
    ) -> AccountChoice:
        spec = rule.spec
        if spec.sender_type == "listener":
            return AccountChoice(account_id=msg.account_id)
        if spec.sender_type == "specific":
            ids = list(dict.fromkeys(spec.sender_account_ids))
            return (
                AccountChoice(account_id=ids[0])
                if len(ids) == 1
                else AccountChoice(pool=AccountPool(account_ids=ids))
            )
        if target == "group_reply":
            return AccountChoice()  # a group job's pool is the chat's healthy members
        members = list(dict.fromkeys([*(group.get("member_account_ids") or []), msg.account_id]))
        return AccountChoice(pool=AccountPool(account_ids=members))

    async def _queue_reply(
        self,
        firing: Mapping[str, Any],
        rule: engine.Rule,
        target: str,
        body: MessageBody,
        lead_id: str | None,
        group: Mapping[str, Any],
        msg: Inbound,
        account_id: str | None,
        reads: ReplyReads | None = None,
    ) -> str:
        choice = (
            AccountChoice(account_id=account_id)
            if account_id
            else await self._sender(rule, group, msg, target)
        )
        group_reply = target == "group_reply"
        chat, message = msg.telegram_ids()
        assert msg.telegram_user is not None
        result = await self.queue.reply(
            peer=chat if group_reply else msg.telegram_user,
            key=f"trg:{rule.id}:{chat}:{message}",
            body=body,
            choice=choice,
            not_before=firing.get("not_before"),
            reply_to=message if group_reply else None,
            lead_id=lead_id,
            reads=reads,
        )
        return result.job_id

    async def _read_ahead(self, rule: engine.Rule, msg: Inbound, lead_id: str | None) -> ReplyReads | None:
        """The reads of the rule's first template reply to a Telegram message (`QueueService.read_reply`),
        made beside the reservations: one round trip less between the message and its reply job
        (bench/automation/decision.py). None when the rule sends no such reply or a read failed (the
        reply then reads again, and reports what it finds)."""
        action = next((a for a in rule.spec.actions if a.type == "reply_template"), None)
        if action is None or msg.bot is not None or msg.telegram_user is None:
            return None
        chat, _ = msg.telegram_ids()
        peer = chat if action.target == "group_reply" else msg.telegram_user
        try:
            return await self.queue.read_reply(
                peer=peer, body=MessageBody(template_id=action.template_id), lead_id=lead_id
            )
        except Exception:
            return None

    async def _ai_account(self, rule: engine.Rule, msg: Inbound) -> str:
        """The account an AI reply is written for (and sent by: its persona and memory)."""
        spec = rule.spec
        if spec.sender_type == "listener" or msg.channel != "telegram":
            return msg.account_id if msg.bot is None else scope_id(msg.bot.app_id, msg.bot.channel)
        if spec.sender_type == "specific":
            healthy = await self.queue.directory.pool({"account_ids": list(spec.sender_account_ids)}, None)
            return healthy[0] if healthy else spec.sender_account_ids[0]
        healthy = await self.queue.directory.pool(None, msg.telegram_ids()[0])
        return healthy[0] if healthy else msg.account_id

    async def _start_scenario(
        self,
        action: Any,
        facts: engine.Facts,
        lead_id: str | None,
        msg: Inbound,
        key: str,
        index: int,
        fields: dict[str, Any],
    ) -> str | None:
        """Run a `start_scenario`: the scenario for the sender, once per firing (a redelivered event
        or a resumed firing answers the run already started); the error text when it could not."""
        if self.start_scenario is None or msg.telegram_user is None:
            return "start_scenario: collaboration runs are not available in this process"
        ident = "trg-" + hashlib.sha256(f"{key}|{index}".encode()).hexdigest()[:32]
        fields["run_id"] = await self.start_scenario(
            action.scenario_id, msg.telegram_user, lead_id, msg.telegram_ids()[0], ident
        )
        return None

    async def _ai(
        self,
        firing: Mapping[str, Any],
        rule: engine.Rule,
        action: Any,
        facts: engine.Facts,
        group: Mapping[str, Any],
        msg: Inbound,
        lead_id: str | None,
        job_ids: list[str],
        fields: dict[str, Any],
    ) -> str | None:
        """Run an `ai_reply`; the error text when it could not."""
        assert facts.user_id is not None
        account = await self._ai_account(rule, msg)
        req = GenerateResponseRequest(
            account_id=account,
            user_id=str(facts.user_id),
            message=msg.text[:8000],
            strategy_id=action.strategy_id,
            system_prompt=action.prompt,
            user_name=facts.first_name or facts.username,
            seed=int(hashlib.sha256(firing["_id"].encode()).hexdigest()[:8], 16),
        )
        try:
            reply = await self.call(AiGenerateResponse, req, AI_TIMEOUT)
        except DomainError as exc:
            return f"ai_reply: the ai service could not answer ({exc.code.value}: {exc.message})"
        except ValidationError:  # an answer that is not a reply will not become one on a retry
            return "ai_reply: the ai service answered something that is not a reply"
        text = (reply.text or "").strip()[:MAX_MESSAGE]
        if not text:
            return "ai_reply: the ai service answered an empty reply"
        # Sent only in `full` mode, with the fleet's AI auto-reply on (`ai.autoReply`, what one-click
        # switches) and no handoff asked for; otherwise a suggestion for an operator.
        if action.mode == "semi" or reply.handoff or not await self.ai.auto_reply_switch():
            await self.emit(
                ReplySuggested(
                    event_id=event_id("suggest", firing["_id"]),
                    rule_id=rule.id,
                    group_id=group["_id"],
                    chat_id=telegram_id(msg.chat_id),
                    message_id=telegram_id(msg.message_id),
                    user_id=telegram_id(facts.user_id),
                    lead_id=lead_id,
                    account_id=account,
                    text=text,
                    confidence=reply.confidence,
                )
            )
            return None
        if msg.bot is not None:
            job = await self.channel.send(msg, action.target, text, action.markup, firing["_id"])
        else:
            body = MessageBody(text=literal(text))
            job = await self._queue_reply(firing, rule, action.target, body, lead_id, group, msg, account)
        job_ids.append(job)
        fields["job_ids"] = job_ids
        return None

    async def _fired_event(
        self,
        rule: engine.Rule,
        facts: engine.Facts,
        group: Mapping[str, Any],
        msg: Inbound,
        outcome: str,
        detail: str | None,
        key: str,
        *,
        keyword: str | None,
        lead_id: str | None = None,
        job_ids: Sequence[str] = (),
        actions: Sequence[str] = (),
    ) -> None:
        await self.emit(
            TriggerFired(
                event_id=event_id("fired", key, outcome),
                rule_id=rule.id,
                rule_name=rule.name,
                group_id=group["_id"],
                user_id=telegram_id(facts.user_id),
                lead_id=lead_id,
                keyword=keyword,
                actions=list(actions),
                job_ids=list(job_ids),
                outcome=outcome,
                detail=detail[:1000] if detail else None,
            )
        )

    # --- tg-session look-ups ------------------------------------------------------------------------

    async def _group_admins(self, chat_id: int, account_id: str) -> frozenset[int] | None:
        """The chat's admins' user ids (cached), or None when tg-session cannot say."""
        now = time.monotonic()
        hit = self._admins.get(chat_id)
        if hit is not None and now - hit[0] < (ADMINS_TTL if hit[1] is not None else ADMINS_FAILED_TTL):
            return hit[1]
        value: frozenset[int] | None
        try:
            page = await self.call(
                GetGroupMembers,
                GetGroupMembersRequest(account_id=account_id, group=chat_id, filter="admins", limit=200),
                LOOKUP_TIMEOUT,
            )
            value = frozenset(m.user_id for m in page.items)
        except DomainError as exc:
            log.info("admins of chat %s unknown (%s: %s)", chat_id, exc.code.value, exc.message)
            value = None
        self._admins[chat_id] = (now, value)
        return value

    async def _own_ids(self) -> frozenset[int]:
        """The fleet accounts' own Telegram user ids (cached; empty when tg-session cannot say)."""
        now = time.monotonic()
        if self._own is not None and now - self._own[0] < OWN_TTL:
            return self._own[1]
        try:
            page = await self.call(GetAccounts, GetAccountsRequest(limit=500), LOOKUP_TIMEOUT)
            ids = frozenset(a.profile.telegram_id for a in page.items if a.profile.telegram_id)
        except DomainError as exc:
            log.info("fleet accounts unknown (%s); own messages not filtered for now", exc.code.value)
            ids = self._own[1] if self._own is not None else frozenset()
            self._own = (now - OWN_TTL + 30, ids)
            return ids
        self._own = (now, ids)
        return ids


def engine_rng(key: str) -> random.Random:
    """The firing's own generator: a redelivered message draws the same delay."""
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
