"""Swarms: several role accounts taking turns in one group's conversation, in persona, for a while.

`start-swarm` resolves the group (a monitored group's chat id, a numeric chat id, or a username or
invite resolved by tg-session through a role account), checks the roles (each active, bound to its
own fleet account) and stores the swarm with `active_chat` set: a unique index makes a second
running swarm in the same chat a CONFLICT whichever replica starts it. The chats of running swarms
are published to tg-session through `MonitoringService.also_watch` (monitoring on or not), and
`republish()` runs at every start and stop.

`on_message(evt)` (consumer `swarm_messages`), for a group message of a running swarm's chat:

1. **Claim** the message (`swarm_claims`, `<chat>:<message>`): every role account in the group
   publishes its own copy of each message, and two campaign replicas may process two copies at
   once; the first copy's event owns the message, only it (or its redelivery) goes on.
2. **Decide** with `turns.decide` (pure; the order of the checks and the outcomes are in
   `turns.py`) on the swarm's stored state, and write the decision with a compare-and-set on the
   swarm's revision (`SwarmStore.take_turn`): a replica that decided on another message in the
   meantime makes it fail, and the decision is made again on the new state, so caps and intervals
   hold across replicas. A redelivered message finds its decision in the state and keeps it.
   Facts it needs: the fleet's own Telegram ids and usernames (tg-session's `get-accounts`, cached
   `FLEET_TTL`), which role accounts are usable members of the chat (messaging's account
   directory, `pick-accounts`), and the keywords of the trigger's keyword sets (automation's
   matcher).
3. **Answer** (the chosen account): ai's `ai-generate-response` for that account, with the role's
   persona as the system prompt (name, type, personality, speaking style, traits, background,
   responsibilities, length, emoji frequency; the role's own prompt unless it uses the fleet's AI)
   and the swarm's (else the role's) strategy, so the answer is grounded in the strategy's
   knowledge; then one group reply job through messaging's `QueueService.reply` (`reply_to` the
   message, the chosen account, `notBefore` the typing time at the role's typing speed, at most
   `TYPING_MAX`), keyed `swm:<swarm>:<chat>:<message>`: a redelivery or a racing replica gets the
   same job back. The queue's pacing, quiet hours and compliance apply as to any job. The AI
   failing or asking for a human (`ai_failed`, `ai_handoff`), or the queue refusing (`refused`), is
   recorded on the message and in the reasons; the turn stays spent (the swarm gets quieter, not
   louder). A crash between the job and the counter loses that one count, never sends twice.

`tick()` (every second, the replica holding the `swarm-runner` lease) stops swarms whose end
(`until`, or `durationMinutes` after the start) has come. `stop-swarm` stops one (idempotent: a
stopped swarm answers as it is); an answer already queued (at most its typing time) is still sent.

`get-swarm-status` shows, per swarm, what it answered per account, the reason counts of what it
left alone, and its last decisions (newest first, with the job of each answer).

`mode: script` plays the script's lines in order as the swarm's answers (line n is the n-th
answer — its ordinal is taken with the turn, so a redelivery says the same line — spoken by the
account whose turn it is, not by the line's slot: a swarm has roles, not slot bindings; `text` and
`template` lines rendered by the queue with the sender's variables, `{first_name}` …;
`ai_generate` lines through the AI with the line's prompt added to the persona); after the last
line the swarm stops (`script_finished`). Stage triggers and delays are the collaboration runs'
business and do not apply here: the swarm's own triggers and pacing decide when a line is said.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from tgm_contracts.base import Page
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.commands.accounts import GetAccounts, GetAccountsRequest
from tgm_contracts.commands.ai import AiGenerateResponse, GenerateResponseRequest
from tgm_contracts.events_campaign import SwarmStateChanged
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.campaign import AccountChoice, MessageBody, PeerView, SwarmStatus
from tgm_contracts.rpc_session import ResolvePeer, ResolvePeerRequest
from tgm_runtime import Conflict, DomainError, Invalid, NotFound, Unavailable
from tgm_runtime.routes import answers, hears

from ..automation.rule_service import GeneralZone, sender_variables
from ..automation.service import GROUP_KINDS, literal
from ..messaging.clock import aware, utc
from ..messaging.lookup_cache import Fresh
from ..messaging.templates import MAX_MESSAGE
from . import turns
from .deps import Collaborators, UsesCollaborators

log = logging.getLogger("tgm.campaign.collaboration.swarms")

LEASE = "swarm-runner"
LEASE_SECONDS = 10.0
#: How long the fleet's Telegram ids and usernames are remembered (and after a failure).
FLEET_TTL = 300.0
FLEET_FAILED_TTL = 30.0
#: How long the running swarms' chats are remembered by the consumer (a start or stop on this
#: replica forgets them at once).
RUNNING_TTL = 1.0
AI_TIMEOUT = 30.0
LOOKUP_TIMEOUT = 5.0
#: Longest typing time before an answer.
TYPING_MAX = 15.0
#: Compare-and-set attempts on the swarm's state before the message is left to its redelivery.
TURN_ATTEMPTS = 25
DECISIONS_SHOWN = 20
STATUS_LIMIT = 100


def ends_at(started: datetime, until: datetime | None, minutes: int | None) -> datetime | None:
    """When a swarm stops by itself: the earlier of `until` and start + duration."""
    ends = [t for t in (until, started + timedelta(minutes=minutes) if minutes else None) if t is not None]
    return min(ends) if ends else None


def persona_prompt(role: cmd.RoleView) -> str:
    """The role's persona as instructions for the AI (appended to the strategy's own prompt)."""
    p, ai = role.personality, role.ai_config
    kind = role.type.replace("_", " ")
    lines = [
        f"You are {role.name}, a {kind} taking part in a Telegram group chat. Stay in character; "
        "never say you are an AI or part of a team.",
    ]
    if p.description:
        lines.append(f"Personality: {p.description}")
    if p.speaking_style:
        lines.append(f"Speaking style: {p.speaking_style}")
    if p.traits:
        lines.append("Traits: " + ", ".join(p.traits))
    if p.background:
        lines.append(f"Background: {p.background}")
    if role.responsibilities:
        lines.append("In this chat you: " + "; ".join(role.responsibilities))
    length = {"short": "one or two sentences", "medium": "a short paragraph", "long": "a few paragraphs"}
    lines.append(f"Answer in {length[ai.response_length]}, as a chat message.")
    emoji = {
        "none": "Do not use emoji.",
        "low": "Use an emoji rarely.",
        "medium": "Use an emoji now and then.",
        "high": "Use emoji freely.",
    }
    lines.append(emoji[ai.emoji_frequency])
    if not ai.use_global_ai and ai.custom_prompt:
        lines.append(ai.custom_prompt)
    return "\n".join(lines)[:4000]


def typing_seconds(text: str, chars_per_minute: int) -> float:
    return min(TYPING_MAX, len(text) * 60.0 / max(1, chars_per_minute))


class SwarmService(UsesCollaborators):
    def __init__(self, deps: Collaborators, zone: GeneralZone | None = None) -> None:
        super().__init__(deps)
        # activeHours without a zone are general.timezone
        self.zone = zone
        # groups (and their keyword sets' matcher) are automation's: reached through monitoring's
        self.groups = self.monitoring.groups
        self.owner = "swarms-" + uuid.uuid4().hex[:12]
        self._fleet: tuple[float, dict[str, tuple[int | None, str | None]]] | None = None
        #: chat -> id of the swarm running there, for the hot path (read at most every `RUNNING_TTL` s)
        self._running = Fresh(self._read_running, RUNNING_TTL)
        self.monitoring.also_watch(self.watched_chats)

    async def watched_chats(self) -> set[int]:
        """The chats of running swarms (tg-session publishes their messages)."""
        return set(await self.stores.swarms.running_chats())

    # --- commands ---------------------------------------------------------------------------------

    @answers(cmd.StartSwarm, principal=True)
    async def start(self, req: cmd.SwarmSpec, by: str | None) -> cmd.SwarmView:
        now = utc(self.clock())
        if req.until is not None and req.until <= now:
            raise Invalid("until is in the past", {"field": "until"})
        roles = [await self.library.get_role(role_id) for role_id in req.role_ids]
        accounts: list[str] = []
        for role in roles:
            if not role.is_active:
                raise Invalid(f"role {role.id} ({role.name}) is not active", {"field": "roleIds"})
            if role.bound_account_id is None:
                raise Invalid(f"role {role.id} ({role.name}) has no account bound", {"field": "roleIds"})
            if role.bound_account_id in accounts:
                raise Invalid(
                    f"roles share account {role.bound_account_id}: each role must speak from its own",
                    {"field": "roleIds"},
                )
            accounts.append(role.bound_account_id)
        missing = await self.queue.directory.missing(accounts)
        if missing:
            raise NotFound(f"account(s) {', '.join(missing)} are not in the fleet", {"missing": missing})
        if req.triggers.keyword_set_ids:
            unknown = await self.groups.keywords.missing(req.triggers.keyword_set_ids)
            if unknown:
                raise NotFound(f"keyword set(s) {', '.join(unknown)} do not exist", {"missing": unknown})
        if req.mode == "script":
            assert req.script_id is not None  # the contract's validator
            await self.library.get_script(req.script_id)
        chat_id, view, group_id = await self._resolve(req, accounts)
        existing = await self.stores.swarms.running_in(chat_id)
        if existing is not None:
            raise Conflict(
                f"swarm {existing['_id']} already runs in chat {chat_id}", {"swarmId": existing["_id"]}
            )
        spec = req.model_dump(by_alias=False)
        doc = {
            "_id": "swm_" + uuid.uuid4().hex[:16],
            "spec": spec,
            "status": SwarmStatus.RUNNING.value,
            "active_chat": chat_id,
            "chat_id": chat_id,
            "chat_view": view.model_dump(by_alias=False),
            "group_id": group_id,
            "role_ids": list(req.role_ids),
            "script_id": req.script_id,
            "participants": [
                {
                    "slot": role.type,
                    "role_id": role.id,
                    "role_name": role.name,
                    "account_id": role.bound_account_id,
                }
                for role in roles
            ],
            "ends_at": ends_at(now, req.until, req.duration_minutes),
            "started_at": now,
            "started_by": by,
            "rev": 0,
            "turns": turns.State().doc(),
            "messages_sent": 0,
            "triggers_seen": 0,
            "stats": {"seen": 0, "answered": 0, "reasons": {}, "accounts": {}},
        }
        if not await self.stores.swarms.insert(doc):
            raced = await self.stores.swarms.running_in(chat_id)
            raise Conflict(
                f"a swarm already runs in chat {chat_id}", {"swarmId": raced["_id"] if raced else None}
            )
        self._running.clear()
        await self._republish()
        await self._state_event(doc, SwarmStatus.RUNNING)
        return await self._view(doc)

    @answers(cmd.StopSwarm, principal=True)
    async def stop(self, req: cmd.StopSwarmRequest, by: str | None) -> cmd.SwarmView:
        doc = await self.stores.swarms.get(req.swarm_id)
        if doc is None:
            raise NotFound(f"swarm {req.swarm_id} does not exist")
        stopped = await self._stop(doc, "stopped", by)
        return await self._view(stopped or doc)

    @answers(cmd.GetSwarmStatus)
    async def status(self, req: cmd.GetSwarmStatusRequest) -> Page[cmd.SwarmView]:
        statuses = [s.value for s in req.statuses] if req.statuses else None
        docs, total = await self.stores.swarms.find(req.swarm_id, req.group_id, statuses, STATUS_LIMIT)
        if req.swarm_id is not None and not docs:
            raise NotFound(f"swarm {req.swarm_id} does not exist")
        return Page[cmd.SwarmView](items=[await self._view(d) for d in docs], total=total)

    # --- the runner -------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One round: swarms whose end came stop (the replica holding the lease)."""
        now_ts = self.clock()
        now = utc(now_ts)
        if not await self.messaging.leases.acquire(LEASE, self.owner, now, utc(now_ts + LEASE_SECONDS)):
            return
        for doc in await self.stores.swarms.running():
            end = aware(doc.get("ends_at"))
            if end is not None and end <= now:
                await self._stop(doc, "ended", None)

    async def _stop(self, doc: Mapping[str, Any], reason: str, by: str | None) -> dict[str, Any] | None:
        stopped = await self.stores.swarms.stop(doc["_id"], utc(self.clock()), reason, by)
        if stopped is None:
            return None
        if reason != "script_finished":
            # stopped or ended: an answer still waiting (its typing time) is not sent; a finished
            # script's last line was just queued and goes out
            cancelled = await self.control.cancel_campaign(doc["_id"], f"swarm {reason}")
            if cancelled:
                log.info("swarm %s %s: %d waiting answers cancelled", doc["_id"], reason, cancelled)
        self._running.clear()
        await self._republish()
        await self._state_event(stopped, SwarmStatus.STOPPED)
        return stopped

    async def _republish(self) -> None:
        await self.monitoring.republish()

    # --- the consumer -----------------------------------------------------------------------------

    @hears(MessageReceived, "swarm_messages")
    async def on_message(self, evt: MessageReceived) -> None:
        """A message in a swarm's group: maybe one role account answers it (once)."""
        if evt.chat_kind not in GROUP_KINDS:
            return
        swarm_id = (await self._running.get()).get(evt.chat_id)
        if swarm_id is None:
            return
        now_ts = self.clock()
        swarms = self.stores.swarms
        claim = await swarms.claim(evt.chat_id, evt.message_id, swarm_id, evt.event_id, utc(now_ts))
        if claim is None:
            return
        found = await swarms.get(swarm_id)
        if found is None:
            return
        doc: Mapping[str, Any] = found
        if claim.get("state") == "decided":
            decision = turns.Decision(
                claim["outcome"], True, account_id=claim.get("account_id"), trigger=claim.get("trigger")
            )
            ordinal = int(claim.get("ordinal") or 0)
        else:
            got = await self._decide(doc, evt, now_ts)
            if got is None:  # stopped meanwhile
                await swarms.done(evt.chat_id, evt.message_id, {"outcome": "stopped"})
                return
            decision, ordinal, doc = got
            await swarms.decided(
                evt.chat_id,
                evt.message_id,
                {
                    "outcome": decision.outcome,
                    "account_id": decision.account_id,
                    "trigger": decision.trigger,
                    "ordinal": ordinal,
                },
            )
        if not decision.answer:
            await swarms.done(evt.chat_id, evt.message_id, {})
            return
        assert decision.account_id is not None
        await self._answer(doc, evt, decision, ordinal, now_ts)

    async def _decide(
        self, doc: Mapping[str, Any], evt: MessageReceived, now_ts: float
    ) -> tuple[turns.Decision, int, Mapping[str, Any]] | None:
        """The decision on the message, the answer's ordinal (0 for the swarm's first answer), and
        the swarm document it was taken on; None when the swarm stopped."""
        spec = doc["spec"]
        rules = turns.Rules.of(spec, await self.zone.get() if self.zone is not None else "UTC")
        fleet = await self._fleet_info()
        participants = [
            turns.Participant(p["role_id"], p["account_id"], *fleet.get(p["account_id"], (None, None)))
            for p in doc.get("participants") or []
        ]
        fleet_ids = {tid for tid, _ in fleet.values() if tid is not None}
        keyword: str | None = None
        set_ids = (spec.get("triggers") or {}).get("keyword_set_ids") or []
        if set_ids and evt.text:
            hits = (await self.groups.keywords.matcher()).match(evt.text, set_ids)
            keyword = hits[0].keyword if hits else None
        usable: set[str] | None = None
        accounts = [p.account_id for p in participants]
        pool = await self.queue.directory.pool({"account_ids": accounts}, evt.chat_id)
        if pool or self.queue.directory.last_error is None:
            usable = set(pool)
        msg = turns.Message(
            message_id=evt.message_id,
            sender_id=evt.sender_id,
            text=evt.text or "",
            at=now_ts,
            listener=evt.account_id,
            is_outgoing=evt.is_outgoing,
            mentioned=evt.mentioned,
            keyword=keyword,
            has_media=evt.media_kind is not None,
        )
        chance = turns.draw(doc["_id"], evt.message_id)
        for _ in range(TURN_ATTEMPTS):
            if "active_chat" not in doc:
                return None
            state = turns.State.of(doc.get("turns"))
            prior = state.find(evt.message_id)
            if prior is not None:  # decided already (a redelivery after a crash)
                decided = turns.Decision(prior.outcome, prior.member, prior.account_id, prior.trigger)
                return decided, prior.ordinal, doc
            decision = turns.decide(rules, participants, fleet_ids, state, msg, chance, usable)
            after = turns.apply(state, msg, decision)
            if await self.stores.swarms.take_turn(
                doc["_id"],
                int(doc.get("rev") or 0),
                evt.message_id,
                after.doc(),
                decision.outcome,
                decision.trigger is not None,
            ):
                return decision, after.answered_total - 1, doc
            fresh = await self.stores.swarms.get(doc["_id"])
            if fresh is None:
                return None
            doc = fresh
        raise Unavailable(f"swarm {doc['_id']}: its state kept changing; the message is retried")

    async def _answer(
        self,
        doc: Mapping[str, Any],
        evt: MessageReceived,
        decision: turns.Decision,
        ordinal: int,
        now_ts: float,
    ) -> None:
        swarms = self.stores.swarms
        account = decision.account_id
        assert account is not None
        participant = next((p for p in doc.get("participants") or [] if p["account_id"] == account), None)
        outcome, detail, job_id = "refused", None, None
        try:
            if participant is None:
                raise Invalid(f"account {account} is no longer in the swarm")
            role = await self.library.get_role(participant["role_id"])
            body, error = await self._body(doc, evt, role, account, ordinal)
            if body is None:
                outcome, detail = error or ("ai_failed", None)
            else:
                not_before = utc(now_ts + typing_seconds(body.text or "", role.ai_config.typing_speed))
                result = await self.queue.reply(
                    peer=evt.chat_id,
                    campaign_id=doc["_id"],  # what stop-swarm cancels
                    key=f"swm:{doc['_id']}:{evt.chat_id}:{evt.message_id}",
                    body=body,
                    choice=AccountChoice(account_id=account),
                    not_before=not_before,
                    reply_to=evt.message_id,
                )
                job_id = result.job_id
                if result.state.value in ("skipped", "failed"):
                    reason = result.reason.value if result.reason is not None else result.state.value
                    outcome, detail = "refused", f"the queue refused the answer: {reason}"
                else:
                    outcome = "answered"
        except DomainError as exc:
            outcome, detail = "refused", f"{exc.code.value}: {exc.message}"
        except ValidationError as exc:  # an answer the queue's contract refuses (too long, ...)
            outcome, detail = "refused", f"the answer is not a valid message: {exc.errors()[0]['msg']}"
        fields = {"outcome": outcome, "job_id": job_id, "detail": detail}
        if not await swarms.done(evt.chat_id, evt.message_id, fields):
            return  # a concurrent run of the same event finished it
        if outcome == "answered":
            await swarms.answered(doc["_id"], account, utc(now_ts))
            if doc["spec"].get("mode") == "script" and ordinal + 1 >= len(await self._script_lines(doc)):
                await self._stop(doc, "script_finished", None)
        else:
            await swarms.not_answered(doc["_id"], outcome, detail)

    async def _body(
        self, doc: Mapping[str, Any], evt: MessageReceived, role: cmd.RoleView, account: str, ordinal: int
    ) -> tuple[MessageBody | None, tuple[str, str | None] | None]:
        """The answer's body, or why there is none ((outcome, detail))."""
        spec = doc["spec"]
        prompt: str | None = None
        if spec.get("mode") == "script":
            lines = await self._script_lines(doc)
            line = lines[ordinal] if ordinal < len(lines) else None
            if line is None:
                return None, ("refused", "the script has no line left")
            values = sender_variables(
                first_name=evt.sender.first_name if evt.sender else None,
                username=evt.sender.username if evt.sender else None,
                last_name=evt.sender.last_name if evt.sender else None,
                group_title=evt.chat_title,
            )
            if line.type == "text":
                assert line.text is not None
                return MessageBody(text=line.text, variables=values), None
            if line.type == "template":
                return MessageBody(template_id=line.template_id, variables=values), None
            prompt = line.prompt
        system = persona_prompt(role) + (f"\n{prompt}" if prompt else "")
        sender = evt.sender
        assert evt.sender_id is not None  # turns.decide answers only a member's message
        try:
            req = GenerateResponseRequest(
                account_id=account,
                user_id=str(evt.sender_id),
                message=(evt.text or "")[:8000],
                strategy_id=spec.get("strategy_id") or role.ai_config.strategy_id,
                system_prompt=system[:4000],
                user_name=((sender.first_name or sender.username) if sender else None) or None,
                seed=int(hashlib.sha256(f"{doc['_id']}|{evt.message_id}".encode()).hexdigest()[:8], 16),
            )
            reply = await self.call(AiGenerateResponse, req, AI_TIMEOUT)
        except DomainError as exc:
            return None, ("ai_failed", f"the ai service could not answer ({exc.code.value}: {exc.message})")
        except ValidationError:  # the request (a field out of ai's bounds) or the answer
            return None, ("ai_failed", "the ai service was asked or answered something out of its contract")
        text = (reply.text or "").strip()[:MAX_MESSAGE]
        if not text:
            return None, ("ai_failed", "the ai service answered an empty reply")
        if reply.handoff:
            return None, ("ai_handoff", reply.handoff_reason or "the ai service asked for a human")
        return MessageBody(text=literal(text)), None

    async def _script_lines(self, doc: Mapping[str, Any]) -> list[cmd.ScriptLine]:
        script = await self.library.get_script(doc["spec"]["script_id"])
        return [line for stage in script.stages for line in stage.lines]

    # --- look-ups ---------------------------------------------------------------------------------

    async def _read_running(self) -> dict[int, str]:
        return {int(d["active_chat"]): str(d["_id"]) for d in await self.stores.swarms.running()}

    async def _fleet_info(self) -> dict[str, tuple[int | None, str | None]]:
        """account id -> (Telegram user id, username) of every fleet account (cached)."""
        now = time.monotonic()
        if self._fleet is not None and now - self._fleet[0] < FLEET_TTL:
            return self._fleet[1]
        try:
            page = await self.call(GetAccounts, GetAccountsRequest(limit=500), LOOKUP_TIMEOUT)
            value = {a.id: (a.profile.telegram_id, a.profile.username) for a in page.items}
        except DomainError as exc:
            log.info("fleet accounts unknown (%s); fleet senders not recognised for now", exc.code.value)
            value = self._fleet[1] if self._fleet is not None else {}
            self._fleet = (now - FLEET_TTL + FLEET_FAILED_TTL, value)
            return value
        self._fleet = (now, value)
        return value

    async def _resolve(self, req: cmd.SwarmSpec, accounts: Sequence[str]) -> tuple[int, PeerView, str | None]:
        """(chat id, the group as resolved, the monitored group's id)."""
        if req.group_id is not None:
            group = await self.groups.get(req.group_id)
            if group is None:
                raise NotFound(f"group {req.group_id} does not exist", {"field": "groupId"})
            if group.get("chat_id") is None:
                raise Invalid(
                    f"group {req.group_id} has no chat id yet: check it (start-monitoring) or give chat",
                    {"field": "groupId"},
                )
            chat_id = int(group["chat_id"])
            view = PeerView(
                kind="group", chat_id=chat_id, username=group.get("username"), title=group.get("title")
            )
            return chat_id, view, str(group["_id"])
        ref = req.chat
        assert ref is not None  # the contract's validator
        if isinstance(ref, int):
            if ref >= 0:
                raise Invalid(
                    "chat must be a group (a negative chat id, @username or invite)", {"field": "chat"}
                )
            return ref, PeerView(kind="group", chat_id=ref), None
        call = self.groups.account_call
        if call is None:
            raise Unavailable("tg-session cannot be asked to resolve the chat here")
        last: DomainError | None = None
        for account in accounts:
            try:
                peer = await call(ResolvePeer, account, ResolvePeerRequest(peer=ref), LOOKUP_TIMEOUT)
            except DomainError as exc:
                if exc.code.value == "NOT_FOUND":
                    raise NotFound(f"Telegram knows no chat {ref}", {"field": "chat"}) from None
                last = exc
                continue
            if peer.peer_id >= 0:
                raise Invalid(f"{ref} is not a group", {"field": "chat"})
            view = PeerView(kind="group", chat_id=peer.peer_id, username=peer.username, title=peer.title)
            return peer.peer_id, view, None
        assert last is not None
        raise Unavailable(f"tg-session could not resolve {ref} ({last.code.value}: {last.message})")

    # --- views and events -------------------------------------------------------------------------

    async def _view(self, doc: Mapping[str, Any]) -> cmd.SwarmView:
        stats = doc.get("stats") or {}
        accounts = stats.get("accounts") or {}
        state = turns.State.of(doc.get("turns"))
        shown = list(reversed(state.recent[-DECISIONS_SHOWN:]))
        answered = [e.message_id for e in shown if e.outcome == "answered"]
        claims = (
            await self.stores.swarms.claims_of(doc["_id"], answered, int(doc["chat_id"])) if answered else {}
        )
        decisions = []
        for e in shown:
            claim = claims.get(e.message_id) or {}
            decisions.append(
                cmd.SwarmDecision(
                    message_id=e.message_id,
                    sender_id=e.sender_id,
                    at=utc(e.at),
                    outcome=claim.get("outcome") or e.outcome,
                    trigger=e.trigger,
                    account_id=e.account_id,
                    job_id=claim.get("job_id"),
                    detail=claim.get("detail"),
                    preview=e.preview,
                )
            )
        participants = [cmd.Participant(**p) for p in doc.get("participants") or []]
        view = cmd.SwarmStats(
            messages_seen=int(stats.get("seen") or 0),
            answered=int(stats.get("answered") or 0),
            reasons={str(k): int(v) for k, v in (stats.get("reasons") or {}).items()},
            accounts=[
                cmd.SwarmAccountStats(
                    account_id=p.account_id or "",
                    role_id=p.role_id,
                    answered=int((accounts.get(p.account_id or "") or {}).get("answered") or 0),
                    last_answer_at=aware((accounts.get(p.account_id or "") or {}).get("last_at")),
                )
                for p in participants
            ],
            last_decisions=decisions,
        )
        chat = doc.get("chat_view")
        return cmd.SwarmView.model_validate(
            {
                **doc["spec"],
                "id": doc["_id"],
                "status": doc["status"],
                "chat_view": PeerView.model_validate(chat) if chat else None,
                "participants": participants,
                "messages_sent": int(doc.get("messages_sent") or 0),
                "triggers_seen": int(doc.get("triggers_seen") or 0),
                "last_message_at": aware(doc.get("last_message_at")),
                "last_error": doc.get("last_error"),
                "started_at": aware(doc["started_at"]),
                "stopped_at": aware(doc.get("stopped_at")),
                "chat_id": doc.get("chat_id"),
                "ends_at": aware(doc.get("ends_at")),
                "stop_reason": doc.get("stop_reason"),
                "stats": view,
            }
        )

    async def _state_event(self, doc: Mapping[str, Any], status: SwarmStatus) -> None:
        await self.emit(
            SwarmStateChanged(
                swarm_id=doc["_id"],
                status=status,
                group_id=doc.get("group_id"),
                messages_sent=int(doc.get("messages_sent") or 0),
                error=doc.get("stop_reason") if status is SwarmStatus.STOPPED else None,
            )
        )
