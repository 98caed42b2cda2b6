"""The statistics consumer: every event of every service folded into facts (facts.py) and projections.

Projections (state rather than history), each written only with idempotent, order-independent updates
(`$min`/`$max`, or "set if this event is newer"), so applying an event twice or out of order gives the
same document:

- `stats_jobs` job id -> campaign and lead, from campaign `message-queued` and `message-sent`, and the
  trigger rule that queued it (`auto`, from `trigger-fired`'s `jobIds`). A fact carrying a job id gets
  its campaign (and a send its origin `automation`) from it; whichever of the two arrives second links
  them (the fact is written first and then looks the job up; the job is written first and then fills
  its facts).
- `stats_accounts` account -> current state, when added and removed (`account-removed`), and its own
  Telegram user id (`tg`, from `account-logged-in`'s profile: the fleet's users, which the queries
  leave out of member and lead figures and count apart in `received`). The state is the one of the
  newest `account-status-changed` (by its `stateAt`, else `occurredAt`); `account-added` sets `new`
  only while no state is known and with no time, so any status change supersedes it whichever
  arrives first (a QR login makes its new account `active` in the same step that creates it).
- `stats_users` user -> first private contact with the fleet (our send to them or their message).
- `stats_leads` lead -> capture time and source, first time each stage was reached, current stage,
  the first campaign and account that messaged it (campaign `message-sent`/`message-queued` with a lead).
- `stats_group_chats` campaign group id -> Telegram chat id (from `keyword-matched`), to place leads
  captured in a group.
- `stats_campaigns` automation campaign id -> latest counters (`campaign-progress`, newest snapshot
  wins: `progress_at`) and latest status (`campaign-state-changed`, newest wins: `status_at`), with
  `last_at` for the retention sweep.
- `stats_meta`: `general` (the gateway's `general` settings, from `settings-changed`, for the time zone)
  and `monitoring` (latest `groupsWatched` of campaign `monitoring-state-changed`).

Nothing is lost on a crash: the consumer acknowledges an event only after all its writes returned, and
every write can be repeated, so a redelivery completes whatever a crash interrupted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tgm_contracts import Service
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts
from tgm_contracts import events_system as sy
from tgm_contracts import sys as sysops
from tgm_contracts.events import Event
from tgm_runtime import ServiceRuntime

from .facts import fact_of
from .store import FactStore


class Ingest:
    """Folds one event at a time into facts and projections (see the module docstring)."""

    def __init__(self, store: FactStore) -> None:
        self.store = store

    async def handle(self, evt: Event) -> None:
        await self._project(evt)
        fact = fact_of(evt)
        if fact is None:
            return
        if fact["_id"] != evt.event_id and await self.store.has_fact(evt.event_id):
            return  # counted under the event's id, before facts were keyed by their message (facts.py)
        if fact["k"] == "trigger" and "g" in fact and "ch" not in fact:
            # A firing names its monitored group; its chat (for the chat filters) comes from the
            # keyword match of the same message, which campaign publishes before the firing.
            chat = (await self.store.chats_of_groups([fact["g"]])).get(fact["g"])
            if chat is not None:
                fact["ch"] = chat
        job = fact.get("j")
        linked = False
        if job is not None and ("c" not in fact or fact.get("o") == "queue"):
            link = await self.store.job_link(job)
            linked = link is not None
            _apply_link(fact, link)
        await self.store.add_fact(fact)
        if fact["k"] == "sent" and fact.get("o") != "external":
            await self.store.claim_send(fact)
        if job is not None and not linked and ("c" not in fact or fact.get("o") == "queue"):
            # The job's link may have been recorded between our look-up and our insert.
            link = await self.store.job_link(job)
            if link is not None:
                await self.store.fill_from_link(fact["_id"], link)
        if fact["k"] in ("sent", "received") and fact.get("ck") == "private" and "u" in fact:
            await self.store.first_contact(fact)

    async def _project(self, evt: Event) -> None:
        t = evt.occurred_at
        store = self.store
        if isinstance(evt, cp.MessageQueued) and evt.campaign_id and evt.job_ids:
            await store.link_jobs(evt.job_ids, evt.campaign_id, evt.lead_id, t)
            if evt.lead_id:
                await store.attribute_lead(evt.lead_id, evt.campaign_id, evt.account_id)
        elif isinstance(evt, cp.MessageSent):
            if evt.campaign_id:
                await store.link_jobs([evt.job_id], evt.campaign_id, evt.lead_id, t)
            if evt.lead_id:
                await store.attribute_lead(evt.lead_id, evt.campaign_id, evt.account_id)
        elif isinstance(evt, ts.AccountAdded):
            await store.account_added(evt.account_id, t)
        elif isinstance(evt, ts.AccountStatusChanged):
            await store.account_state(evt.account_id, evt.state.value, evt.state_at or t)
        elif isinstance(evt, ts.AccountLoggedIn) and evt.profile.telegram_id is not None:
            await store.fleet_user(evt.account_id, evt.profile.telegram_id)
        elif isinstance(evt, cp.TriggerFired) and evt.job_ids:
            await store.automation_jobs(evt.job_ids, evt.rule_id, t)
        elif isinstance(evt, ts.AccountRemoved):
            await store.account_removed(evt.account_id, t)
        elif isinstance(evt, cp.LeadCaptured):
            captured: dict[str, Any] = {"source": evt.source_type}
            if evt.user_id is not None:
                captured["user"] = evt.user_id
            if evt.source_group_id is not None:
                captured["group"] = evt.source_group_id
            await store.lead_reached(evt.lead_id, evt.stage.value, t, captured)
        elif isinstance(evt, cp.LeadStageChanged):
            await store.lead_reached(evt.lead_id, evt.to_stage.value, t)
        elif isinstance(evt, cp.KeywordMatched) and evt.chat_id is not None:
            await store.group_chat(evt.group_id, evt.chat_id)
        elif isinstance(evt, cp.CampaignProgress):
            figures: dict[str, Any] = {
                "targets": evt.targets,
                "queued": evt.queued,
                "sent": evt.sent,
                "failed": evt.failed,
                "skipped": evt.skipped,
                "replied": evt.replied,
                "percent": evt.percent,
            }
            if evt.name is not None:
                figures["name"] = evt.name
            await store.campaign_figures(evt.campaign_id, t, figures)
        elif isinstance(evt, cp.CampaignStateChanged) and evt.kind == "campaign":
            status: dict[str, Any] = {"status": evt.status.value}
            if evt.name is not None:
                status["name"] = evt.name
            await store.campaign_status(evt.campaign_id, t, status)
        elif isinstance(evt, cp.MonitoringStateChanged) and evt.group_id is None:
            await store.meta_if_newer("monitoring", "at", t, {"groups_watched": evt.groups_watched})
        elif isinstance(evt, sy.SettingsChanged) and evt.section == "general":
            tz = evt.values.get("timezone")
            if isinstance(tz, str):
                await store.meta_if_newer("general", "version", evt.version, {"timezone": tz})


def _apply_link(fact: dict[str, Any], link: dict[str, Any] | None) -> None:
    """A fact of a job takes the job's campaign and, for a send, the origin `automation` of a job a
    trigger rule queued."""
    if link is None:
        return
    if link.get("c") and "c" not in fact:
        fact["c"] = link["c"]
    if link.get("auto") and fact.get("o") == "queue":
        fact["o"] = "automation"


def gateway_timezone(runtime: ServiceRuntime[Any]) -> Callable[[], Awaitable[str | None]]:
    """Ask the gateway for its `general.timezone` (for GeneralZone, while no settings event came)."""

    async def ask() -> str | None:
        reply = await runtime.request(
            sysops.SettingsGet.subject(Service.GATEWAY),
            {"sections": ["general"]},
            sysops.SettingsSections,
            timeout=2.0,
        )
        for section in reply.sections:
            if section.section == "general":
                tz = section.values.get("timezone")
                return tz if isinstance(tz, str) else None
        return None

    return ask
