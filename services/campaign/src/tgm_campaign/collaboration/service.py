"""Collaboration runs (`CollaborationService`): start, stop and status of runs, the runner round
(`tick`) and the target's messages (`on_message`). The state machine itself is
`script_engine.py`; this is its I/O.

Decisions (the next engineer's reference):

- **Start** copies what the run needs (the script as it is now, each slot's role: account, name,
  persona, prompt, typing speed) into the run's document, so editing a script or a role later never
  changes a run in progress. A scenario must be active and under its `maxConcurrentRuns`; every
  slot that speaks must be bound to an active role with an account; the target is a user (a
  `target` peer or a lead with a user id or username) who is neither blacklisted nor opted out. An
  existing group is a numeric chat id, or an `@username` of a monitored group whose id is known
  (an invite link is refused: join first). With `idempotencyKey` the run id is a digest of the key,
  so a retried start answers the first run.
- **New group**: the run starts in `creating`; the runner makes it with tg-session's
  `create-group` from the first speaking slot's account, inviting the target and the other role
  accounts (by Telegram id, else phone). `group_attempt_at` is saved before the call; a round that
  finds it set (the service was killed mid-call) first looks for that group among the account's
  created groups (same title, made since the attempt) instead of making a second one. When the
  target could not be added and the group has an invite link, the link is sent to them privately
  (`newGroup.inviteMessage` before it), key `col:<run>:invite`. FLOOD_WAIT: tried again after it;
  another refusal fails the run.
- **Runner** (`tick`, every second, on the replica holding the `collaboration-runs` lease): runs
  that are due (`next_at`), have a line waiting to settle (`pending_job`) or a group to create. The
  engine's `step` decides; the state is saved compare-and-set on `rev` *before* the line is queued
  (the pending line, key `col:<run>:<stage>:<line>`, is in the state); then the line's text is
  made (text: the line's template text; template: the template's id, rendered by the queue; AI:
  ai's `ai-generate-response` as the role's account, with the role's prompt and persona and the
  transcript as history) and queued through messaging's `queue_message` from the role's account
  into the chat, `notBefore` = now + the typing time. Killed after the save and before the queue,
  the next round finds the pending line without its job and queues the same key again; killed after
  the queue, the same key answers the job already made. So no line is ever sent twice.
- **Compliance**: the group is the job's peer, so the queue cannot see the target: the runner
  checks the target (under every key the peer directory knows) before every line and, every
  `COMPLIANCE_SECONDS`, for every active run; blacklisted or opted out, the run stops
  (outcome `stopped`). The target writing a stop word (messaging's, `compliance.stop_words`) in
  the run's chat opts them out through messaging's compliance use case and stops the run. A
  stopped run's waiting jobs are cancelled (`cancel_campaign` with the run id as campaign id: the
  jobs carry it); a line already in flight finishes.
- **Target's messages** (`on_message`): group messages from the target in an active run's chat.
  Every account of ours in the group sees the message (one event each): the engine counts a message
  id once. Runs' chats are watched by tg-session whether monitoring is on or not
  (`MonitoringService.also_watch`, republished when a run gets or loses its chat).
- `collaboration-progress` after every change that moved the run; `get-collaboration-status`
  answers the document as the view.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from tgm_contracts import ErrorCode
from tgm_contracts.base import Page
from tgm_contracts.commands import collaboration as cmd
from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.commands.ai import AiGenerateResponse, GenerateResponseRequest
from tgm_contracts.commands.telegram_ops import (
    CreateGroup,
    CreateGroupRequest,
    GetCreatedGroups,
    GetCreatedGroupsRequest,
)
from tgm_contracts.events_campaign import CollaborationProgress, LeadStageChanged
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.models.ai import ChatTurn
from tgm_contracts.models.campaign import CollaborationStatus, PeerView, peer_key
from tgm_contracts.rpc_session import DescribeAccounts, DescribeAccountsRequest
from tgm_runtime import Conflict, DomainError, Invalid, NotFound
from tgm_runtime.routes import answers, hears

from ..crm.leads import LeadService
from ..messaging import templates
from ..messaging.clock import aware, epoch, utc
from ..messaging.compliance import reason_of
from ..messaging.compliance_service import ComplianceService
from ..messaging.lookup_cache import Fresh
from ..messaging.rules import Rules
from ..messaging.store import TERMINAL
from . import script_engine as eng
from .deps import Collaborators, UsesCollaborators

log = logging.getLogger("tgm.campaign.collaboration.runs")

LEASE = "collaboration-runs"
LEASE_SECONDS = 10.0
COMPLIANCE_SECONDS = 5.0
AI_TIMEOUT = 60.0
GROUP_TIMEOUT = 60.0
#: How long the inbound path trusts its list of the chats of active runs.
CHATS_TTL = 1.0
SAVE_TRIES = 5
MAX_TEXT = 4096


def literal(text: str) -> str:
    """Text as a template that renders to itself (the queue renders bodies: escape the syntax)."""
    return "".join("\\" + ch if ch in "{}|\\" else ch for ch in text)


def target_values(target: Mapping[str, Any]) -> dict[str, str]:
    """The template variables a run's target gives (first and last name, username), those known."""
    names = templates.recipient_values(
        target.get("first_name"), target.get("last_name"), target.get("username")
    )
    return {k: v for k, v in names.items() if v}


