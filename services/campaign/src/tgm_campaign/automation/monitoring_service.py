"""Start/stop monitoring with the configuration and access check, the state that survives restarts,
and the watched chats published to tg-session (`tgm_monitored_chats` KV bucket).

Decisions:
- **The check** (start-monitoring, dryRun or not) reports `Issue`s:
  critical — NO_GROUPS (no active group, or every one paused), SESSION_UNAVAILABLE (tg-session did
  not answer: listeners cannot be verified), NO_LISTENER (the fleet has no account), LISTENER_OFFLINE
  (no listener account online), NO_KEYWORD_SETS (no watched group has an active keyword set bound),
  NO_ACCESSIBLE_GROUPS (every watched group cannot be joined);
  warning — NO_LISTENER_ROLE (no account has role `listener`: every account listens),
  LISTENER_OFFLINE (some listeners offline), GROUP_CANNOT_JOIN, GROUP_NEEDS_JOIN, GROUP_UNCHECKED,
  GROUP_NO_KEYWORD_SETS (per group).
  AI readiness of AI rules is NOT checked here (get-system-status reports the AI service).
- Each group's access is checked by `GroupService.check` (resolve, membership, join when autoJoin:
  a real start joins, a dry run only reports `can_join`), four groups at a time.
- **Critical issues keep monitoring as it was**: nothing is written, the answer's `active` is the
  stored state (false unless it was already on) and `issues` say why.
- **Watched groups**: monitoring active, the group active and not paused, and among the started
  `groupIds` when start named some (a group added later is then not watched until started again).
  `watching()` reads the state through a one-second cache (the inbound hot path).
- **republish()** writes `MonitoredChats` (active flag, chat ids of watched groups, usernames of those
  not resolved yet) whenever monitoring or a group changes, and at every start of the service.
  It never raises for the KV: when NATS is away it logs, remembers the write is owed, and writes
  again on the next change, or on the next `watching()`/`status()` call at most every
  `RETRY_SECONDS`. After a write it reads the state again and writes once more if it moved, so two
  replicas racing cannot leave an older snapshot as the last value. The revision is a fleet-wide
  counter in the `monitoring` document.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_campaign import MonitoringStateChanged
from tgm_contracts.models.campaign import MonitoredChats
from tgm_runtime import DomainError, NotFound
from tgm_runtime.routes import answers

from ..messaging.clock import Clock, utc
from .group_service import GroupService, Listeners, listener_state
from .ports import Call, Emit, PublishChats
from .store import AutomationStores

log = logging.getLogger("tgm.campaign.monitoring")

STATE_SECONDS = 1.0
RETRY_SECONDS = 5.0
PUBLISH_TIMEOUT = 5.0
CHECK_CONCURRENCY = 4

Snapshot = tuple[bool, tuple[int, ...], tuple[str, ...]]
#: Seconds of disagreement allowed between Telegram's message dates and our clock.
WRITTEN_TOLERANCE = 2.0


def aware(at: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (the database may hand back naive ones)."""
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


Severity = Literal["critical", "warning", "info"]


def _issue(code: str, severity: Severity, message: str, fix: str | None = None) -> cmd.Issue:
    return cmd.Issue(code=code, severity=severity, message=message, fix=fix)


def _name(doc: Mapping[str, Any]) -> str:
    return str(doc.get("title") or doc.get("username") or doc.get("ref_key") or doc["_id"])


