"""Enqueueing: `queue-message` (one job per recipient) and the four immediate sends (one job at
priority `urgent`, then waiting on its outcome, never by sleeping). Keys make it idempotent;
blacklisted, opted-out and do-not-contact recipients become `skipped` jobs at once. The scheduler
does the sending; pausing and clearing are `queue_control.py`, the blacklist `compliance_service.py`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_campaign import (
    MessageQueued,
)
from tgm_contracts.models.campaign import (
    AccountChoice,
    JobReason,
    JobState,
    MessageBody,
    Priority,
    is_chat_peer,
    peer_key,
)
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers

from .accounts import AccountDirectory
from .clock import Clock, epoch, utc
from .compliance import reason_of
from .job_events import JobEvents
from .store import TERMINAL, WAITING, attempt, new_job_id
from .stores import MessagingStores
from .templates import TemplateError, parse

log = logging.getLogger("tgm.campaign.queue")

KEY_OK = re.compile(r"^[A-Za-z0-9_.:/@+=-]+$")


def _key_part(value: str) -> str:
    """A piece of an idempotency key: kept when it is key-safe, else its digest."""
    return (
        value
        if KEY_OK.match(value) and len(value) <= 80
        else "h" + hashlib.sha256(value.encode()).hexdigest()[:24]
    )


async def _none() -> None:
    return None


def _held_past(job: Mapping[str, Any], deadline: float) -> bool:
    """The job is scheduled for after `deadline` (held by a limit known now): no use waiting for it."""
    at = job.get("not_before")
    return job["state"] == JobState.SCHEDULED.value and at is not None and epoch(at) > deadline


@dataclass
class Spec:
    """One recipient of an enqueue, resolved."""

    peer: int | str
    key: str
    variables: dict[str, str] = field(default_factory=dict)
    lead_id: str | None = None
    account_id: str | None = None  # a lead's assigned account, when the caller chose none
    skip: JobReason | None = None
    skip_detail: str | None = None

    @classmethod
    def of(
        cls,
        peer: int | str,
        key: str,
        lead: Mapping[str, Any] | None,
        *,
        lead_id: str | None,
        account_chosen: bool,
        variables: Mapping[str, str] | None = None,
    ) -> Spec:
        """A recipient, sent by the lead's assigned account when the caller chose none, and skipped
        at once when the lead is blacklisted or marked do-not-contact."""
        spec = cls(
            peer=peer,
            key=key,
            variables=dict(variables or {}),
            lead_id=lead_id,
            account_id=None if account_chosen else (lead or {}).get("assigned_account_id"),
        )
        if lead is not None:
            if lead.get("blacklisted"):
                spec.skip = JobReason.BLACKLISTED
            elif lead.get("do_not_contact"):
                spec.skip = JobReason.DO_NOT_CONTACT
        return spec


@dataclass
class Created:
    index: int
    doc: dict[str, Any] | None
    duplicate: bool = False


@dataclass(frozen=True)
class ReplyReads:
    """What `QueueService.reply` reads before its job's insert (the template's check, the lead, the
    peer's aliases and blocks), made ahead by `read_reply`: automation starts them beside its
    reservations (reads, harmless when the firing is then refused), one round trip less between a
    group message and its reply job. Used only by the reply they were read for (`fits`)."""

    peer: str
    template_id: str | None
    lead_id: str | None
    lead: dict[str, Any] | None
    compliance: tuple[dict[str, list[str]], dict[str, dict[str, Any]]]

    def fits(self, peer: int | str, body: MessageBody, lead_id: str | None) -> bool:
        return (self.peer, self.template_id, self.lead_id) == (
            peer_key(peer),
            body.template_id,
            lead_id,
        ) and (body.text is None)


class QueueService:
    def __init__(
        self, stores: MessagingStores, events: JobEvents, directory: AccountDirectory, clock: Clock
    ) -> None:
        self.stores = stores
        self.events = events
        self.directory = directory
        self.clock = clock

    # --- enqueue ---------------------------------------------------------------------------------

    async def _check_body(self, body: MessageBody) -> None:
        if body.attachment is not None and body.attachment.data_url is not None:
            raise Invalid(
                "inline attachments (dataUrl) cannot be sent: tg-session's send takes media by URL; give url",
                {"field": "attachment.dataUrl"},
            )
        await self.check_content(body.template_id, body.text)

    async def check_content(self, template_id: str | None, text: str | None, at: str | None = None) -> None:
        """A message's template (it exists and is active) and its text (it parses): refused when asked,
        not when the job is sent. `at` names where the content stands in the request (`steps[2]`)."""
        where, field = (f"{at}: ", f"{at}.text") if at else ("", "text")
        if template_id is not None:
            tpl = await self.stores.templates.get(template_id)
            if tpl is None:
                raise NotFound(f"{where}template {template_id} does not exist")
            if not tpl.get("is_active", True):
                raise Conflict(f"{where}template {template_id} is inactive; activate it first")
        if text is not None:
            try:
                parse(text)
            except TemplateError as exc:
                raise Invalid(f"{field}: {exc}", {"field": field, "position": exc.position}) from None

    async def _check_accounts(self, ids: Sequence[str]) -> None:
        """Unknown accounts are refused now rather than waiting forever (when tg-session can say)."""
        ids = list(dict.fromkeys(i for i in ids if i))
        if not ids:
            return
        missing = await self.directory.missing(ids)
        if missing:
            raise NotFound(f"no such account: {', '.join(missing)}", {"missing": missing})

    async def _lead(self, lead_id: str) -> tuple[int | str, dict[str, Any]]:
        lead = await self.stores.leads.get(lead_id)
        if lead is None:
            raise NotFound(f"lead {lead_id} does not exist")
        if lead.get("user_id"):
            return int(lead["user_id"]), lead
        if lead.get("username"):
            return "@" + str(lead["username"]).lstrip("@"), lead
        raise Conflict(f"lead {lead_id} has no Telegram user id or username to send to")

    async def _compliance_read(
        self, keys: Sequence[str]
    ) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
        """The recipients' peer aliases, and the bans and opt-outs on any of those keys. The keys' own
        blocks are read together with their aliases (one round trip, not two one after the other);
        only the aliases found beyond them (a user known under several keys) need a second read."""
        keys = list(dict.fromkeys(keys))
        aliases, blocked = await asyncio.gather(
            self.stores.history.aliases(keys), self.stores.compliance.blocked(keys)
        )
        more = sorted({k for ks in aliases.values() for k in ks} - set(keys))
        if more:
            blocked.update(await self.stores.compliance.blocked(more))
        return aliases, blocked

    async def _compliance(
        self,
        specs: Sequence[Spec],
        *,
        skip_if_contacted: bool = False,
        read: tuple[dict[str, list[str]], dict[str, dict[str, Any]]] | None = None,
    ) -> dict[str, list[str]]:
        """Mark the blacklisted, opted-out (and, asked, already contacted) recipients skipped;
        returns the recipients' peer aliases it read (for `_create`, which stores them). `read`:
        `_compliance_read` of the specs' peers, when the caller made it already."""
        aliases, blocked = read or await self._compliance_read([peer_key(s.peer) for s in specs])
        for spec in specs:
            if spec.skip is not None:
                continue
            ks = aliases.get(peer_key(spec.peer), [peer_key(spec.peer)])
            hit = next((blocked[k] for k in ks if k in blocked), None)
            if hit is not None:
                spec.skip = JobReason(reason_of(hit))
            elif skip_if_contacted and await self.stores.history.contacted(ks):
                spec.skip = JobReason.ALREADY_CONTACTED
                spec.skip_detail = "an account already has a conversation with this user"
        return aliases

    async def _create(
        self,
        specs: Sequence[Spec],
        *,
        body: MessageBody,
        choice: AccountChoice,
        priority: Priority,
        kind: str,
        batch_id: str,
        campaign_id: str | None,
        not_before: datetime | None,
        expires_at: datetime | None,
        max_attempts: int,
        reply_to: int | None = None,
        direct: bool = False,
        aliases: Mapping[str, list[str]] | None = None,
    ) -> list[Created]:
        """Insert the jobs (`aliases`: the recipients' peer aliases when the caller read them
        already, in `_compliance`). The template's use is counted by `_queued_event`, after the
        event: nothing but the insert stands between the decision and `message-queued`."""
        now_ts = self.clock()
        now = utc(now_ts)
        due = max(now, not_before) if not_before is not None else now
        state = JobState.SCHEDULED if due > now else JobState.PENDING
        base_seq = int(now_ts * 1000) * 100_000
        if aliases is None:
            aliases = await self.stores.history.aliases([peer_key(s.peer) for s in specs])
        docs: list[dict[str, Any]] = []
        for i, spec in enumerate(specs):
            pk = peer_key(spec.peer)
            account = choice.account_id or spec.account_id
            skipped = spec.skip is not None
            job_kind = "group" if kind == "group" or is_chat_peer(spec.peer) else "private"
            docs.append(
                {
                    "_id": new_job_id(),
                    "key": spec.key,
                    "state": JobState.SKIPPED.value if skipped else state.value,
                    "reason": spec.skip.value if spec.skip is not None else None,
                    "priority": priority.value,
                    "rank": priority.rank,
                    "seq": base_seq + i,
                    "kind": job_kind,
                    "peer": spec.peer,
                    "peer_key": pk,
                    "peer_keys": aliases.get(pk, [pk]),
                    "direct": direct,
                    "lead_id": spec.lead_id,
                    "campaign_id": campaign_id,
                    "batch_id": batch_id,
                    "account_id": account,
                    "fixed": account is not None,
                    "pinned": False,
                    "pool": choice.pool.model_dump(mode="json", exclude_none=True, by_alias=False)
                    if choice.pool
                    else None,
                    "exclude": [],
                    "body": {
                        "text": body.text,
                        "template_id": body.template_id,
                        "attachment": body.attachment.model_dump(mode="json") if body.attachment else None,
                        "parse_mode": body.parse_mode,
                        "link_preview": body.link_preview,
                        "silent": body.silent,
                        "reply_to": reply_to,
                    },
                    "variables": {**body.variables, **spec.variables},
                    "text": None,
                    "not_before": due,
                    # When it was asked for: a hold lifted early never makes it due before this.
                    "requested_at": due,
                    "expires_at": expires_at,
                    "attempts": 0,
                    "max_attempts": max_attempts,
                    "last_error": spec.skip_detail if skipped else None,
                    "message_id": None,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": None,
                    "history": [attempt(now, "skipped", reason=spec.skip, error=spec.skip_detail)]
                    if skipped
                    else [],
                    "rev": 0,
                }
            )
        duplicates = await self.stores.jobs.insert(docs)
        existing = await self.stores.jobs.by_keys(duplicates) if duplicates else {}
        out = []
        for i, doc in enumerate(docs):
            if doc["key"] in duplicates:
                out.append(Created(i, existing.get(doc["key"]), duplicate=True))
            else:
                out.append(Created(i, doc))
        created = [c.doc for c in out if not c.duplicate and c.doc is not None]
        waiting = [epoch(c["not_before"]) for c in created if c["state"] in WAITING]
        if waiting:  # a job due later wakes no round when the scheduler looks again before then
            self.events.wake(due=min(waiting))
        return out

    async def _queued_event(
        self,
        batch_id: str,
        out: Sequence[Created],
        priority: Priority,
        *,
        campaign_id: str | None,
        account_id: str | None,
        lead_id: str | None,
        not_before: datetime | None,
        template_id: str | None = None,
    ) -> None:
        """Publish `message-queued` for what `_create` made, then count the template's use."""
        created = [c.doc for c in out if not c.duplicate and c.doc is not None]
        if not created and not any(c.duplicate for c in out):
            return
        await self.events.emit(
            MessageQueued(
                batch_id=batch_id,
                job_ids=[c["_id"] for c in created],
                created=len(created),
                duplicates=sum(c.duplicate for c in out),
                skipped=sum(c["state"] == JobState.SKIPPED.value for c in created),
                priority=priority,
                campaign_id=campaign_id,
                account_id=account_id,
                lead_id=lead_id,
                not_before=not_before,
            )
        )
        if template_id and created:
            await self.stores.templates.used(template_id, utc(self.clock()), len(created))

    async def queue_message(
        self, req: messaging_cmd.QueueMessageRequest, request_id: str | None
    ) -> messaging_cmd.QueueMessageResult:
        await self._check_body(req)
        if req.account_id:
            await self._check_accounts([req.account_id])
        batch_key = req.idempotency_key or (_key_part(request_id) if request_id else uuid.uuid4().hex)
        batch_id = "b" + hashlib.sha256(batch_key.encode()).hexdigest()[:20]
        specs: list[Spec | None] = []
        seen: dict[str, int] = {}
        for r in req.recipients:
            lead = None
            if r.lead_id is not None:
                peer, lead = await self._lead(r.lead_id)
                ident = "lead:" + _key_part(r.lead_id)
            else:
                assert r.peer is not None
                peer = r.peer
                ident = peer_key(peer)
            dedupe_on = peer_key(peer)
            if dedupe_on in seen and req.dedupe_recipients:
                specs.append(None)
                continue
            seen[dedupe_on] = seen.get(dedupe_on, 0) + 1
            suffix = f"#{seen[dedupe_on]}" if seen[dedupe_on] > 1 else ""
            spec = Spec.of(
                peer,
                r.idempotency_key or f"{batch_key}:{ident}{suffix}",
                lead,
                lead_id=r.lead_id,
                account_chosen=req.account_id is not None or req.pool is not None,
                variables=r.variables,
            )
            specs.append(spec)
        real = [s for s in specs if s is not None]
        aliases = await self._compliance(real)
        out = await self._create(
            real,
            aliases=aliases,
            body=req,
            choice=req,
            priority=Priority(req.priority),
            kind="private",
            batch_id=batch_id,
            campaign_id=req.campaign_id,
            not_before=req.not_before,
            expires_at=req.expires_at,
            max_attempts=req.max_attempts,
        )
        await self._queued_event(
            batch_id,
            out,
            Priority(req.priority),
            campaign_id=req.campaign_id,
            account_id=req.account_id,
            lead_id=None,
            not_before=req.not_before,
            template_id=req.template_id,
        )
        jobs: list[messaging_cmd.EnqueuedJob] = []
        it = iter(out)
        for index, maybe in enumerate(specs):
            if maybe is None:
                jobs.append(messaging_cmd.EnqueuedJob(index=index))
                continue
            spec = maybe
            c = next(it)
            doc = c.doc or {}
            jobs.append(
                messaging_cmd.EnqueuedJob(
                    index=index,
                    job_id=doc.get("_id"),
                    idempotency_key=doc.get("key", spec.key),
                    state=doc.get("state"),
                    reason=doc.get("reason") if doc.get("state") == JobState.SKIPPED.value else None,
                    duplicate=c.duplicate,
                )
            )
        fresh = [c.doc for c in out if not c.duplicate and c.doc]
        return messaging_cmd.QueueMessageResult(
            batch_id=batch_id,
            created=len(fresh),
            duplicates=sum(c.duplicate for c in out),
            skipped=sum(d["state"] == JobState.SKIPPED.value for d in fresh),
            jobs=jobs,
        )

    # --- immediate sends -------------------------------------------------------------------------

    async def send(
        self,
        *,
        peer: int | str | None,
        lead_id: str | None,
        body: MessageBody,
        choice: AccountChoice,
        options: messaging_cmd.SendOptions,
        kind: str,
        reply_to: int | None = None,
        direct: bool = False,
        skip_if_contacted: bool = False,
    ) -> messaging_cmd.SendResult:
        await self._check_body(body)
        lead = None
        if lead_id is not None:
            peer, lead = await self._lead(lead_id)
        assert peer is not None
        if choice.account_id:
            await self._check_accounts([choice.account_id])
        job_id_hint = uuid.uuid4().hex
        key = options.idempotency_key or f"send:{job_id_hint}"
        spec = Spec.of(
            peer,
            key,
            lead,
            lead_id=lead_id,
            account_chosen=choice.account_id is not None or choice.pool is not None,
        )
        doc, duplicate = await self._queue_one(
            spec,
            body,
            choice,
            Priority.URGENT,
            kind=kind,
            campaign_id=options.campaign_id,
            not_before=None,
            expires_at=options.expires_at,
            reply_to=reply_to,
            direct=direct,
            skip_if_contacted=skip_if_contacted,
        )
        job_id = doc["_id"]
        if doc["state"] not in TERMINAL and options.wait_seconds > 0:
            deadline = self.clock() + options.wait_seconds
            fut = self.events.waiters.watch(job_id, deadline)
            try:
                current = await self.stores.jobs.get(job_id)
                if (
                    current is not None
                    and current["state"] not in TERMINAL
                    and not _held_past(current, deadline)
                ):
                    self.events.wake()
                    await self.events.waiters.until(fut, options.wait_seconds)
            finally:
                self.events.waiters.forget(job_id, fut)
        doc = await self.stores.jobs.get(job_id) or doc
        return self.result(doc, duplicate=duplicate)

    async def _queue_one(
        self,
        spec: Spec,
        body: MessageBody,
        choice: AccountChoice,
        priority: Priority,
        *,
        kind: str,
        campaign_id: str | None,
        not_before: datetime | None,
        expires_at: datetime | None,
        reply_to: int | None,
        direct: bool = False,
        skip_if_contacted: bool = False,
        announce_campaign: bool = True,
        compliance: tuple[dict[str, list[str]], dict[str, dict[str, Any]]] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """The one job of an immediate send or a reply: compliance, a batch of one named by the job's
        key, three attempts, `message-queued`. Returns the job (the earlier one for a key already
        used) and whether it was that earlier one. `announce_campaign=False`: `message-queued` names
        no campaign (a reply's `campaign_id` tags its job for cancelling, as it always has).
        `compliance`: `_compliance_read` of the peer, when the caller made it already."""
        aliases = await self._compliance([spec], skip_if_contacted=skip_if_contacted, read=compliance)
        batch_id = "b" + hashlib.sha256(spec.key.encode()).hexdigest()[:20]
        out = await self._create(
            [spec],
            aliases=aliases,
            body=body,
            choice=choice,
            priority=priority,
            kind=kind,
            batch_id=batch_id,
            campaign_id=campaign_id,
            not_before=not_before,
            expires_at=expires_at,
            max_attempts=3,
            reply_to=reply_to,
            direct=direct,
        )
        await self._queued_event(
            batch_id,
            out,
            priority,
            campaign_id=campaign_id if announce_campaign else None,
            account_id=choice.account_id,
            lead_id=spec.lead_id,
            not_before=not_before,
            template_id=body.template_id,
        )
        doc = out[0].doc
        if doc is None:
            raise Conflict(f"idempotency key {spec.key!r} is taken by a job that cannot be read")
        return doc, out[0].duplicate

    def result(self, doc: Mapping[str, Any], *, duplicate: bool = False) -> messaging_cmd.SendResult:
        state = JobState(doc["state"])
        now = utc(self.clock())
        if state is JobState.SCHEDULED and doc.get("not_before") and doc["not_before"] <= now:
            state = JobState.PENDING
        waiting = state in (JobState.PENDING, JobState.SCHEDULED)
        return messaging_cmd.SendResult(
            job_id=doc["_id"],
            state=state,
            reason=doc.get("reason"),
            message_id=doc.get("message_id"),
            account_id=doc.get("account_id"),
            peer=doc["peer"],
            sent_at=doc.get("sent_at"),
            retry_at=doc.get("not_before") if waiting else None,
            last_error=doc.get("last_error"),
            duplicate=duplicate,
        )

    @answers(messaging_cmd.SendMessage)
    async def send_message(self, req: messaging_cmd.SendMessageRequest) -> messaging_cmd.SendResult:
        return await self.send(
            peer=req.peer, lead_id=req.lead_id, body=req, choice=req, options=req, kind="private"
        )

    @answers(messaging_cmd.SendPrivateMessage)
    async def send_private(self, req: messaging_cmd.SendPrivateMessageRequest) -> messaging_cmd.SendResult:
        return await self.send(
            peer=req.peer,
            lead_id=None,
            body=req,
            choice=AccountChoice(account_id=req.account_id),
            options=req,
            kind="private",
            reply_to=req.reply_to_message_id,
        )

    @answers(messaging_cmd.SendDirectMessage)
    async def send_direct(self, req: messaging_cmd.SendDirectMessageRequest) -> messaging_cmd.SendResult:
        return await self.send(
            peer=req.peer,
            lead_id=None,
            body=req,
            choice=req,
            options=req,
            kind="private",
            direct=True,
            skip_if_contacted=req.skip_if_contacted,
        )

    @answers(messaging_cmd.SendGroupMessage)
    async def send_group(self, req: messaging_cmd.SendGroupMessageRequest) -> messaging_cmd.SendResult:
        if req.group_id is not None:
            group = await self.stores.groups.get(req.group_id)
            if group is None:
                raise NotFound(f"monitored group {req.group_id} does not exist")
            chat: int | str | None = group.get("chat_id") or (
                "@" + group["username"] if group.get("username") else None
            )
            if chat is None:
                raise Conflict(f"monitored group {req.group_id} has no chat id or username yet")
        else:
            assert req.group is not None
            chat = req.group
            if isinstance(chat, str) and chat.startswith("+"):
                raise Invalid(
                    "an invite link is not a chat to post in: join the group first (join-group), then give "
                    "its id or @username",
                    {"field": "group"},
                )
            if isinstance(chat, int) and chat > 0:
                raise Invalid("a group id is negative (-100… for supergroups)", {"field": "group"})
        return await self.send(
            peer=chat,
            lead_id=None,
            body=req,
            choice=req,
            options=req,
            kind="group",
            reply_to=req.reply_to_message_id,
        )

    # --- automation's replies ----------------------------------------------------------------------

    async def read_reply(self, *, peer: int | str, body: MessageBody, lead_id: str | None) -> ReplyReads:
        """The reads of `reply` (see it); raises as it would (a missing or inactive template)."""
        _, lead, compliance = await asyncio.gather(
            self._check_body(body),
            self.stores.leads.get(lead_id) if lead_id is not None else _none(),
            self._compliance_read([peer_key(peer)]),
        )
        return ReplyReads(peer_key(peer), body.template_id, lead_id, lead, compliance)

    async def reply(
        self,
        *,
        peer: int | str,
        key: str,
        body: MessageBody,
        choice: AccountChoice,
        not_before: datetime | None,
        reply_to: int | None = None,
        lead_id: str | None = None,
        expires_at: datetime | None = None,
        campaign_id: str | None = None,
        reads: ReplyReads | None = None,
    ) -> messaging_cmd.SendResult:
        """A trigger rule's reply as a queued job (not waited on): to a user privately, or in a group
        (a negative chat id peer, `reply_to` its message; a pool job then only picks member accounts).
        `campaign_id` tags the job for `QueueControl.cancel_campaign` (a swarm's answers).
        `key` makes it idempotent (a second call answers the first job, `duplicate`); compliance
        applies as for any job (a blacklisted or opted-out user, a do-not-contact lead: `skipped`).

        On the path from a group message to its reply job (bench/automation/decision.py): the
        template's check, the lead, and the peer's aliases and blocks are independent reads, sent
        at once (one round trip; or made ahead, `reads`: `read_reply`'s, used when they fit this
        reply); then the job's insert. A refused check raises before any write."""
        ahead = reads if reads is not None and reads.fits(peer, body, lead_id) else None
        if ahead is None:
            ahead = await self.read_reply(peer=peer, body=body, lead_id=lead_id)
        elif body.attachment is not None:
            await self._check_body(body)  # its attachment's check (no read; the template's was made)
        lead, compliance = ahead.lead, ahead.compliance
        spec = Spec.of(
            peer,
            key,
            lead,
            lead_id=lead_id if lead is not None else None,
            account_chosen=choice.account_id is not None or choice.pool is not None,
        )
        if is_chat_peer(peer):
            spec.account_id = None  # a group reply: any member account, never the lead's assignee
        doc, duplicate = await self._queue_one(
            spec,
            body,
            choice,
            Priority.HIGH,
            kind="group" if is_chat_peer(peer) else "private",
            campaign_id=campaign_id,
            not_before=not_before,
            expires_at=expires_at,
            reply_to=reply_to,
            announce_campaign=False,
            compliance=compliance,
        )
        return self.result(doc, duplicate=duplicate)