def run_view(doc: Mapping[str, Any]) -> cmd.CollaborationRunView:
    script = cmd.ScriptSpec.model_validate(doc["script"])
    state = eng.RunState.of(doc["state"])
    chat = doc.get("chat")
    target = doc.get("target") or {}
    nxt = doc.get("next_at")
    status = doc["status"] if doc["status"] == "creating" else state.status
    return cmd.CollaborationRunView(
        id=doc["_id"],
        scenario_id=doc.get("scenario_id"),
        script_id=doc["script_id"],
        status=CollaborationStatus(status),
        chat=PeerView(
            kind="group", chat_id=chat["chat_id"], title=chat.get("title"), username=chat.get("username")
        )
        if chat
        else None,
        target=PeerView(
            kind="user",
            user_id=target.get("user_id"),
            username=target.get("username"),
            first_name=target.get("first_name"),
            last_name=target.get("last_name"),
        ),
        lead_id=doc.get("lead_id"),
        participants=[
            cmd.Participant(
                slot=p["slot"],
                role_id=p["role_id"],
                role_name=p.get("role_name"),
                account_id=p.get("account_id"),
            )
            for p in doc.get("participants", [])
        ],
        current_stage=state.stage,
        current_line=state.line,
        messages_sent=state.sent,
        messages_total=eng.total_lines(script),
        next_line_at=aware(nxt) if state.phase == "speak" and not state.terminal else None,
        waiting_for=eng.waiting_for(script, state),
        replies=state.replies,
        last_reply_at=utc(state.last_reply_at) if state.last_reply_at else None,
        success=state.success,
        outcome=state.outcome,
        last_error=state.error or doc.get("last_error"),
        created_at=aware(doc["created_at"]),
        started_at=aware(doc.get("started_at")),
        finished_at=utc(state.finished_at) if state.finished_at else None,
    )


