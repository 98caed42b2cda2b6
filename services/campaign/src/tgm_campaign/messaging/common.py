"""What the messaging use cases share: time helpers, the wiring of stores and outside calls, job
events (and the local waiters of immediate sends), and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tgm_contracts.events import Event
from tgm_contracts.events_campaign import JobStateChanged
from tgm_contracts.models.campaign import JobState
from tgm_contracts.settings import ComplianceSettings, PacingSettings

from .accounts import AccountDirectory
from .compliance import ComplianceStore, StopWords
from .history import HistoryStore
from .pacing import Limits
from .pacing_store import PacingStore
from .queue import JobStore
from .repos import Groups, Leads, Leases, PauseRepo, TemplateRepo

log = logging.getLogger("tgm.campaign")

Clock = Callable[[], float]


def utc(ts: float) -> datetime:
    """Epoch seconds as an aware datetime with the database's millisecond precision."""
    whole = int(ts * 1000)
    return datetime.fromtimestamp(whole / 1000, UTC)


def epoch(at: datetime) -> float:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.timestamp()


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Gauge(
            "tgm_campaign_jobs", "Jobs by state (last queue snapshot)", ["state"], registry=registry
        )
        self.oldest = Gauge(
            "tgm_campaign_oldest_pending_seconds", "Age of the oldest due, unsent job", registry=registry
        )
        self.sends = Counter(
            "tgm_campaign_dispatch_total",
            "Dispatch outcomes (sent, failed, flood_wait, …)",
            ["outcome"],
            registry=registry,
        )
        self.waiting = Gauge(
            "tgm_campaign_waiting_by_limit",
            "Due jobs held back, by the limit holding them (last round)",
            ["limit"],
            registry=registry,
        )
        self.holds = Counter(
            "tgm_campaign_limit_waits_total",
            "Times a due job was held back by a limit",
            ["limit"],
            registry=registry,
        )
        self.latency = Histogram(
            "tgm_campaign_send_seconds",
            "Time of the send call to tg-session",
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.rounds = Counter("tgm_campaign_scheduler_rounds_total", "Scheduler rounds", registry=registry)
        self.round_seconds = Histogram(
            "tgm_campaign_scheduler_round_seconds",
            "Time of one scheduler round (reading due jobs and limits, planning)",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )


class JobWaiters:
    """Immediate sends wait for their job's outcome here (never by sleeping): the scheduler, or the
    event of another replica, resolves them."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[str]]] = {}

    def watch(self, job_id: str) -> asyncio.Future[str]:
        """Start watching before looking at the job, so an outcome in between is not missed."""
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, []).append(fut)
        return fut

    @staticmethod
    async def until(fut: asyncio.Future[str], timeout: float) -> str | None:
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            return None

    def forget(self, job_id: str, fut: asyncio.Future[str]) -> None:
        futs = self._waiting.get(job_id, [])
        if fut in futs:
            futs.remove(fut)
        if not futs:
            self._waiting.pop(job_id, None)
        if not fut.done():
            fut.cancel()

    def resolve(self, job_id: str, state: str) -> None:
        for fut in self._waiting.get(job_id, []):
            if not fut.done():
                fut.set_result(state)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._waiting


@dataclass
class Deps:
    """Everything the messaging use cases are made of (built once in `app.build`)."""

    jobs: JobStore
    pacing: PacingStore
    compliance: ComplianceStore
    history: HistoryStore
    templates: TemplateRepo
    pauses: PauseRepo
    leases: Leases
    leads: Leads
    groups: Groups
    directory: AccountDirectory
    #: Best-effort publishing (`runtime.emit`): events inform; a broken stream must not undo a delivery.
    emit: Callable[[Event], Awaitable[bool]]
    send_call: Callable[[str, Any, float], Awaitable[Any]]
    settings_section: Callable[[str], Awaitable[Any]]
    metrics: Metrics
    clock: Clock = time.time
    waiters: JobWaiters = field(default_factory=JobWaiters)
    replica: str = "campaign"
    wake: Callable[[], None] = lambda: None
    _warned: dict[str, float] = field(default_factory=dict)

    def now(self) -> float:
        return self.clock()

    async def _section(self, name: str, model: type[Any]) -> Any:
        """A settings section; its defaults (conservative by design) if the stored one is unreadable."""
        try:
            return await self.settings_section(name)
        except Exception as exc:
            now = time.monotonic()
            if now - self._warned.get(name, -1e9) > 60:
                self._warned[name] = now
                log.error("settings section %r unreadable (%s); using its defaults", name, exc)
            return model()

    async def limits(self) -> Limits:
        pacing: PacingSettings = await self._section("pacing", PacingSettings)
        compliance: ComplianceSettings = await self._section("compliance", ComplianceSettings)
        return Limits.from_settings(pacing, compliance)

    async def stop_words(self) -> StopWords:
        compliance: ComplianceSettings = await self._section("compliance", ComplianceSettings)
        key = tuple(compliance.stop_words)
        cached = getattr(self, "_stop_words", None)
        if cached is None or cached[0] != key:
            cached = (key, StopWords(key))
            self._stop_words = cached
        return cached[1]

    async def job_changed(
        self,
        doc: Mapping[str, Any],
        state: JobState,
        previous: str | None,
        *,
        reason: Any = None,
        account_id: str | None = None,
        message_id: int | None = None,
        retry_at: datetime | None = None,
        error: str | None = None,
        attempts: int | None = None,
    ) -> None:
        """Publish one transition of one job and wake whoever waits for it here."""
        await self.emit(
            JobStateChanged(
                job_id=doc["_id"],
                state=state,
                previous_state=JobState(previous) if previous else None,
                reason=reason,
                attempts=attempts if attempts is not None else doc.get("attempts", 0),
                account_id=account_id if account_id is not None else doc.get("account_id"),
                peer=doc["peer"],
                lead_id=doc.get("lead_id"),
                campaign_id=doc.get("campaign_id"),
                batch_id=doc.get("batch_id"),
                message_id=message_id,
                retry_at=retry_at,
                error=error,
            )
        )
        if state.terminal:
            self.waiters.resolve(doc["_id"], state.value)
