"""The reports use cases: export a report now or fetch a stored one, manage schedules, and run them.

The scheduler is `tick`, a `runtime.every(scheduler_seconds)` job (bootstrap.py): it reads the due schedules and claims
each with a conditional update (`next_run_at` still the value it read), so of several replicas exactly
one runs a given occurrence. The claim moves `next_run_at` before the run: a replica that dies in the
middle of a run loses that one occurrence rather than running it twice.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from tgm_contracts import Service
from tgm_contracts.commands.analytics import (
    ExportReport,
    ExportReportRequest,
    ScheduleReport,
    ScheduleReportRequest,
    ScheduleReportResult,
    ScopeFilters,
)
from tgm_contracts.events_analytics import ReportReady
from tgm_contracts.models.analytics import ExportFile, ReportScheduleView
from tgm_runtime import DomainError, Invalid, NotFound
from tgm_runtime.exports import Exports
from tgm_runtime.routes import answers

from ..alerts.rules import Signal, fold_key
from ..alerts.service import Publish
from .adapters import Deliverer, check_recipient
from .builders import RESPONSES, ReportSources, check_filters, compute, render, render_to, summary_text
from .store import ReportRepo, ScheduleRepo, stored_file
from .timing import DEFAULT_BUCKET, check_cron, next_run, relative_window, zone

log = logging.getLogger("tgm.analytics.reports")

#: `runtime.spawn`: a report run started by `schedule-report run` outlives the command.
Spawn = Callable[[Coroutine[Any, Any, None], str], Any]
#: `AlertService.raise_signal`: a failed or undelivered scheduled report is an alert.
RaiseAlert = Callable[[Signal], Awaitable[Any]]


def _now() -> datetime:
    return datetime.now(UTC)


def _slug(text: str, fallback: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or fallback


#: Fields of export-report that describe a new report; a stored one has its own.
_GENERATE_ONLY = {"since", "until", "bucket", "timezone", "account_id", "campaign_id", "chat_id"}


def view(doc: dict[str, Any]) -> ReportScheduleView:
    """A schedule document as the contract shows it (same field names; `_id` is `id`, filters camelCase)."""
    filters = ScopeFilters(**doc.get("filters") or {}).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return ReportScheduleView.model_validate(
        {
            **doc,
            "id": doc["_id"],
            "timezone": doc.get("timezone") or "UTC",
            "filters": filters,
            "recipients": doc.get("recipients") or [],
        }
    )


class ReportService:
    """`AnalyticsApp.reports`: what the report handlers and the scheduler job call."""

    def __init__(
        self,
        sources: ReportSources,
        schedules: ScheduleRepo,
        reports: ReportRepo,
        deliverer: Deliverer,
        publish: Publish,
        spawn: Spawn,
        *,
        raise_alert: RaiseAlert | None = None,
        keep: int = 20,
        clock: Callable[[], datetime] = _now,
        exports: Exports | None = None,
    ) -> None:
        self.sources = sources
        self.schedules = schedules
        self.reports = reports
        self.deliverer = deliverer
        self.publish = publish
        self.spawn = spawn
        self.raise_alert = raise_alert
        self.keep = keep
        self.clock = clock
        #: Where an exported file too large for one reply goes (without a store: inline, cut to fit).
        self.exports = exports or Exports()

    # --- export-report ---------------------------------------------------------------------------

    @answers(ExportReport)
    async def export(self, req: ExportReportRequest) -> ExportFile:
        if req.report_id is not None:
            return await self._stored(req)
        assert req.report is not None
        since, until = req.resolved(self.clock())
        filters = {"account_id": req.account_id, "campaign_id": req.campaign_id, "chat_id": req.chat_id}
        response = await compute(
            req.report,
            self.sources,
            since=since,
            until=until,
            bucket=req.bucket,
            timezone=req.timezone,
            filters=filters,
        )
        return await self._file(req.report, response, req.format, f"{req.report}-report")

    async def _stored(self, req: ExportReportRequest) -> ExportFile:
        extra = sorted(_GENERATE_ONLY & req.model_fields_set)
        if extra:
            raise Invalid(
                "a stored report has its own window and filters; give only reportId (and format)",
                {"unexpected": extra},
            )
        doc = await self.reports.get(req.report_id or "")
        if doc is None:
            raise NotFound(
                f"report {req.report_id} does not exist (or was pruned)", {"reportId": req.report_id}
            )
        if "format" not in req.model_fields_set or req.format == doc["format"]:
            return stored_file(doc)
        # Same figures, another format: read the stored response back and render it again.
        kind = doc["report"]
        if not doc.get("data_json"):
            raise Invalid(
                f"report {req.report_id} is too large to keep in another format; fetch it as {doc['format']}",
                {"format": doc["format"]},
            )
        response = RESPONSES[kind].model_validate(json.loads(doc["data_json"]))
        return await self._file(kind, response, req.format, doc["filename"].rsplit("-", 2)[0])

    async def _file(self, kind: str, response: Any, fmt: str, name: str) -> ExportFile:
        return await render_to(self.exports, ExportReport.ROLE, kind, response, fmt, name)

    # --- schedule-report -------------------------------------------------------------------------

    @answers(ScheduleReport, principal=True)
    async def schedule(self, req: ScheduleReportRequest, principal: str | None) -> ScheduleReportResult:
        if req.action == "list":
            return ScheduleReportResult(
                action="list", schedules=[view(d) for d in await self.schedules.all()]
            )
        if req.action == "save":
            return ScheduleReportResult(action="save", schedule=view(await self._save(req, principal)))
        doc = await self.schedules.get(req.schedule_id or "")
        if doc is None:
            raise NotFound(
                f"report schedule {req.schedule_id} does not exist", {"scheduleId": req.schedule_id}
            )
        if req.action == "delete":
            await self.schedules.delete(doc["_id"])
            await self.reports.delete_of(doc["_id"])
            return ScheduleReportResult(action="delete", schedule=view(doc))
        report_id = _new_id("rp")
        self.spawn(self._run_logged(doc, report_id), f"report-{report_id}")
        return ScheduleReportResult(action="run", schedule=view(doc), report_id=report_id)

    async def _save(self, req: ScheduleReportRequest, principal: str | None) -> dict[str, Any]:
        now = self.clock()
        given = {name for name in req.model_fields_set if getattr(req, name) is not None}
        if req.schedule_id is None:
            doc: dict[str, Any] = {
                "_id": _new_id("rs"),
                "name": req.name,
                "report": req.report,
                "format": req.format or "csv",
                "cron": None,
                "interval_seconds": None,
                "timezone": req.timezone or "UTC",
                "window": req.window or "last_24h",
                "bucket": req.bucket or DEFAULT_BUCKET[req.window or "last_24h"],
                "filters": {},
                "recipients": [],
                "enabled": True if req.enabled is None else req.enabled,
                "next_run_at": None,
                "last_run_at": None,
                "last_report_id": None,
                "last_error": None,
                "created_at": now,
                "created_by": principal,
                "updated_at": None,
            }
            timing_changed = True
        else:
            found = await self.schedules.get(req.schedule_id)
            if found is None:
                raise NotFound(
                    f"report schedule {req.schedule_id} does not exist", {"scheduleId": req.schedule_id}
                )
            doc = found
            for name in ("name", "report", "format", "timezone", "window", "bucket", "enabled"):
                if name in given:
                    doc[name] = getattr(req, name)
            if "window" in given and "bucket" not in given:
                doc["bucket"] = DEFAULT_BUCKET[doc["window"]]
            doc["updated_at"] = now
            timing_changed = bool(given & {"cron", "interval_seconds", "timezone", "enabled"})
        if "cron" in given:
            doc["cron"], doc["interval_seconds"] = check_cron(req.cron or ""), None
        elif "interval_seconds" in given:
            doc["cron"], doc["interval_seconds"] = None, req.interval_seconds
        if "filters" in given and req.filters is not None:
            doc["filters"] = req.filters.model_dump(by_alias=False, exclude_none=True)
        if "recipients" in given and req.recipients is not None:
            recipients = [r.model_dump(by_alias=False) for r in req.recipients]
            for r in recipients:
                check_recipient(r)
            doc["recipients"] = recipients
        zone(doc["timezone"])
        check_filters(doc["report"], doc["filters"])
        if timing_changed:
            doc["next_run_at"] = (
                next_run(
                    now, cron=doc["cron"], interval_seconds=doc["interval_seconds"], timezone=doc["timezone"]
                )
                if doc["enabled"]
                else None
            )
        if req.schedule_id is None:
            await self.schedules.insert(doc)
        else:
            await self.schedules.replace(doc)
        return doc

    # --- runs ------------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> int:
        """Run every schedule that is due and that this replica manages to claim; how many ran."""
        now = now or self.clock()
        ran = 0
        for doc in await self.schedules.due(now):
            try:
                nxt = next_run(
                    now,
                    cron=doc.get("cron"),
                    interval_seconds=doc.get("interval_seconds"),
                    timezone=doc.get("timezone"),
                    previous=doc.get("next_run_at"),
                )
            except (DomainError, ValueError) as exc:
                # Only a schedule saved before a rule changed can get here: park it, say why.
                if await self.schedules.claim(doc, None, now):
                    await self.schedules.finished(
                        doc["_id"], at=now, report_id=None, error=f"cannot schedule: {exc}"
                    )
                continue
            if not await self.schedules.claim(doc, nxt, now):
                continue  # another replica has it
            await self._run_logged(doc, _new_id("rp"), now)
            ran += 1
        return ran

    async def _run_logged(self, doc: dict[str, Any], report_id: str, now: datetime | None = None) -> None:
        try:
            await self.run(doc, report_id, now)
        except Exception:
            log.exception("report schedule %s failed", doc.get("_id"))

    async def run(self, doc: dict[str, Any], report_id: str, now: datetime | None = None) -> str | None:
        """Generate, store and deliver one report of a schedule; the report id, None when it failed."""
        now = now or self.clock()
        kind, tz = doc["report"], doc.get("timezone") or "UTC"
        error: str | None = None
        try:
            since, until = relative_window(doc["window"], tz, now)
            response = await compute(
                kind,
                self.sources,
                since=since,
                until=until,
                bucket=doc["bucket"],
                timezone=tz,
                filters=doc.get("filters") or {},
            )
            file = render(kind, response, doc["format"], _slug(doc["name"], kind))
        except DomainError as exc:
            error = f"{exc.code.value}: {exc.message}"
        except Exception as exc:
            log.exception("report %s of schedule %s could not be generated", kind, doc["_id"])
            error = f"INTERNAL: {type(exc).__name__}"
        if error is not None:
            await self.schedules.finished(doc["_id"], at=now, report_id=None, error=error)
            await self._alert(
                doc, report_id, "report.failed", "error", f"Report {doc['name']} failed: {error}"
            )
            return None

        await self.reports.save(
            report_id,
            file,
            schedule_id=doc["_id"],
            kind=kind,
            since=since,
            until=until,
            bucket=doc["bucket"],
            timezone=tz,
            data_json=_json(response),
        )
        summary = summary_text(
            name=doc["name"],
            kind=kind,
            since=since,
            until=until,
            timezone=tz,
            response=response,
            report_id=report_id,
        )
        outcome = await self.deliverer.deliver(
            doc.get("recipients") or [],
            file=file,
            report_id=report_id,
            kind=kind,
            schedule_id=doc["_id"],
            summary=summary,
        )
        await self.reports.deliveries(report_id, outcome.delivered, outcome.failed)
        await self.reports.prune(doc["_id"], self.keep)
        last_error = "; ".join(outcome.errors)[:2000] or None
        await self.schedules.finished(doc["_id"], at=now, report_id=report_id, error=last_error)
        await self.publish(
            ReportReady(
                report_id=report_id,
                schedule_id=doc["_id"],
                report=kind,
                format=file.format,
                filename=file.filename,
                rows=file.rows,
                size_bytes=file.size_bytes,
                since=since,
                until=until,
                delivered=outcome.delivered,
                failed=outcome.failed,
            )
        )
        if outcome.failed:
            await self._alert(
                doc,
                report_id,
                "report.delivery_failed",
                "warning",
                f"Report {doc['name']} was made but not delivered to: {last_error}",
            )
        return report_id

    async def _alert(self, doc: dict[str, Any], report_id: str, code: str, level: str, message: str) -> None:
        if self.raise_alert is None:
            return
        try:
            await self.raise_alert(
                Signal(
                    level=level,
                    code=code,
                    title="Scheduled report failed" if code == "report.failed" else "Report delivery failed",
                    message=message[:1000],
                    fold_key=fold_key(code, Service.ANALYTICS, doc["_id"]),
                    event_id=f"{report_id}-{code}",
                    at=self.clock(),
                    service=Service.ANALYTICS,
                    subject=doc["_id"],
                )
            )
        except Exception:
            log.exception("could not raise %s for schedule %s", code, doc["_id"])


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


#: Larger response objects are not kept beside the file (a database document holds 16 MB at most).
MAX_DATA_JSON = 4_000_000


def _json(response: BaseModel) -> str:
    text = json.dumps(response.model_dump(mode="json", by_alias=True), ensure_ascii=False)
    return text if len(text) <= MAX_DATA_JSON else ""
