"""get-system-status: what automation needs to run, in one look, with warnings and their fixes.

Where each part comes from (all gathered concurrently; every call to another service has a deadline
of `DEADLINE` seconds, and a service that does not answer in time, or at all, is marked
`available: false` — never a hang, never an error for the whole status):

- accounts: tg-session's `get-accounts` (paged, `ACCOUNT_PAGES` pages of 500 at most). `online` =
  tg-session holds a connected session. Roles follow the listener rule of monitoring: listeners are
  the accounts with role `listener`, or every account when none has that role; senders are the
  accounts with role `sender`, or every account that is not a listener when none has that role
  (messaging's automatic pool may use any account). A listener is online when connected and
  `active` or in a flood wait (it still reads); a sender when connected and `active`.
- monitoring: `MonitoringService.status()` (the stored state, no access check).
- ai: the ai service's `get-ai-settings` (default provider, whether it has what it needs) and its
  `ai` settings section (`autoReply`), read through ai's `sys settings-get` (`AiControl`, shared
  with one-click). `canReply`: the default provider is `local` (always), or enabled with a key.
- keyword sets, keywords, groups, trigger rules, campaigns, templates: counts from the stores.
- queue: messaging's `StatusService.summary()` (totals and the whole-queue pause, database only).

A part of this service that fails (a bug, the database briefly away) is reported as a warning
`STATUS_PART_FAILED` with the part named, and its figures stay at zero: a status screen that shows
what it could is worth more than an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Literal, TypeVar

from tgm_contracts.base import Empty
from tgm_contracts.commands import automation as cmd
from tgm_contracts.commands.accounts import GetAccounts, GetAccountsRequest
from tgm_contracts.models.ai import AiSettingsView
from tgm_contracts.models.session import AccountRole, AccountState, AccountView
from tgm_runtime import DomainError
from tgm_runtime.routes import answers

from ..messaging.clock import Clock, utc
from ..messaging.status import StatusService
from ..messaging.stores import MessagingStores
from .ai_control import AiControl, SysRequest
from .campaign_service import CampaignService
from .monitoring_service import MonitoringService
from .ports import Call
from .store import AutomationStores

log = logging.getLogger("tgm.campaign.automation.status")

T = TypeVar("T")

#: Seconds another service has to answer one status call.
DEADLINE = 2.0
#: Pages of 500 accounts read from tg-session at most (10,000 accounts).
ACCOUNT_PAGES = 20
#: Account states a connected account reads messages in (as monitoring counts listeners online) and
#: sends in (a flood wait or peer flood holds its sends).
READING = frozenset({AccountState.ACTIVE, AccountState.FLOOD_WAIT})
SENDING = frozenset({AccountState.ACTIVE})
#: A due job older than this makes a QUEUE_STALLED warning.
STALL_SECONDS = 600.0


def can_reply(view: AiSettingsView) -> bool:
    """Whether the default provider can answer: `local` always; a remote one enabled with its key."""
    provider = view.default_provider
    if provider == "local":
        return True
    if provider == "openai":
        return view.openai.enabled and view.openai.api_key_set
    if provider == "maiagent":
        return view.maiagent.enabled and view.maiagent.api_key_set
    return view.dmflow.enabled and view.dmflow.api_key_set


Severity = Literal["critical", "warning", "info"]


def _issue(code: str, severity: Severity, message: str, fix: str | None = None) -> cmd.Issue:
    return cmd.Issue(code=code, severity=severity, message=message, fix=fix)


class SystemStatusService:
    def __init__(
        self,
        stores: AutomationStores,
        monitoring: MonitoringService,
        campaigns: CampaignService,
        queue_status: StatusService,
        messaging: MessagingStores,
        call: Call,
        clock: Clock,
        request: SysRequest,
        deadline: float = DEADLINE,
    ) -> None:
        self.stores, self.monitoring, self.campaigns = stores, monitoring, campaigns
        self.queue_status, self.messaging, self.call, self.clock = queue_status, messaging, call, clock
        self.ai = AiControl(call, request, deadline)
        self.deadline = deadline

    @answers(cmd.GetSystemStatus)
    async def status(self, req: Empty) -> cmd.SystemStatus:
        failed: list[str] = []

        async def part(name: str, work: Awaitable[T], fallback: T) -> T:
            try:
                return await asyncio.wait_for(work, self.deadline * 2)
            except Exception as exc:  # see the module docstring: one part never fails the status
                log.warning("system status: %s failed: %r", name, exc)
                failed.append(name)
                return fallback

        remote = asyncio.gather(
            part("accounts", self._accounts(), cmd.AccountsSummary(available=False)),
            part("ai", self._ai(), cmd.AiSummary(available=False)),
            part("monitoring", self.monitoring.status(), cmd.MonitoringStatus(active=False)),
        )
        local = asyncio.gather(
            part("keyword sets", self._keyword_sets(), (cmd.CountActive(), 0)),
            part("groups", self._groups(), cmd.CountActive()),
            part("trigger rules", self._rules(), (cmd.CountActive(), 0)),
            part("campaigns", self.campaigns.counts(), cmd.CountActive()),
            part("templates", self._templates(), cmd.CountActive()),
            part("queue", self._queue(), cmd.QueueSummary()),
        )
        (accounts, ai, monitoring), (sets, groups, rules, campaigns, templates, queue) = await asyncio.gather(
            remote, local
        )
        keyword_sets, keywords = sets
        trigger_rules, ai_rules = rules
        warnings = self._warnings(
            accounts, monitoring, ai, keyword_sets, groups, trigger_rules, ai_rules, queue
        )
        for name in failed:
            warnings.append(
                _issue(
                    "STATUS_PART_FAILED",
                    "warning",
                    f"The {name} figures could not be read; they show as zero.",
                    "Look at the campaign service's logs; retry in a moment.",
                )
            )
        return cmd.SystemStatus(
            accounts=accounts,
            monitoring=monitoring,
            ai=ai,
            keyword_sets=keyword_sets,
            keywords=keywords,
            groups=groups,
            trigger_rules=trigger_rules,
            campaigns=campaigns,
            templates=templates,
            queue=queue,
            warnings=warnings,
            generated_at=utc(self.clock()),
        )

    # --- the parts ---------------------------------------------------------------------------------

    async def _accounts(self) -> cmd.AccountsSummary:
        """tg-session's accounts, every page within one deadline; unavailable when it does not answer."""
        end = time.monotonic() + self.deadline
        views: list[AccountView] = []
        cursor: str | None = None
        try:
            for _ in range(ACCOUNT_PAGES):
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError("tg-session did not list every account in time")
                page = await asyncio.wait_for(
                    self.call(GetAccounts, GetAccountsRequest(limit=500, cursor=cursor), left), left
                )
                views.extend(page.items)
                cursor = page.next_cursor
                if not cursor:
                    break
        except (DomainError, TimeoutError) as exc:
            log.info("system status: tg-session accounts unavailable: %s", exc)
            return cmd.AccountsSummary(available=False)
        return summarise_accounts(views)

    async def _ai(self) -> cmd.AiSummary:
        try:
            view, auto = await asyncio.gather(
                asyncio.wait_for(self.ai.settings(), self.deadline),
                asyncio.wait_for(self.ai.auto_reply(), self.deadline),
            )
        except (DomainError, TimeoutError) as exc:
            log.info("system status: ai unavailable: %s", exc)
            return cmd.AiSummary(available=False)
        return cmd.AiSummary(
            available=True, auto_reply=auto, provider=view.default_provider, can_reply=can_reply(view)
        )

    async def _keyword_sets(self) -> tuple[cmd.CountActive, int]:
        total, active, keywords = await self.stores.keyword_sets.counts()
        return cmd.CountActive(total=total, active=active), keywords

    async def _groups(self) -> cmd.CountActive:
        total, active = await self.stores.groups.counts()
        return cmd.CountActive(total=total, active=active)

    async def _rules(self) -> tuple[cmd.CountActive, int]:
        """Rules in all and active, and the active ones with an AI reply (for the AI warnings)."""
        total = await self.stores.rules.count()
        active = await self.stores.rules.find(active_only=True)
        ai_rules = sum(
            1 for r in active if any((a or {}).get("type") == "ai_reply" for a in r.get("actions") or [])
        )
        return cmd.CountActive(total=total, active=len(active)), ai_rules

    async def _templates(self) -> cmd.CountActive:
        total, active = await self.messaging.templates.counts()
        return cmd.CountActive(total=total, active=active)

    async def _queue(self) -> cmd.QueueSummary:
        totals, paused = await self.queue_status.summary()
        return cmd.QueueSummary(**totals.model_dump(), paused=paused)

    # --- warnings ----------------------------------------------------------------------------------

    def _warnings(
        self,
        accounts: cmd.AccountsSummary,
        monitoring: cmd.MonitoringStatus,
        ai: cmd.AiSummary,
        keyword_sets: cmd.CountActive,
        groups: cmd.CountActive,
        rules: cmd.CountActive,
        ai_rules: int,
        queue: cmd.QueueSummary,
    ) -> list[cmd.Issue]:
        out: list[cmd.Issue] = []
        if not accounts.available:
            out.append(
                _issue(
                    "TG_SESSION_UNAVAILABLE",
                    "critical",
                    "tg-session did not answer: accounts are unknown and nothing can be watched or sent.",
                    "Start (or restart) the tg-session service and check its logs.",
                )
            )
        elif accounts.total == 0:
            out.append(
                _issue("NO_ACCOUNTS", "critical", "There are no accounts.", "Add and log in an account.")
            )
        else:
            if accounts.listeners_online == 0:
                out.append(
                    _issue(
                        "NO_LISTENER_ONLINE",
                        "critical",
                        "No listener account is online: monitored groups are not watched.",
                        "Connect an account with the listener role (or any account when none has it).",
                    )
                )
            if accounts.senders_online == 0:
                out.append(
                    _issue(
                        "NO_SENDER_ONLINE",
                        "warning",
                        "No sender account is online: replies and campaign messages wait in the queue.",
                        "Connect an account with the sender role.",
                    )
                )
        if groups.total == 0:
            out.append(
                _issue(
                    "NO_GROUPS", "warning", "No group is monitored.", "Add a group to monitor (add-group)."
                )
            )
        elif groups.active == 0:
            out.append(
                _issue(
                    "ALL_GROUPS_PAUSED",
                    "warning",
                    "Every monitored group is inactive or paused.",
                    "Resume monitoring of a group (resume-monitoring).",
                )
            )
        elif not monitoring.active:
            out.append(
                _issue(
                    "MONITORING_OFF",
                    "info",
                    "Monitoring is stopped: group messages are not matched.",
                    "Start monitoring (start-monitoring or one-click-start).",
                )
            )
        if keyword_sets.active == 0:
            out.append(
                _issue(
                    "NO_KEYWORD_SETS",
                    "warning",
                    "No active keyword set: no message can match.",
                    "Create a keyword set and bind it to the monitored groups.",
                )
            )
        if rules.active == 0:
            out.append(
                _issue(
                    "NO_ACTIVE_RULES",
                    "warning",
                    "No active trigger rule: matches are recorded but nothing replies.",
                    "Create or activate a trigger rule (save-trigger-rule, toggle-trigger-rule).",
                )
            )
        if ai_rules:
            if not ai.available:
                out.append(
                    _issue(
                        "AI_UNAVAILABLE",
                        "critical",
                        f"{ai_rules} active rule(s) reply by AI but the ai service did not answer.",
                        "Start (or restart) the ai service.",
                    )
                )
            elif not ai.can_reply:
                out.append(
                    _issue(
                        "AI_PROVIDER_NOT_READY",
                        "critical",
                        f"{ai_rules} active rule(s) reply by AI but provider {ai.provider} is not configured.",
                        "Enable the provider with its API key (save-ai-settings), or use `local`.",
                    )
                )
        elif not ai.available:
            out.append(
                _issue(
                    "AI_UNAVAILABLE",
                    "info",
                    "The ai service did not answer (no active rule needs it).",
                    "Start the ai service before using AI replies.",
                )
            )
        if queue.paused:
            out.append(
                _issue(
                    "QUEUE_PAUSED",
                    "warning",
                    "The whole queue is paused: nothing is sent.",
                    "Resume the queue (resume-queue or one-click-start).",
                )
            )
        age = queue.oldest_pending_age_seconds
        if not queue.paused and age is not None and age > STALL_SECONDS:
            out.append(
                _issue(
                    "QUEUE_STALLED",
                    "warning",
                    f"A due job has waited {int(age // 60)} minutes.",
                    "Check that sender accounts are online and not in a flood wait (get-queue-status).",
                )
            )
        return out


def summarise_accounts(views: list[AccountView]) -> cmd.AccountsSummary:
    """Totals and roles (see the module docstring for the listener and sender rules)."""
    listeners = [v for v in views if v.role is AccountRole.LISTENER] or views
    listener_ids = {v.id for v in listeners}
    senders = [v for v in views if v.role is AccountRole.SENDER] or [
        v for v in views if v.id not in listener_ids or len(listeners) == len(views)
    ]
    online = sum(1 for v in views if v.connected)
    return cmd.AccountsSummary(
        available=True,
        total=len(views),
        online=online,
        offline=len(views) - online,
        senders_total=len(senders),
        senders_online=sum(1 for v in senders if v.connected and v.state in SENDING),
        listeners_online=sum(1 for v in listeners if v.connected and v.state in READING),
    )