class CollaborationService(UsesCollaborators):
    def __init__(
        self,
        deps: Collaborators,
        leads: LeadService,
        rules: Rules | None = None,
        compliance: ComplianceService | None = None,
    ) -> None:
        super().__init__(deps)
        self.leads, self.rules, self.compliance = leads, rules, compliance
        self.runs = self.stores.runs
        self.owner = "collab-" + uuid.uuid4().hex[:12]
        self._checked_at = 0.0
        self.monitoring.also_watch(self.runs.active_chat_ids)
        #: chats of active runs, for the hot path: read at most every `CHATS_TTL` seconds (a run started
        #: or ended here is seen at once; one on another replica within that)
        self._chats = Fresh(self.runs.active_chat_ids, CHATS_TTL)

    # --- start ------------------------------------------------------------------------------------

    @answers(cmd.StartCollaboration, principal=True)
    async def start(self, req: cmd.StartCollaborationRequest, by: str | None) -> cmd.CollaborationRunView:
        if req.advance_run_id is not None:
            return await self.advance(req.advance_run_id, by)
        now_ts = self.clock()
        now = utc(now_ts)
        run_id = (
            "col_" + hashlib.sha256(req.idempotency_key.encode()).hexdigest()[:20]
            if req.idempotency_key
            else "col_" + uuid.uuid4().hex[:20]
        )
        existing = await self.runs.get(run_id)
        if existing is not None:
            return run_view(existing)
        scenario: cmd.ScenarioView | None = None
        if req.scenario_id is not None:
            scenario = await self.library.get_scenario(req.scenario_id)
            if not scenario.is_active:
                raise Conflict(f"scenario {scenario.id} is inactive", {"field": "scenarioId"})
            script_id, bindings = scenario.script_id, dict(scenario.role_bindings)
            chat_ref = (
                req.chat if req.chat is not None else (scenario.chat if req.new_group is None else None)
            )
            new_group = req.new_group or (
                scenario.new_group if req.chat is None and scenario.where == "new_group" else None
            )
            active = await self.runs.count_active(scenario.id)
            if active >= scenario.max_concurrent_runs:
                raise Conflict(
                    f"scenario {scenario.id} already has {active} active runs (maxConcurrentRuns "
                    f"{scenario.max_concurrent_runs})",
                    {"field": "scenarioId", "active": active},
                )
        else:
            assert req.script_id is not None and req.role_bindings is not None
            script_id, bindings = req.script_id, dict(req.role_bindings)
            chat_ref, new_group = req.chat, req.new_group
        if chat_ref is None and new_group is None:
            raise Invalid("the run needs a group: give chat or newGroup", {"field": "chat"})
        script = await self.library.get_script(script_id)
        if not script.is_active:
            raise Conflict(f"script {script_id} is inactive", {"field": "scriptId"})
        participants = await self._participants(script, bindings)
        target, lead_id = await self._target(req)
        blocked = await self._blocked([target])
        if blocked:
            raise Conflict(
                f"the target is {next(iter(blocked.values()))}: nobody may write to them",
                {"field": "target" if req.target is not None else "leadId"},
            )
        chat = await self._chat(chat_ref) if chat_ref is not None else None
        start_ts = max(now_ts, req.start_at.timestamp()) if req.start_at else now_ts
        spec = cmd.ScriptSpec.model_validate(
            script.model_dump(by_alias=True, include=set(cmd.ScriptSpec.model_fields))
        )
        state = eng.begin(run_id, start_ts)
        status = "running" if chat is not None else "creating"
        doc: dict[str, Any] = {
            "_id": run_id,
            "idempotency_key": req.idempotency_key,
            "status": status,
            "scenario_id": scenario.id if scenario else None,
            "script_id": script_id,
            "script": spec.model_dump(mode="json", by_alias=True),
            "participants": participants,
            "target": target,
            "lead_id": lead_id,
            "chat": chat,
            "new_group": new_group.model_dump(mode="json") if new_group else None,
            "variables": dict(req.variables),
            "start_at": utc(start_ts),
            "state": state.to_doc(),
            "next_at": utc(eng.next_check(spec, state) or now_ts) if chat is not None else now,
            "pending_job": None,
            "transcript": [],
            "messages_total": eng.total_lines(spec),
            "created_by": by,
            "created_at": now,
            "started_at": now if chat is not None else None,
            "updated_at": now,
            "rev": 0,
        }
        if not await self.runs.insert(doc):
            found = await self.runs.get(run_id)
            if found is None:
                raise Conflict(f"run {run_id} is being started")
            return run_view(found)
        await self.library.count_run(script_id, doc["scenario_id"])
        if chat is not None:
            self._chats.clear()
            await self.monitoring.republish()
        await self._progress(doc)
        return run_view(doc)

    async def start_for(
        self, scenario_id: str, user_id: int, lead_id: str | None, chat_id: int, key: str
    ) -> str:
        """Automation's `start_scenario` action: the scenario for a group member (their lead when
        known), in the scenario's group, else a new one as it says, else the group they wrote in;
        `key` is the firing's (a second call answers the first run). The run's id."""
        scenario = await self.library.get_scenario(scenario_id)
        chat = chat_id if scenario.where == "existing_group" and scenario.chat is None else None
        req = cmd.StartCollaborationRequest(
            scenario_id=scenario_id,
            target=None if lead_id else user_id,
            lead_id=lead_id,
            chat=chat,
            idempotency_key=key,
        )
        return (await self.start(req, "automation")).id

    @hears(LeadStageChanged, "scenario_lead_stage")
    async def on_lead_stage(self, evt: LeadStageChanged) -> list[str]:
        """A lead entered a stage: every active scenario with `startOn: lead_stage` on it starts for
        the lead, once. The run's id is a digest of `lead-stage:<scenario>:<lead>`, so a redelivery,
        a second replica handling another copy, or the lead coming back to the stage later answers
        the run made the first time. A start the scenario refuses (the target blacklisted, its
        `maxConcurrentRuns` reached, the lead gone) is logged and not retried; the service or
        tg-session not answering (`UNAVAILABLE`, `TIMEOUT`) raises, so the event comes again.
        The ids of the runs (new or found)."""
        if evt.from_stage == evt.to_stage:
            return []
        out: list[str] = []
        for found in await self.stores.library.active_on_stages([evt.to_stage.value], None):
            req = cmd.StartCollaborationRequest(
                scenario_id=found["_id"],
                lead_id=evt.lead_id,
                idempotency_key=f"lead-stage:{found['_id']}:{evt.lead_id}",
            )
            try:
                out.append((await self.start(req, "lead-stage")).id)
            except DomainError as exc:
                if exc.code in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                    raise
                log.warning(
                    "scenario %s not started for lead %s entering %s: %s %s",
                    found["_id"],
                    evt.lead_id,
                    evt.to_stage.value,
                    exc.code.value,
                    exc.message,
                )
        return out

    async def missing_scenarios(self, ids: list[str]) -> list[str]:
        """Those of `ids` that are no scenario (trigger rules' `start_scenario` check)."""
        out = []
        for sid in ids:
            try:
                await self.library.get_scenario(sid)
            except NotFound:
                out.append(sid)
        return out

    async def _participants(
        self, script: cmd.ScriptView, bindings: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        slots = {r.key for r in script.roles}
        unknown = sorted(set(bindings) - slots)
        if unknown:
            raise Invalid(f"not slots of the script: {', '.join(unknown)}", {"field": "roleBindings"})
        speaking = [k for k in dict.fromkeys(ln.slot for st in script.stages for ln in st.lines)]
        unbound = [k for k in speaking if k not in bindings]
        if unbound:
            raise Invalid(f"slots with lines need a role: {', '.join(unbound)}", {"field": "roleBindings"})
        if len(set(bindings.values())) != len(bindings):
            raise Invalid("a role can play one slot only", {"field": "roleBindings"})
        out: list[dict[str, Any]] = []
        accounts: set[str] = set()
        for slot, role_id in bindings.items():
            role = await self.library.get_role(role_id)
            if not role.is_active:
                raise Conflict(f"role {role_id} ({role.name}) is inactive", {"field": "roleBindings"})
            if role.bound_account_id is None:
                raise Conflict(f"role {role_id} ({role.name}) has no account", {"field": "roleBindings"})
            if role.bound_account_id in accounts:
                raise Conflict("two slots are played by one account", {"field": "roleBindings"})
            accounts.add(role.bound_account_id)
            persona = role.personality
            out.append(
                {
                    "slot": slot,
                    "role_id": role.id,
                    "role_name": role.name,
                    "role_type": role.type,
                    "account_id": role.bound_account_id,
                    "typing_speed": role.ai_config.typing_speed,
                    "prompt": role.ai_config.custom_prompt,
                    "strategy_id": role.ai_config.strategy_id,
                    "persona": {
                        "description": persona.description,
                        "speaking_style": persona.speaking_style,
                        "traits": persona.traits,
                        "background": persona.background,
                        "emoji_frequency": role.ai_config.emoji_frequency,
                        "response_length": role.ai_config.response_length,
                    },
                }
            )
        return out

    async def _target(self, req: cmd.StartCollaborationRequest) -> tuple[dict[str, Any], str | None]:
        if req.lead_id is not None:
            lead = await self.messaging.leads.get(req.lead_id)
            if lead is None:
                raise NotFound(f"lead {req.lead_id} does not exist", {"field": "leadId"})
            user_id = int(lead["user_id"]) if lead.get("user_id") else None
            username = (lead.get("username") or "").lstrip("@") or None
            if user_id is None and username is None:
                raise Conflict(f"lead {req.lead_id} has no Telegram user id or username", {"field": "leadId"})
            peer: int | str = user_id if user_id is not None else "@" + str(username)
            return (
                {
                    "user_id": user_id,
                    "username": username,
                    "first_name": lead.get("first_name"),
                    "last_name": lead.get("last_name"),
                    "peer": peer,
                },
                req.lead_id,
            )
        if req.target is None:
            raise Invalid("give the target or leadId", {"field": "target"})
        peer = req.target
        if isinstance(peer, int) and peer < 0:
            raise Invalid("the target is a user, not a chat", {"field": "target"})
        user_id = peer if isinstance(peer, int) else None
        username = peer[1:] if isinstance(peer, str) and peer.startswith("@") else None
        lead_ref: str | None = None
        if user_id is not None or username is not None:
            found = await self.leads.find_for_user(user_id, username)
            lead_ref = found.id if found is not None else None
        return (
            {"user_id": user_id, "username": username, "first_name": None, "last_name": None, "peer": peer},
            lead_ref,
        )

    async def _chat(self, ref: int | str) -> dict[str, Any]:
        if isinstance(ref, int):
            if ref >= 0:
                raise Invalid("a group id is negative (-100… for supergroups)", {"field": "chat"})
            group = await self.messaging.groups.by_chat_id(ref)
            return {
                "chat_id": ref,
                "title": (group or {}).get("title"),
                "username": (group or {}).get("username"),
            }
        if ref.startswith("+"):
            raise Invalid("an invite link is not a chat to talk in: join the group first", {"field": "chat"})
        group = await self.runs.monitored_group(ref)
        if group is not None:
            return {
                "chat_id": int(group["chat_id"]),
                "title": group.get("title"),
                "username": group.get("username"),
            }
        raise Invalid(
            f"group {ref} is not a monitored group with a known id: give its numeric chat id",
            {"field": "chat"},
        )

    # --- stop, manual advance, status -----------------------------------------------------------------

    @answers(cmd.StopCollaboration, principal=True)
    async def stop(self, req: cmd.StopCollaborationRequest, by: str | None) -> cmd.CollaborationRunView:
        doc = await self._get(req.run_id)
        reason = f"stopped by {by or 'an operator'}" + (f": {req.reason}" if req.reason else "")
        doc = await self._end(doc, lambda s: eng.stop(s, self.clock(), "stopped", reason)) or doc
        return run_view(doc)

    async def advance(self, run_id: str, by: str | None) -> cmd.CollaborationRunView:
        doc = await self._get(run_id)
        for _ in range(SAVE_TRIES):
            script = cmd.ScriptSpec.model_validate(doc["script"])
            state = eng.RunState.of(doc["state"])
            if doc["status"] != "running" or eng.waiting_for(script, state) != "manual":
                raise Conflict(
                    f"run {run_id} is not waiting for a manual stage",
                    {"waitingFor": eng.waiting_for(script, state)},
                )
            fx = eng.manual(script, state, self.clock())
            saved = await self._save(doc, script, state, now_check=True)
            if saved is not None:
                if fx.stage_started:
                    await self._progress(saved)
                return run_view(saved)
            doc = await self._get(run_id)
        raise Conflict(f"run {run_id} is changing; try again")

    @answers(cmd.GetCollaborationStatus)
    async def status(self, req: cmd.GetCollaborationStatusRequest) -> Page[cmd.CollaborationRunView]:
        query: dict[str, Any] = {}
        if req.run_id is not None:
            query["_id"] = req.run_id
        if req.statuses:
            query["status"] = {"$in": [s.value for s in req.statuses]}
        if req.scenario_id is not None:
            query["scenario_id"] = req.scenario_id
        if req.lead_id is not None:
            query["lead_id"] = req.lead_id
        after = None
        if req.cursor:
            try:
                at_s, rid = req.cursor.split("|", 1)
                after = (datetime.fromisoformat(at_s), rid)
            except ValueError:
                raise Invalid("cursor: not one of this list's cursors", {"field": "cursor"}) from None
        docs, total = await self.runs.page(query, after, req.limit + 1)
        more = len(docs) > req.limit
        docs = docs[: req.limit]
        cursor = None
        if more and docs:
            last = docs[-1]
            cursor = f"{aware(last['created_at']).isoformat()}|{last['_id']}"  # type: ignore[union-attr]
        return Page[cmd.CollaborationRunView](
            items=[run_view(d) for d in docs], next_cursor=cursor, total=total
        )

    async def _get(self, run_id: str) -> dict[str, Any]:
        doc = await self.runs.get(run_id)
        if doc is None:
            raise NotFound(f"collaboration run {run_id} does not exist", {"runId": run_id})
        return doc

    # --- saving -------------------------------------------------------------------------------------

    async def _save(
        self,
        doc: Mapping[str, Any],
        script: cmd.ScriptSpec,
        state: eng.RunState,
        *,
        now_check: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The state saved compare-and-set (None: another writer came first; read again)."""
        now_ts = self.clock()
        nxt = eng.next_check(script, state)
        if now_check and not state.terminal:
            nxt = now_ts
        fields: dict[str, Any] = {
            "state": state.to_doc(),
            "next_at": utc(nxt) if nxt is not None else None,
            "pending_job": state.pending.job_id if state.pending else None,
            "updated_at": utc(now_ts),
            **(extra or {}),
        }
        if state.terminal and doc["status"] in ("running", "creating"):
            fields["status"] = state.status
        return await self.runs.save(doc["_id"], int(doc.get("rev", 0)), fields)

    async def _end(self, doc: dict[str, Any], how: Any) -> dict[str, Any] | None:
        """End the run with `how(state)` (an engine transition), saved compare-and-set, then cancel its
        waiting jobs, publish the watched chats and the progress. The run as saved (None: it had ended)."""
        for _ in range(SAVE_TRIES):
            script = cmd.ScriptSpec.model_validate(doc["script"])
            state = eng.RunState.of(doc["state"])
            fx: eng.Effects = how(state)
            if not fx.changed:
                return None
            saved = await self._save(doc, script, state)
            if saved is not None:
                await self._ended(saved)
                return saved
            doc = await self._get(doc["_id"])
        raise Conflict(f"run {doc['_id']} is changing; try again")

    async def _ended(self, doc: Mapping[str, Any]) -> None:
        cancelled = await self.control.cancel_campaign(doc["_id"], "collaboration run ended")
        if cancelled:
            log.info("run %s ended: %d waiting lines cancelled", doc["_id"], cancelled)
        if doc.get("chat"):
            self._chats.clear()
            await self.monitoring.republish()
        if doc["status"] == "completed":
            await self.library.count_run(doc["script_id"], doc.get("scenario_id"), completed=True)
        await self._progress(doc)

    async def _progress(
        self, doc: Mapping[str, Any], account: str | None = None, job: str | None = None
    ) -> None:
        state = eng.RunState.of(doc["state"])
        status = doc["status"] if doc["status"] == "creating" else state.status
        await self.emit(
            CollaborationProgress(
                run_id=doc["_id"],
                scenario_id=doc.get("scenario_id"),
                status=CollaborationStatus(status),
                current_stage=state.stage,
                current_line=state.line,
                messages_sent=state.sent,
                messages_total=int(doc.get("messages_total", 0)),
                account_id=account,
                job_id=job,
                error=state.error or doc.get("last_error"),
            )
        )

    # --- compliance -----------------------------------------------------------------------------------

    async def _blocked(self, targets: Sequence[Mapping[str, Any]]) -> dict[str, str]:
        """peer key of each blocked target -> `blacklisted` / `opted_out`."""
        keys = {peer_key(t["peer"]): t for t in targets}
        for t in targets:
            if t.get("user_id") is not None:
                keys.setdefault(peer_key(int(t["user_id"])), t)
            if t.get("username"):
                keys.setdefault(peer_key("@" + str(t["username"])), t)
        aliases = await self.messaging.history.aliases(list(keys))
        every = list(dict.fromkeys(k for ks in aliases.values() for k in ks))
        hits = await self.messaging.compliance.blocked(every)
        out: dict[str, str] = {}
        for t in targets:
            own = [k for k, v in keys.items() if v is t]
            for k in own:
                for alias in aliases.get(k, [k]):
                    if alias in hits:
                        out[peer_key(t["peer"])] = reason_of(hits[alias])
        return out

    async def _check_compliance(self) -> None:
        runs = [d for d in await self.runs.active() if d.get("target")]
        if not runs:
            return
        blocked = await self._blocked([d["target"] for d in runs])
        for doc in runs:
            why = blocked.get(peer_key(doc["target"]["peer"]))
            if why is not None:
                log.info("run %s: the target is %s; stopped", doc["_id"], why)
                await self._end(
                    doc, lambda s, w=why: eng.stop(s, self.clock(), "stopped", f"the target is {w}")
                )

    # --- the runner -----------------------------------------------------------------------------------

    async def tick(self) -> None:
        """One runner round: runs whose next step is due."""
        now_ts = self.clock()
        if not await self.messaging.leases.acquire(
            LEASE, self.owner, utc(now_ts), utc(now_ts + LEASE_SECONDS)
        ):
            return
        if now_ts - self._checked_at >= COMPLIANCE_SECONDS:
            self._checked_at = now_ts
            await self._check_compliance()
        docs = await self.runs.due(utc(now_ts))
        if not docs:
            return
        jobs = {
            j["_id"]: j
            for j in await self.messaging.jobs.many([d["pending_job"] for d in docs if d.get("pending_job")])
        }
        for doc in docs:
            try:
                if doc["status"] == "creating":
                    await self._create_group(doc)
                else:
                    await self._round(doc, jobs.get(doc.get("pending_job") or ""))
            except Exception as exc:  # one run's trouble never stops the others
                log.exception("run %s: round failed", doc["_id"])
                await self.runs.save(
                    doc["_id"], int(doc.get("rev", 0)), {"last_error": f"{type(exc).__name__}: {exc}"[:500]}
                )

    async def _round(self, doc: dict[str, Any], job: Mapping[str, Any] | None) -> None:
        now = self.clock()
        script = cmd.ScriptSpec.model_validate(doc["script"])
        state = eng.RunState.of(doc["state"])
        if state.terminal:  # ended, but the document's status lags (killed between the two)
            await self._save(doc, script, state)
            return
        if state.pending is not None and state.pending.job_id is None:
            # Saved as pending, then killed before (or while) queueing: queue the same key again.
            order = eng.LineOrder(
                state.pending.stage,
                state.pending.line,
                state.pending.attempt,
                state.pending.key,
                script.stages[state.pending.stage].lines[state.pending.line],
            )
            await self._queue_line(doc, script, order)
            return
        settled = None
        if job is not None and job["state"] in TERMINAL:
            at = aware(job.get("sent_at")) or aware(job.get("updated_at")) or utc(now)
            sent = job["state"] == "sent"
            settled = eng.Settled(
                sent,
                epoch(at),
                None if sent else f"{job['state']}:{job.get('reason') or job.get('last_error')}",
            )
            if sent:
                await self.runs.remember(
                    doc["_id"],
                    [
                        {
                            "who": "role",
                            "slot": job.get("collab_slot") or self._slot_of(doc, job),
                            "text": job.get("text"),
                            "at": at,
                        }
                    ],
                )
        fx = eng.step(script, state, now, settled)
        if not fx.changed:
            return
        saved = await self._save(doc, script, state)
        if saved is None:
            return  # a target's message moved it meanwhile: the next round reads it again
        if fx.cancel:
            await self._ended(saved)
            return
        if settled is not None or fx.stage_started:
            await self._progress(
                saved, job.get("account_id") if job else None, job.get("_id") if job else None
            )
        if fx.queue is not None:
            await self._queue_line(saved, script, fx.queue)

    def _slot_of(self, doc: Mapping[str, Any], job: Mapping[str, Any]) -> str | None:
        for p in doc.get("participants", []):
            if p.get("account_id") == job.get("account_id"):
                return str(p["slot"])
        return None

    async def _queue_line(self, doc: dict[str, Any], script: cmd.ScriptSpec, order: eng.LineOrder) -> None:
        """Make the pending line's text and queue it (idempotent on its key)."""
        target = doc["target"]
        blocked = await self._blocked([target])
        if blocked:
            why = next(iter(blocked.values()))
            await self._end(doc, lambda s: eng.stop(s, self.clock(), "stopped", f"the target is {why}"))
            return
        participant = next((p for p in doc["participants"] if p["slot"] == order.spec.slot), None)
        if participant is None:
            await self._line_failed(doc, f"slot {order.spec.slot} has no role")
            return
        ln = order.spec
        variables = {**target_values(target), "role_name": participant.get("role_name") or ""}
        variables |= doc.get("variables", {})
        text: str | None = None
        template_id: str | None = None
        length = 0
        if ln.type == "text":
            text, length = ln.text, len(ln.text or "")
        elif ln.type == "template":
            template_id = ln.template_id
            tpl = await self.messaging.templates.get(ln.template_id or "")
            length = len(str((tpl or {}).get("content") or ""))
        else:
            made = await self._ai_line(doc, participant, ln, order)
            if isinstance(made, DomainError):
                await self._line_failed(doc, f"ai: {made.code.value}: {made.message}")
                return
            text, length = literal(made), len(made)
        typing = eng.typing_seconds(
            "x" * length, int(participant.get("typing_speed") or 200), ln.simulate_typing
        )
        req = messaging_cmd.QueueMessageRequest(
            text=text,
            template_id=template_id,
            variables=variables,
            account_id=participant["account_id"],
            recipients=[messaging_cmd.Recipient(peer=doc["chat"]["chat_id"], idempotency_key=order.key)],
            priority="high",
            not_before=utc(self.clock() + typing) if typing > 0 else None,
            idempotency_key=order.key + ":batch",
            campaign_id=doc["_id"],
            dedupe_recipients=False,
        )
        try:
            result = await self.queue.queue_message(req, None)
        except DomainError as exc:
            await self._line_failed(doc, f"{exc.code.value}: {exc.message}")
            return
        job_id = result.jobs[0].job_id
        if job_id is None:
            await self._line_failed(doc, "the queue made no job")
            return
        if not await self.runs.set_pending_job(doc["_id"], order.key, job_id):
            log.info("run %s: line %s queued but the run moved on", doc["_id"], order.key)
        current = await self.runs.get(doc["_id"])
        if current is None or current["status"] not in ("running",):
            # Ended while this line was being queued: what it queued must not outlive it.
            await self.control.cancel_campaign(doc["_id"], "collaboration run ended")
            return
        await self._progress(current, participant["account_id"], job_id)

    async def _line_failed(self, doc: dict[str, Any], reason: str) -> None:
        """The pending line could not be made or queued: the stage's failure action, as if its job
        had failed."""
        for _ in range(SAVE_TRIES):
            script = cmd.ScriptSpec.model_validate(doc["script"])
            state = eng.RunState.of(doc["state"])
            if state.pending is None:
                return
            now = self.clock()
            fx = eng.step(script, state, now, eng.Settled(False, now, reason))
            saved = await self._save(doc, script, state)
            if saved is not None:
                if fx.cancel:
                    await self._ended(saved)
                else:
                    await self._progress(saved)
                    if fx.queue is not None:
                        await self._queue_line(saved, script, fx.queue)
                return
            doc = await self._get(doc["_id"])

    async def _ai_line(
        self, doc: Mapping[str, Any], participant: Mapping[str, Any], ln: cmd.ScriptLine, order: eng.LineOrder
    ) -> str | DomainError:
        target = doc["target"]
        if target.get("user_id") is None:
            return DomainError(ErrorCode.CONFLICT, "an AI line needs the target's user id")
        current = await self.runs.get(doc["_id"]) or doc
        names = {p["slot"]: p.get("role_name") or p["slot"] for p in doc["participants"]}
        history: list[ChatTurn] = []
        for e in current.get("transcript", [])[-20:]:
            if not e.get("text"):
                continue
            if e.get("who") == "target":
                history.append(ChatTurn(role="user", content=str(e["text"])[:8000]))
            elif e.get("slot") == participant["slot"]:
                history.append(ChatTurn(role="assistant", content=str(e["text"])[:8000]))
            else:
                history.append(
                    ChatTurn(
                        role="user", content=f"{names.get(e.get('slot') or '', 'member')}: {e['text']}"[:8000]
                    )
                )
        persona = participant.get("persona") or {}
        parts = [
            f"You are {participant.get('role_name')}, a {participant.get('role_type') or 'member'} in a Telegram group chat.",
            persona.get("description"),
            f"Speaking style: {persona['speaking_style']}" if persona.get("speaking_style") else None,
            f"Traits: {', '.join(persona['traits'])}" if persona.get("traits") else None,
            persona.get("background"),
            f"Emoji: {persona.get('emoji_frequency', 'low')}; length: {persona.get('response_length', 'short')}.",
            participant.get("prompt"),
        ]
        system = "\n".join(p for p in parts if p)[:4000]
        last_reply = next(
            (
                e["text"]
                for e in reversed(current.get("transcript", []))
                if e.get("who") == "target" and e.get("text")
            ),
            None,
        )
        message = (ln.prompt or "Continue the conversation.") + (
            f"\n\nThe customer said: {last_reply}" if last_reply else ""
        )
        req = GenerateResponseRequest(
            account_id=participant["account_id"],
            user_id=str(target["user_id"]),
            message=message[:8000],
            history=history[-100:],
            strategy_id=participant.get("strategy_id"),
            system_prompt=system or None,
            user_name=target.get("first_name") or target.get("username"),
            seed=int(hashlib.sha256(order.key.encode()).hexdigest()[:8], 16),
            remember=False,
        )
        try:
            reply = await self.call(AiGenerateResponse, req, AI_TIMEOUT)
        except DomainError as exc:
            return exc
        except ValidationError:
            return DomainError(ErrorCode.INTERNAL, "the ai service answered something that is not a reply")
        text = (reply.text or "").strip()[:MAX_TEXT]
        if not text:
            return DomainError(ErrorCode.INTERNAL, "the ai service answered an empty reply")
        return text

    # --- a new group ------------------------------------------------------------------------------------

    async def _create_group(self, doc: dict[str, Any]) -> None:
        now_ts = self.clock()
        nxt = doc.get("next_at")
        if nxt is not None and epoch(nxt) > now_ts:
            return
        spec = cmd.NewGroupSpec.model_validate(doc["new_group"] or {"title": "Chat"})
        script = cmd.ScriptSpec.model_validate(doc["script"])
        speaking = [ln.slot for st in script.stages for ln in st.lines]
        by_slot = {p["slot"]: p for p in doc["participants"]}
        creator = by_slot.get(speaking[0]) if speaking else doc["participants"][0]
        assert creator is not None
        target = doc["target"]
        values = {**target_values(target), **doc.get("variables", {})}
        try:
            title = templates.render(
                templates.parse(spec.title), values, templates.seeded(doc["_id"]), missing="keep"
            )[:128]
        except templates.TemplateError:
            title = spec.title
        made = None
        attempt = doc.get("group_attempt_at")
        if attempt is not None:
            made = await self._made_since(creator["account_id"], title, epoch(attempt) - 5)
        if made is None:
            saved = await self.runs.save(
                doc["_id"], int(doc.get("rev", 0)), {"group_attempt_at": utc(now_ts)}
            )
            if saved is None:
                return
            doc = saved
            others = [
                p["account_id"] for p in doc["participants"] if p["account_id"] != creator["account_id"]
            ]
            members: list[int | str] = [target["peer"], *(await self._account_peers(others))]
            try:
                made = await self.call(
                    CreateGroup,
                    CreateGroupRequest(
                        account_id=creator["account_id"], title=title, about=spec.about, members=members
                    ),
                    GROUP_TIMEOUT,
                )
            except DomainError as exc:
                if (
                    exc.code is ErrorCode.FLOOD_WAIT
                    or exc.code is ErrorCode.UNAVAILABLE
                    or exc.code is ErrorCode.TIMEOUT
                ):
                    wait = float(getattr(exc, "retry_after", None) or 30.0)
                    await self.runs.save(
                        doc["_id"],
                        int(doc["rev"]),
                        {
                            "next_at": utc(now_ts + wait),
                            "last_error": f"create-group: {exc.code.value}: {exc.message}"[:500],
                        },
                    )
                    return
                why = f"create-group: {exc.code.value}: {exc.message}"
                await self._end(doc, lambda s: eng.fail(s, self.clock(), why))
                return
        chat = {"chat_id": made.chat.chat_id, "title": made.chat.title, "username": made.chat.username}
        state = eng.begin(doc["_id"], max(self.clock(), epoch(doc["start_at"])))
        saved = await self.runs.save(
            doc["_id"],
            int(doc["rev"]),
            {
                "status": "running",
                "chat": chat,
                "state": state.to_doc(),
                "next_at": utc(eng.next_check(script, state) or self.clock()),
                "started_at": utc(self.clock()),
                "invite_link": made.invite_link,
                "updated_at": utc(self.clock()),
            },
        )
        if saved is None:
            return
        self._chats.clear()
        await self.monitoring.republish()
        invited = target.get("user_id") is not None and int(target["user_id"]) in made.invited
        failed = any(
            str(f.get("peer")) in (str(target["peer"]), str(target.get("user_id")))
            for f in made.failed_invites
        )
        if (failed or not invited) and made.invite_link and (failed or spec.invite_message):
            text = literal(f"{spec.invite_message or 'Join us:'}\n{made.invite_link}")
            try:
                await self.queue.queue_message(
                    messaging_cmd.QueueMessageRequest(
                        text=text,
                        account_id=creator["account_id"],
                        recipients=[
                            messaging_cmd.Recipient(
                                peer=target["peer"], idempotency_key=f"col:{doc['_id']}:invite"
                            )
                        ],
                        priority="high",
                        idempotency_key=f"col:{doc['_id']}:invite:batch",
                        campaign_id=doc["_id"],
                    ),
                    None,
                )
            except DomainError as exc:
                log.warning("run %s: the invite link could not be queued: %s", doc["_id"], exc)
        await self._progress(saved)

    async def _made_since(self, account_id: str, title: str, since: float) -> Any:
        try:
            page = await self.call(
                GetCreatedGroups, GetCreatedGroupsRequest(account_id=account_id, limit=20), 10.0
            )
        except DomainError:
            return None
        for g in page.items:
            if g.chat.title == title and epoch(g.created_at) >= since:
                return g
        return None

    async def _account_peers(self, account_ids: Sequence[str]) -> list[int | str]:
        if not account_ids:
            return []
        try:
            briefs = await self.call(
                DescribeAccounts, DescribeAccountsRequest(account_ids=list(account_ids)), 5.0
            )
        except DomainError as exc:
            log.warning("describe-accounts failed (%s): the role accounts are not invited", exc.code.value)
            return []
        out: list[int | str] = []
        for b in briefs.accounts:
            if b.telegram_id:
                out.append(int(b.telegram_id))
            elif b.phone:
                out.append("+" + b.phone.lstrip("+"))
        return out

    # --- the target's messages ----------------------------------------------------------------------

    @hears(MessageReceived, "collaboration_messages")
    async def on_message(self, evt: MessageReceived) -> None:
        """A message in a run's chat (from the target): may advance or end a run."""
        if evt.chat_kind == "private" or evt.is_outgoing or evt.sender_id is None:
            return
        if evt.chat_id not in await self._chats.get():
            return  # most group messages: no run there (no query)
        runs = await self.runs.in_chat(evt.chat_id)
        for doc in runs:
            target = doc.get("target") or {}
            uid = target.get("user_id")
            uname = (target.get("username") or "").lower()
            sender_name = ((evt.sender.username if evt.sender else None) or "").lower()
            if not (uid == evt.sender_id or (uid is None and uname and uname == sender_name)):
                continue
            await self._from_target(doc, evt)

    async def _from_target(self, doc: dict[str, Any], evt: MessageReceived) -> None:
        now = self.clock()
        if self.rules is not None:
            word = (await self.rules.stop_words()).match(evt.text)
            if word is not None:
                assert evt.sender_id is not None
                if self.compliance is not None:
                    key = peer_key(evt.sender_id)
                    keys = (await self.messaging.history.aliases([key])).get(key, [key])
                    await self.compliance.opted_out(evt.sender_id, evt.account_id, word, keys)
                await self._end(
                    doc, lambda s: eng.stop(s, self.clock(), "stopped", f"the target wrote {word!r}")
                )
                return
        for _ in range(SAVE_TRIES):
            script = cmd.ScriptSpec.model_validate(doc["script"])
            state = eng.RunState.of(doc["state"])
            fx = eng.on_target_message(script, state, evt.message_id, evt.text, now)
            if not fx.changed:
                return
            extra: dict[str, Any] = {}
            if doc["target"].get("user_id") is None:
                extra["target.user_id"] = evt.sender_id
            saved = await self._save(doc, script, state, now_check=fx.stage_started, extra=extra)
            if saved is not None:
                await self.runs.remember(
                    doc["_id"], [{"who": "target", "slot": None, "text": evt.text, "at": utc(now)}]
                )
                if fx.cancel:
                    await self._ended(saved)
                else:
                    await self._progress(saved)
                return
            doc = await self._get(doc["_id"])
