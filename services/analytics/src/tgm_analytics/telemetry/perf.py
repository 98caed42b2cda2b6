"""Performance samples: stored once each (`_id` = replica:boot:seq) and merged into get-performance.

A service's figures over a window come from adding the histograms of every sample of every replica
whose period ended inside it; percentiles are read from the merged histogram (histogram.py).
`requests`, `errors` and the service latency cover what it answered (commands, internal and account
calls, sys ops); event consumers and Telegram calls are listed as operations of their own kind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts import Service
from tgm_contracts.commands.analytics import (
    GetPerformance,
    OperationStats,
    PerformanceReport,
    PerformanceRequest,
    ServicePerformance,
)
from tgm_contracts.telemetry import PerfSample
from tgm_runtime import Invalid
from tgm_runtime.routes import answers

from .histogram import Merged
from .logs import aware
from .store import PerfStore

#: The window get-performance covers when `since` is omitted.
DEFAULT_WINDOW = timedelta(hours=1)
#: A service is up while its newest sample is younger than this many of its sampling periods.
UP_PERIODS = 2
ANSWERED = ("command", "rpc")
_ORDER = {s: i for i, s in enumerate(Service)}


def doc_of(sample: PerfSample, received_at: datetime) -> dict[str, Any]:
    return {
        "_id": sample.id,
        "service": sample.service.value,
        "replica_id": sample.replica_id,
        "start": aware(sample.period_start),
        "end": aware(sample.period_end),
        "interval": sample.interval_seconds,
        "ops": [
            {
                "n": o.name,
                "k": o.kind,
                "c": o.count,
                "e": o.errors,
                "s": o.sum_ms,
                "m": o.max_ms,
                "h": o.histogram,
            }
            for o in sample.operations
        ],
        "figures": sample.figures,
        "merge": sample.figure_merge,
        "received_at": received_at,
    }


class _ServiceAcc:
    def __init__(self) -> None:
        self.ops: dict[tuple[str, str], Merged] = {}
        self.answered = Merged()
        self.replicas: set[str] = set()
        self.first: datetime | None = None
        self.last: datetime | None = None
        self.latest: dict[str, dict[str, Any]] = {}  # replica -> its newest sample in the window

    def add(self, doc: dict[str, Any]) -> None:
        start, end = aware(doc["start"]), aware(doc["end"])
        assert start is not None and end is not None
        self.replicas.add(doc["replica_id"])
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)
        prev = self.latest.get(doc["replica_id"])
        if prev is None or aware(prev["end"]) < end:  # type: ignore[operator]
            self.latest[doc["replica_id"]] = doc
        for o in doc.get("ops", []):
            merged = self.ops.setdefault((o["n"], o["k"]), Merged())
            merged.add(o["c"], o["e"], o["s"], o["m"], o["h"])
            if o["k"] in ANSWERED:
                self.answered.add(o["c"], o["e"], o["s"], o["m"], o["h"])

    def span_seconds(self, since: datetime, until: datetime) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return max(0.0, (min(self.last, until) - max(self.first, since)).total_seconds())

    def figures(self) -> dict[str, float]:
        """Each figure from the replicas still reporting at the window's end, summed or maxed."""
        if not self.latest:
            return {}
        newest = max(aware(d["end"]) for d in self.latest.values())  # type: ignore[type-var]
        out: dict[str, float] = {}
        for doc in self.latest.values():
            if aware(doc["end"]) < newest - timedelta(seconds=UP_PERIODS * doc["interval"]):  # type: ignore[operator]
                continue  # a replica that stopped reporting inside the window no longer counts
            merge = doc.get("merge") or {}
            for name, value in (doc.get("figures") or {}).items():
                if name not in out:
                    out[name] = value
                elif merge.get(name) == "max":
                    out[name] = max(out[name], value)
                else:
                    out[name] += value
        return out


class PerformanceService:
    """`AnalyticsApp.performance`: ingest samples, and `report` behind get-performance (and reports)."""

    def __init__(self, store: PerfStore) -> None:
        self.store = store

    async def ingest(self, sample: PerfSample, now: datetime | None = None) -> bool:
        """Store a sample; False when it was delivered before (already counted)."""
        return await self.store.insert(doc_of(sample, now or datetime.now(UTC)))

    @answers(GetPerformance)
    async def report(self, req: PerformanceRequest, now: datetime | None = None) -> PerformanceReport:
        now = now or datetime.now(UTC)
        until = aware(req.until) or now
        since = aware(req.since) or until - DEFAULT_WINDOW
        if since >= until:
            raise Invalid("since must be before until", [{"loc": ["since"], "msg": "since >= until"}])
        accs: dict[str, _ServiceAcc] = {}
        async for doc in self.store.ended_between(since, until, [s.value for s in req.services or []]):
            accs.setdefault(doc["service"], _ServiceAcc()).add(doc)
        names = [s.value for s in req.services] if req.services else list(accs)
        services: list[ServicePerformance] = []
        every_op: list[OperationStats] = []
        for name in sorted(dict.fromkeys(names), key=lambda n: _ORDER.get(Service(n), 99)):
            acc = accs.get(name, _ServiceAcc())
            span = acc.span_seconds(since, until)
            ops = [
                OperationStats(
                    name=op_name,
                    kind=kind,
                    service=Service(name),
                    count=m.count,
                    errors=m.errors,
                    error_rate=m.error_rate,
                    throughput_per_minute=round(m.count / (span / 60), 3) if span else 0.0,
                    latency=m.latency(),
                )
                for (op_name, kind), m in acc.ops.items()
                if m.count
            ]
            ops.sort(key=lambda o: (-o.count, o.name))
            every_op += ops
            services.append(
                ServicePerformance(
                    service=Service(name),
                    replicas=len(acc.replicas),
                    up=await self._up(name, now),
                    requests=acc.answered.count,
                    errors=acc.answered.errors,
                    error_rate=acc.answered.error_rate,
                    throughput_per_second=round(acc.answered.count / span, 3) if span else 0.0,
                    latency=acc.answered.latency(),
                    operations=ops,
                    figures=acc.figures(),
                )
            )
        slowest = sorted(
            (o for o in every_op if o.latency.p95_ms is not None),
            key=lambda o: (-(o.latency.p95_ms or 0.0), -o.count),
        )[: req.top]
        return PerformanceReport(
            since=since, until=until, services=services, slowest=slowest, generated_at=now
        )

    async def _up(self, service: str, now: datetime) -> bool:
        """Up now: the service's newest sample (any replica) ended within its last two periods."""
        newest = await self.store.newest_of(service)
        if newest is None:
            return False
        return aware(newest["end"]) >= now - timedelta(seconds=UP_PERIODS * newest["interval"])  # type: ignore[operator]