class MonitoringService:
    def __init__(
        self,
        stores: AutomationStores,
        groups: GroupService,
        call: Call,
        emit: Emit,
        clock: Clock,
        publish_chats: PublishChats,
    ) -> None:
        self.stores, self.groups, self.call, self.emit = stores, groups, call, emit
        self.clock, self.publish_chats = clock, publish_chats
        self._state: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()
        self._published: Snapshot | None = None
        self._owed = False
        self._failed_at = -float("inf")
        groups.on_change = self._group_changed
        groups.keywords.on_groups_changed = self.republish
        #: Other domains' chats tg-session must publish too (collaboration runs, swarms): each source
        #: answers the chat ids it needs now; its owner calls `republish()` when that changes.
        self._sources: list[Callable[[], Awaitable[set[int]]]] = []

    def also_watch(self, source: Callable[[], Awaitable[set[int]]]) -> None:
        """Publish these chats' messages whether monitoring is on or not (they are not matched
        against keyword sets: only monitored groups are, while monitoring is active)."""
        self._sources.append(source)

    # --- commands ---------------------------------------------------------------------------------

    @answers(cmd.StartMonitoring, principal=True)
    async def start(self, req: cmd.StartMonitoringRequest, by: str | None) -> cmd.MonitoringStatus:
        if req.group_ids:
            missing = await self.groups.missing(req.group_ids)
            if missing:
                raise NotFound(
                    f"group(s) {', '.join(missing)} do not exist", {"field": "groupIds", "missing": missing}
                )
        docs = [d for d in await self.groups.all(req.group_ids) if d.get("is_active", True)]
        report = await self._check(docs, join=not req.dry_run)
        critical = [i for i in report.issues if i.severity == "critical"]
        state = await self._read_state()
        if req.dry_run or critical:
            what = "dry run" if req.dry_run else "not started"
            verdict = f"{len(critical)} critical issue(s)" if critical else "ready to start"
            return report.model_copy(
                update={
                    "active": bool(state.get("active")),
                    "started_at": state.get("started_at"),
                    "message": f"{what}: {verdict}",
                }
            )
        state = await self.stores.monitoring.set_active(True, req.group_ids, by, utc(self.clock()))
        self._state = (time.monotonic(), state)
        await self.republish()
        online = sum(1 for v in report.listeners if v.state == "listening")
        await self.emit(
            MonitoringStateChanged(active=True, groups_watched=report.groups_watched, listeners=online)
        )
        return report.model_copy(
            update={
                "active": True,
                "started_at": state.get("started_at"),
                "message": f"monitoring {report.groups_watched} group(s) with {online} listener(s)",
            }
        )

    @answers(cmd.StopMonitoring, principal=True)
    async def stop(self, by: str | None) -> cmd.MonitoringStatus:
        state = await self.stores.monitoring.set_active(False, None, by, utc(self.clock()))
        self._state = (time.monotonic(), state)
        await self.republish()
        await self.emit(MonitoringStateChanged(active=False, groups_watched=0, reason="stopped"))
        status = await self.status()
        return status.model_copy(update={"message": "monitoring stopped"})

    async def status(self) -> cmd.MonitoringStatus:
        """The current state without running the access check (for get-system-status)."""
        await self._retry_owed()
        state = await self._read_state(fresh=True)
        docs = [d for d in await self.groups.all() if d.get("is_active", True)]
        watched = sum(1 for d in docs if self._watched(state, d))
        return cmd.MonitoringStatus(
            active=bool(state.get("active")),
            started_at=state.get("started_at") if state.get("active") else None,
            groups_total=len(docs),
            groups_watched=watched,
            groups_paused=sum(1 for d in docs if d.get("paused")),
        )

    # --- used by the inbound path -----------------------------------------------------------------

    async def watching(self, group: Mapping[str, Any]) -> bool:
        """Monitoring is active and this group (active, not paused, among the started ones) is watched."""
        await self._retry_owed()
        return self._watched(await self._read_state(), group)

    async def watched_when_written(self, group: Mapping[str, Any], written: datetime) -> bool:
        """Whether the group was watched when a message was written: not before monitoring started,
        not while the group was paused. A message can arrive late — caught up after tg-session was
        down, or fetched from history when a chat becomes watched again — and is judged by when it
        was written, not when it arrived (`WRITTEN_TOLERANCE` for clocks that disagree a little)."""
        state = await self._read_state()
        written = aware(written) or written
        slack = timedelta(seconds=WRITTEN_TOLERANCE)
        started = aware(state.get("started_at"))
        if started is not None and written + slack < started:
            return False
        paused, resumed = aware(group.get("paused_at")), aware(group.get("resumed_at"))
        return not (paused is not None and resumed is not None and paused + slack < written < resumed - slack)

    async def republish(self) -> None:
        """Write the watched chats to the KV bucket again (after a group changed, and at start).
        Never raises for the KV (see the module docstring); a write it could not make is owed.

        It always writes (never "unchanged since this replica's last write": another replica may have
        written since, and a skipped write would leave its value standing); calls are rare (a change
        of monitoring, a group, a set, a run or a swarm), and a put is cheap."""
        async with self._lock:
            for _ in range(3):
                snapshot = await self._snapshot()
                revision = await self.stores.monitoring.next_revision()
                value = MonitoredChats(
                    active=snapshot[0],
                    chat_ids=list(snapshot[1]),
                    usernames=list(snapshot[2]),
                    revision=revision,
                    updated_at=utc(self.clock()),
                )
                try:
                    async with asyncio.timeout(PUBLISH_TIMEOUT):
                        await self.publish_chats(value)
                except Exception as exc:  # NATS or its KV away: owed, written on the next chance
                    self._owed, self._failed_at = True, time.monotonic()
                    log.warning("monitored chats not written (revision %s), retried later: %r", revision, exc)
                    return
                self._published, self._owed = snapshot, False
                if await self._snapshot() == snapshot:
                    return

    # --- the check --------------------------------------------------------------------------------

    async def _check(self, docs: Sequence[dict[str, Any]], *, join: bool) -> cmd.MonitoringStatus:
        issues: list[cmd.Issue] = []
        paused = [d for d in docs if d.get("paused")]
        live = [d for d in docs if not d.get("paused")]
        if not docs:
            issues.append(_issue("NO_GROUPS", "critical", "no group is monitored", "add one with add-group"))
        elif not live:
            issues.append(
                _issue(
                    "NO_GROUPS",
                    "critical",
                    "every monitored group is paused",
                    "resume one with resume-monitoring",
                )
            )
        fleet: Listeners | None = None
        try:
            fleet = await self.groups.listeners(None)
        except DomainError as exc:
            issues.append(
                _issue(
                    "SESSION_UNAVAILABLE",
                    "critical",
                    f"tg-session did not answer ({exc.message}): listener accounts cannot be checked",
                    "start tg-session and check its connection to NATS",
                )
            )
        if fleet is not None:
            issues.extend(self._listener_issues(fleet))

        semaphore = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def one(doc: dict[str, Any]) -> tuple[dict[str, Any], cmd.GroupAccess]:
            async with semaphore:
                return await self.groups.check(doc, join=join, listeners=fleet)

        checked: list[tuple[dict[str, Any], cmd.GroupAccess]] = []
        if fleet is not None and live:
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(one(d)) for d in live]
            checked = [t.result() for t in tasks]
        else:
            checked = [(d, self.groups.access_of(d)) for d in live]
        for doc, access in checked:
            issues.extend(self._access_issues(doc, access, join))
        if checked and all(a.access == "cannot_join" for _, a in checked):
            issues.append(
                _issue(
                    "NO_ACCESSIBLE_GROUPS",
                    "critical",
                    "no monitored group can be joined by a listener account",
                    "check the groups' links and the listeners' bans; see GROUP_CANNOT_JOIN",
                )
            )
        active_sets = {d["_id"] for d in await self.stores.keyword_sets.find(active_only=True)}
        bare = [d for d, _ in checked if not set(d.get("keyword_set_ids") or []) & active_sets]
        for d in bare:
            issues.append(
                _issue(
                    "GROUP_NO_KEYWORD_SETS",
                    "warning",
                    f"group {_name(d)} has no active keyword set bound",
                    f"bind-keyword-set groupId={d['_id']}",
                )
            )
        if live and len(bare) == len(live):
            issues.append(
                _issue(
                    "NO_KEYWORD_SETS",
                    "critical",
                    "no watched group has an active keyword set: no message could match",
                    "create one with add-keyword-set and bind it with bind-keyword-set",
                )
            )
        members: dict[str, int] = {}
        for doc, _ in checked:
            for account in doc.get("member_account_ids") or []:
                members[account] = members.get(account, 0) + 1
        listeners = [
            cmd.ListenerView(
                account_id=a.id,
                state=listener_state(a),
                groups=members.get(a.id, 0),
                error=None
                if listener_state(a) in ("listening", "starting")
                else a.state_reason or a.state.value,
            )
            for a in (fleet.accounts if fleet else [])
        ]
        severity = {"critical": 0, "warning": 1, "info": 2}
        return cmd.MonitoringStatus(
            active=False,
            groups_total=len(docs),
            groups_watched=len(live),
            groups_paused=len(paused),
            listeners=listeners,
            issues=sorted(issues, key=lambda i: severity[i.severity]),
            groups=[a for _, a in checked],
        )

    def _listener_issues(self, fleet: Listeners) -> list[cmd.Issue]:
        online, total = fleet.online, len(fleet.accounts)
        if fleet.rule == "all" and not total:
            return [
                _issue(
                    "NO_LISTENER",
                    "critical",
                    "the fleet has no account to listen with",
                    "add and log in an account",
                )
            ]
        out: list[cmd.Issue] = []
        if fleet.rule == "all":
            out.append(
                _issue(
                    "NO_LISTENER_ROLE",
                    "warning",
                    "no account has role listener: every account of the fleet listens",
                    "give the listening accounts role listener (set-account-role)",
                )
            )
        kind = "listener account" if fleet.rule == "role" else "account"
        if not online:
            out.append(
                _issue(
                    "LISTENER_OFFLINE",
                    "critical",
                    f"none of the {total} {kind}(s) is online",
                    "connect them (connect-account, or one-click-start)",
                )
            )
        elif len(online) < total:
            offline = [a.id for a in fleet.accounts if a.id not in online]
            out.append(
                _issue(
                    "LISTENER_OFFLINE",
                    "warning",
                    f"{len(offline)} of {total} {kind}(s) offline: {', '.join(offline[:10])}",
                    "connect them (connect-account)",
                )
            )
        return out

    def _access_issues(self, doc: Mapping[str, Any], access: cmd.GroupAccess, join: bool) -> list[cmd.Issue]:
        name, detail = _name(doc), access.detail or ""
        if access.access == "cannot_join":
            return [
                _issue(
                    "GROUP_CANNOT_JOIN",
                    "warning",
                    f"group {name} cannot be watched: {detail}",
                    "check the link or invite, or remove the group (remove-group)",
                )
            ]
        if access.access == "can_join":
            auto = doc.get("auto_join", True)
            return [
                _issue(
                    "GROUP_NEEDS_JOIN",
                    "info" if auto and not join else "warning",
                    f"group {name}: {detail}",
                    None if auto else "join it with join-group, or add it again with autoJoin",
                )
            ]
        if access.access == "unknown":
            return [
                _issue(
                    "GROUP_UNCHECKED", "warning", f"group {name} not checked: {detail}", "start again later"
                )
            ]
        return []

    # --- state and snapshots ----------------------------------------------------------------------

    async def _read_state(self, fresh: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        if not fresh and self._state is not None and now - self._state[0] < STATE_SECONDS:
            return self._state[1]
        state = await self.stores.monitoring.get()
        self._state = (now, state)
        return state

    @staticmethod
    def _watched(state: Mapping[str, Any], group: Mapping[str, Any]) -> bool:
        if not state.get("active") or not group.get("is_active", True) or group.get("paused"):
            return False
        chosen = state.get("group_ids")
        return chosen is None or group.get("_id") in chosen

    async def _snapshot(self) -> Snapshot:
        state = await self.stores.monitoring.get()
        self._state = (time.monotonic(), state)
        chat_ids: set[int] = set()
        for source in self._sources:
            chat_ids |= await source()
        usernames: set[str] = set()
        if not state.get("active"):
            return (bool(chat_ids), tuple(sorted(chat_ids)), ())
        for doc in await self.groups.all(state.get("group_ids")):
            if not self._watched(state, doc):
                continue
            if doc.get("chat_id") is not None:
                chat_ids.add(int(doc["chat_id"]))
            elif doc.get("username"):
                usernames.add(str(doc["username"]).lower())
        return (True, tuple(sorted(chat_ids)), tuple(sorted(usernames)))

    async def _retry_owed(self) -> None:
        if self._owed and time.monotonic() - self._failed_at >= RETRY_SECONDS:
            await self.republish()

    async def _group_changed(self, doc: Mapping[str, Any] | None, what: str) -> None:
        await self.republish()
        if doc is not None and what in ("paused", "resumed"):
            state = await self._read_state()
            watched = self._published[1] if self._published else ()
            await self.emit(
                MonitoringStateChanged(
                    active=bool(state.get("active")),
                    groups_watched=len(watched) + len(self._published[2] if self._published else ()),
                    group_id=doc["_id"],
                    group_paused=what == "paused",
                    reason=doc.get("pause_reason") if what == "paused" else "resumed",
                )
            )
