"""bench/analytics: ingest N synthetic events through the stats consumer's code and time the six statistics.

One process: a private database server (secantusd, a child process with temporary data) and the stats
feature's own code: `Ingest.handle` (what the durable consumer calls for each event, minus the NATS hop)
and `StatsQueries` (what each command handler calls). The events span 30 days across 20 accounts,
5 campaigns, 5,000 users and 10 groups: sends with campaign jobs, inbound private and group messages,
failures, flood waits, keyword matches, leads moving through the funnel, AI replies.

Prints: ingest events/s (one at a time through `Ingest.handle`, as the consumer does it, over the first
`--timed` events; the rest are bulk-loaded with the same fact mapping to keep the run short), then the latency of each command over a 30-day window (day
buckets) and a 24-hour window (hour buckets), each the median of `--repeat` runs; and a baseline in
the same run: a naive aggregation that reads every fact of the collection and counts messages in
Python (what a query without the time index would cost). Figures only, no assertions.

    .venv/bin/python bench/analytics/run.py --events 100000 --out bench/analytics/last-run.txt
    .venv/bin/python bench/analytics/run.py --events 10000          # quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from tgm_analytics.stats.facts import fact_of
from tgm_analytics.stats.queries import GeneralZone, StatsQueries
from tgm_analytics.stats.service import Ingest
from tgm_analytics.stats.store import FACTS, JOBS, USERS, FactStore, create_indexes
from tgm_contracts import events_ai as ai
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts
from tgm_contracts.commands import analytics as analytics_cmd
from tgm_contracts.events import Event
from tgm_contracts.models.campaign import LeadStage
from tgm_contracts.models.session import TelegramUser
from tgm_testing.servers import MongoServer

ACCOUNTS = [f"acc{i}" for i in range(20)]
CAMPAIGNS = [f"camp{i}" for i in range(5)]
GROUPS = [-100_000 - i for i in range(10)]


def workload(n: int, now: datetime, seed: int = 7) -> list[Event]:
    """`n` events spread over the 30 days before `now`, in time order."""
    rnd = random.Random(seed)
    span = timedelta(days=30).total_seconds()
    # About 1.18 events per draw (half the sends come with their campaign's message-queued).
    times = sorted(now - timedelta(seconds=rnd.random() * span) for _ in range(int(n / 1.18)))
    out: list[Event] = []
    job = 0
    lead = 0
    leads: list[str] = []
    for t in times:
        account = rnd.choice(ACCOUNTS)
        user = 1_000 + rnd.randrange(5_000)
        r = rnd.random()
        if r < 0.35:
            job += 1
            jid = f"j{job}"
            campaign = rnd.choice(CAMPAIGNS)
            if rnd.random() < 0.5:
                out.append(
                    cp.MessageQueued(
                        batch_id=jid,
                        job_ids=[jid],
                        created=1,
                        priority="normal",
                        campaign_id=campaign,
                        occurred_at=t,
                    )
                )
            out.append(
                ts.MessageSent(
                    account_id=account,
                    chat_kind="private",
                    chat_id=user,
                    message_id=len(out) + 1,  # Telegram's ids grow with time (facts are keyed by them)
                    job_id=jid,
                    sent_at=t,
                    occurred_at=t,
                )
            )
        elif r < 0.75:
            # A private message below 0.55, a message in one of the groups above.
            group = rnd.choice(GROUPS) if r >= 0.55 else None
            out.append(
                ts.MessageReceived(
                    account_id=account,
                    chat_kind="private" if group is None else "supergroup",
                    chat_id=user if group is None else group,
                    chat_title=None if group is None else "group",
                    message_id=len(out) + 1,
                    sender_id=user,
                    date=t,
                    occurred_at=t,
                )
            )
        elif r < 0.80:
            out.append(
                ts.MessageSendFailed(
                    account_id=account,
                    peer=str(user),
                    error_code="TELEGRAM_ERROR",
                    telegram_error="PEER_FLOOD",
                    occurred_at=t,
                )
            )
        elif r < 0.82:
            out.append(
                ts.FloodWaitRecorded(account_id=account, seconds=30, until=t, category="send", occurred_at=t)
            )
        elif r < 0.87:
            g = rnd.randrange(len(GROUPS))
            out.append(
                cp.KeywordMatched(
                    group_id=f"g{g}",
                    chat_id=GROUPS[g],
                    user_id=user,
                    keyword_set_id="ks",
                    keyword="price",
                    match_type="contains",
                    listener_account_id=account,
                    occurred_at=t,
                )
            )
        elif r < 0.91:
            lead += 1
            leads.append(f"L{lead}")
            out.append(
                cp.LeadCaptured(
                    lead_id=f"L{lead}",
                    user_id=user,
                    source_type="keyword",
                    source_group_id="g1",
                    occurred_at=t,
                )
            )
        elif r < 0.95 and leads:
            stage = rnd.choice([LeadStage.CONTACTED, LeadStage.REPLIED, LeadStage.CLOSED_WON])
            out.append(cp.LeadStageChanged(lead_id=rnd.choice(leads), to_stage=stage, occurred_at=t))
        elif r < 0.98:
            out.append(
                ai.AiResponseGenerated(
                    account_id=account,
                    user_id=str(user),
                    provider="local",
                    model="m",
                    confidence=0.8,
                    handoff=rnd.random() < 0.1,
                    occurred_at=t,
                )
            )
        else:
            out.append(
                ts.MemberJoined(
                    account_id=account,
                    chat_id=rnd.choice(GROUPS),
                    user=TelegramUser(user_id=user),
                    joined_at=t,
                    occurred_at=t,
                )
            )
    return out


async def ingest(handler: Ingest, events: list[Event], concurrency: int = 1) -> None:
    """`events` through `handler.handle`, `concurrency` at a time."""
    queue = iter(events)

    async def worker() -> None:
        for evt in queue:
            await handler.handle(evt)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bulk_load(handler: Ingest, db: Any, events: list[Event]) -> None:
    """Load the bulk of the events quickly with the same fact mapping (`fact_of`), job links and
    first contacts computed here and written in batches; leads go through `handle` (their projection
    updates are the consumer's own). Not timed: the ingest rate is measured on the first events."""
    campaign_of: dict[str, str] = {}
    facts: list[dict[str, Any]] = []
    users: dict[int, dict[str, Any]] = {}
    for evt in events:
        if isinstance(evt, cp.MessageQueued) and evt.campaign_id:
            for j in evt.job_ids:
                campaign_of[j] = evt.campaign_id
            continue
        if isinstance(evt, (cp.LeadCaptured, cp.LeadStageChanged, cp.KeywordMatched)):
            await handler.handle(evt)
            continue
        f = fact_of(evt)
        if f is None:
            continue
        if f.get("j") in campaign_of:
            f["c"] = campaign_of[f["j"]]
        facts.append(f)
        if f["k"] in ("sent", "received") and f.get("ck") == "private" and "u" in f:
            first = users.get(f["u"])
            if first is None or f["t"] < first["first_at"]:
                users[f["u"]] = {
                    "_id": f["u"],
                    "first_at": f["t"],
                    "fact": f["_id"],
                    "dir": "outbound" if f["k"] == "sent" else "inbound",
                    "a": f.get("a"),
                }
    for i in range(0, len(facts), 5000):
        await db[FACTS].insert_many(facts[i : i + 5000], ordered=False)
    jobs = [{"_id": j, "c": c, "at": datetime.now(UTC)} for j, c in campaign_of.items()]
    for i in range(0, len(jobs), 5000):
        await db[JOBS].insert_many(jobs[i : i + 5000], ordered=False)
    known = {d["_id"] async for d in db[USERS].find({}, {"_id": 1})}
    fresh = [u for u in users.values() if u["_id"] not in known]
    if fresh:
        await db[USERS].insert_many(fresh, ordered=False)


#: One measured step of the run: what it does, and the lines it prints from the seconds it took.
Step = tuple[Callable[[], Awaitable[Any]], Callable[[float], Awaitable[list[str]]]]


async def run_steps(steps: list[Step], say: Callable[[str], None]) -> None:
    """Each step once, timed, then its lines (lines may read the database: that is not timed)."""
    for step, lines in steps:
        ms, _ = await timed(step, 1)
        for line in await lines(ms / 1000):
            say(line)


async def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    samples = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples), result


