"""`get-ai-usage`: the usage counters of a period, per row (day, provider, model), per provider and in
total, with average and maximum latency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tgm_contracts.commands.ai import GetAiUsage, GetAiUsageRequest, UsageReport, UsageTotals
from tgm_contracts.models.ai import UsageRow
from tgm_runtime import Invalid
from tgm_runtime.routes import answers

from .store import UsageStore


@dataclass
class UsageReports:
    store: UsageStore

    @answers(GetAiUsage)
    async def report(self, req: GetAiUsageRequest) -> UsageReport:
        until = req.until or datetime.now(UTC).date()
        since = req.since or until - timedelta(days=30)
        if since > until:
            raise Invalid("since must not be after until")
        rows = await self.store.rows(since, until, req.provider, req.model)
        out_rows: list[UsageRow] = []
        totals = UsageTotals()
        by_provider: dict[str, UsageTotals] = {}
        lat_sum: dict[str, float] = {}
        lat_all = 0.0
        for r in rows:
            calls = int(r.get("calls", 0))
            total_lat = float(r.get("latency_ms_total", 0.0))
            out_rows.append(
                UsageRow(
                    day=date.fromisoformat(r["day"]),
                    provider=r["provider"],
                    model=r["model"],
                    calls=calls,
                    errors=int(r.get("errors", 0)),
                    prompt_tokens=int(r.get("prompt_tokens", 0)),
                    completion_tokens=int(r.get("completion_tokens", 0)),
                    latency_ms_total=round(total_lat, 3),
                    latency_ms_avg=round(total_lat / calls, 3) if calls else 0.0,
                    latency_ms_max=round(float(r.get("latency_ms_max", 0.0)), 3),
                )
            )
            for t in (totals, by_provider.setdefault(r["provider"], UsageTotals())):
                t.calls += calls
                t.errors += int(r.get("errors", 0))
                t.prompt_tokens += int(r.get("prompt_tokens", 0))
                t.completion_tokens += int(r.get("completion_tokens", 0))
            lat_sum[r["provider"]] = lat_sum.get(r["provider"], 0.0) + total_lat
            lat_all += total_lat
        totals.latency_ms_avg = round(lat_all / totals.calls, 3) if totals.calls else 0.0
        for name, t in by_provider.items():
            t.latency_ms_avg = round(lat_sum[name] / t.calls, 3) if t.calls else 0.0
        return UsageReport(rows=out_rows, totals=totals, by_provider=by_provider, since=since, until=until)