async def naive_messages(db: Any, since: datetime, until: datetime) -> dict[str, int]:
    """The baseline: every fact of the collection read and filtered in Python (no index, no query)."""
    counts = {"sent": 0, "received": 0, "failed": 0, "flood_wait": 0}
    async for f in db[FACTS].find({}):
        t = f["t"]
        if since <= t < until and f["k"] in counts:
            counts[f["k"]] += 1
    return counts


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timed", type=int, default=3000, help="events ingested one by one through handle()")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    now = datetime.now(UTC).replace(microsecond=0)
    events = workload(args.events, now)
    with tempfile.TemporaryDirectory() as tmp:
        server = MongoServer(Path(tmp) / "db", log_path=Path(tmp) / "secantusd.log")
        server.start()
        client: AsyncMongoClient[Any] = AsyncMongoClient(server.uri, tz_aware=True)
        try:
            db = client["bench_analytics"]
            await create_indexes(db)
            store = FactStore(db)
            handler = Ingest(store)
            queries = StatsQueries(store, GeneralZone(store))
            say(
                f"bench/analytics: {len(events):,} events over 30 days; {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, secantusd; load {os.getloadavg()[0]:.1f}"
            )
            first = min(args.timed, len(events))

            async def facts() -> int:
                return await db[FACTS].count_documents({})

            redelivered = min(1000, len(events))

            async def ingest_lines(s: float) -> list[str]:
                return [
                    f"ingest through Ingest.handle (the consumer's code, one event at a time): {first / s:,.0f} events/s "
                    f"over the first {first:,} events"
                ]

            async def bulk_lines(s: float) -> list[str]:
                return [
                    f"bulk-loaded the other {len(events) - first:,} events in {s:,.0f} s (not an ingest figure)",
                    f"facts stored: {await facts():,}",
                ]

            async def redelivery_lines(s: float) -> list[str]:
                return [
                    f"redelivery of 1,000 events (no change): {redelivered / s:,.0f} events/s; facts still {await facts():,}"
                ]

            async def span_lines(s: float) -> list[str]:
                return [
                    f"facts' span looked up (after each retention sweep, not per query): {s * 1000:,.0f} ms"
                ]

            # The last step is what the service does after each retention sweep (at start, then hourly):
            # it decides whether a window is read through the `t` index or in one pass (SCAN_FRACTION).
            steps: list[Step] = [
                (lambda: ingest(handler, events[:first]), ingest_lines),
                (lambda: bulk_load(handler, db, events[first:]), bulk_lines),
                (lambda: ingest(handler, events[:redelivered]), redelivery_lines),
                (queries.refresh_span, span_lines),
            ]
            await run_steps(steps, say)
            windows = {
                "30 days, day buckets": {
                    "since": now - timedelta(days=30),
                    "until": now,
                    "bucket": "day",
                    "timezone": "UTC",
                },
                "24 hours, hour buckets": {
                    "since": now - timedelta(hours=24),
                    "until": now,
                    "bucket": "hour",
                    "timezone": "UTC",
                },
            }
            say()
            say(
                f"{'command (median of ' + str(args.repeat) + ')':<34}" + "".join(f"{w:>26}" for w in windows)
            )
            rows: list[tuple[str, Any]] = [
                ("get-dashboard-stats", lambda w: queries.dashboard(analytics_cmd.DashboardRequest(**w))),
                ("get-message-stats", lambda w: queries.messages(analytics_cmd.MessageStatsRequest(**w))),
                ("get-user-stats", lambda w: queries.users(analytics_cmd.UserStatsRequest(**w))),
                ("get-group-stats", lambda w: queries.groups(analytics_cmd.GroupStatsRequest(**w))),
                (
                    "get-conversion-stats",
                    lambda w: queries.conversions(analytics_cmd.ConversionStatsRequest(**w)),
                ),
                (
                    "get-analytics (3 metrics)",
                    lambda w: queries.analytics(
                        analytics_cmd.GetAnalyticsRequest(
                            **w, metrics=["messages_sent", "active_users", "replies_received"]
                        )
                    ),
                ),
                (
                    "get-analytics by account",
                    lambda w: queries.analytics(
                        analytics_cmd.GetAnalyticsRequest(**w, metrics=["messages_sent"], group_by="account")
                    ),
                ),
                (
                    "get-message-stats accountId",
                    lambda w: queries.messages(analytics_cmd.MessageStatsRequest(**w, account_id="acc3")),
                ),
                ("baseline: naive full scan", lambda w: naive_messages(db, w["since"], w["until"])),
            ]
            check: dict[tuple[str, str], Any] = {}
            for name, make in rows:
                cells = []
                for wname, w in windows.items():
                    ms, result = await timed(lambda make=make, w=w: make(w), args.repeat)
                    cells.append(f"{ms:>23,.0f} ms")
                    if name in ("get-message-stats", "baseline: naive full scan"):
                        check[(name, wname)] = result
                say(f"{name:<34}" + "".join(cells))
            for wname in windows:
                real = check[("get-message-stats", wname)].totals
                naive = check[("baseline: naive full scan", wname)]
                same = (real.sent, real.received, real.failed, real.flood_waits) == (
                    naive["sent"],
                    naive["received"],
                    naive["failed"],
                    naive["flood_wait"],
                )
                say(
                    f"{wname}: get-message-stats totals {'match' if same else 'DIFFER FROM'} the baseline "
                    f"(sent {real.sent:,}, received {real.received:,}, replies {real.replies_received:,})"
                )
        finally:
            await client.close()
            server.stop()
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
