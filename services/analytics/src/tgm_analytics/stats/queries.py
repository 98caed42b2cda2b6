"""The six statistics, computed from facts and projections (see service.py and facts.py for where each comes from).

A query reads the facts of its window once (`t` in `[since, until)`, by kind, narrowed by account and
chat) and folds them in Python into totals and buckets: the embedded database's aggregation is slow
and its pipeline support partial. A short window is read through the time index; a window covering
most facts in one unfiltered pass filtered here with the same query (see `_read`, `SCAN_FRACTION`).

Filters: a filter keeps only facts that carry a matching value. A figure whose events never carry the
filtered attribute is therefore 0 under that filter (a campaign filter zeroes `received`, since an
inbound message names no campaign; it keeps `repliesReceived`, which carry the campaign of the send
they answer). The README lists which attributes each figure carries.

Replies: an inbound private message is a reply when the same account sent to that chat at most
`REPLY_WINDOW` (72 h) before it and that send was not answered yet (see timeline.detect_replies);
a reply is counted in the bucket of the inbound message and belongs to the campaign of the send.
"""

from __future__ import annotations

import functools
import time as monotime
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts import Service
from tgm_contracts.commands import analytics as analytics_cmd
from tgm_contracts.models.analytics import MAX_SPAN, MetricSeries, SeriesPoint, WindowView
from tgm_contracts.models.campaign import LeadStage
from tgm_runtime import Invalid
from tgm_runtime.routes import answers

from .store import FactStore
from .timeline import REPLY_WINDOW, Timeline, detect_replies, zone

#: `() -> (undismissed alerts, undismissed critical alerts)`: the alerts domain's count (AlertStore).
OpenAlerts = Callable[[], Awaitable[tuple[int, int]]]


#: Account states whose Telegram session is authorised and up (`connected` on the dashboard).
CONNECTED_STATES = frozenset({"active", "flood_wait", "peer_flood"})

#: Funnel order from the CRM contract; `closed_lost` leaves the funnel and is listed after it.
FUNNEL = [s.value for s in LeadStage if s is not LeadStage.CLOSED_LOST]
CONVERTED = LeadStage.CLOSED_WON.value
LOST = LeadStage.CLOSED_LOST.value

#: get-analytics metrics counted straight from facts: metric -> (fact kind, sum `n` instead of counting).
FACT_METRICS: dict[str, tuple[str, bool]] = {
    "messages_sent": ("sent", False),
    "messages_received": ("received", False),
    "messages_failed": ("failed", False),
    "flood_waits": ("flood_wait", False),
    "flood_wait_seconds": ("flood_wait", True),
    "logins": ("login", False),
    "login_failures": ("login_failed", False),
    "account_state_changes": ("state_change", False),
    "group_joins": ("group_join", False),
    "group_leaves": ("group_leave", False),
    "members_joined": ("member_joined", False),
    "members_extracted": ("extracted", True),
    "keyword_matches": ("keyword", False),
    "ai_replies": ("ai_reply", False),
    "alerts_raised": ("alert", False),
    "ai_suggestions": ("ai_suggest", False),
}
#: Outcomes of `trigger-fired` that are a rule's decision not to fire (a limit or a condition).
SKIP_OUTCOMES = frozenset({"cooldown", "daily_limit", "condition_failed"})
#: get-analytics metrics counting the facts of one kind whose `e` is one of the values.
OUTCOME_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    "triggers_fired": ("trigger", frozenset({"fired"})),
    "triggers_skipped": ("trigger", SKIP_OUTCOMES),
    "trigger_errors": ("trigger", frozenset({"error"})),
    "campaigns_started": ("campaign_state", frozenset({"running"})),
    "campaigns_completed": ("campaign_state", frozenset({"completed"})),
}
#: Most campaigns listed in the dashboard's automation figures.
DASHBOARD_CAMPAIGNS = 50
#: The counters a `campaign-progress` carries (stats_campaigns fields of the same names).
CAMPAIGN_COUNTERS = ("targets", "queued", "sent", "failed", "skipped", "replied")
GROUP_FIELD = {"account": "a", "campaign": "c", "chat": "ch", "service": "s"}

#: Past this share of all facts a window's facts are read by one unfiltered pass over the collection
#: rather than through the `t` index. Measured on the embedded server (bench/analytics): a find through
#: the index costs about 40 us per matching fact, an unfiltered pass about 14 us per stored fact.
SCAN_FRACTION = 0.35


@dataclass(frozen=True)
class Scope:
    """The request's filters; `keep` applies them to a fact (or any dict with the same field names)."""

    account_id: str | None = None
    campaign_id: str | None = None
    chat_id: int | None = None
    chat_kind: str | None = None
    chat_ids: frozenset[int] | None = None

    def keep(self, f: dict[str, Any], *, campaign: bool = True) -> bool:
        if self.account_id is not None and f.get("a") != self.account_id:
            return False
        if campaign and self.campaign_id is not None and f.get("c") != self.campaign_id:
            return False
        if self.chat_id is not None and f.get("ch") != self.chat_id:
            return False
        if self.chat_ids is not None and f.get("ch") not in self.chat_ids:
            return False
        return self.chat_kind is None or f.get("ck") == self.chat_kind

    def pushdown(self) -> dict[str, Any]:
        """The part of the filter every fact kind is narrowed by, for the database query."""
        q: dict[str, Any] = {}
        if self.account_id is not None:
            q["a"] = self.account_id
        if self.chat_id is not None:
            q["ch"] = self.chat_id
        elif self.chat_ids is not None:
            q["ch"] = {"$in": sorted(self.chat_ids)}
        return q


def _scope(req: Any) -> Scope:
    chat_ids = getattr(req, "chat_ids", None)
    return Scope(
        account_id=getattr(req, "account_id", None),
        campaign_id=getattr(req, "campaign_id", None),
        chat_id=getattr(req, "chat_id", None),
        chat_kind=getattr(req, "chat_kind", None),
        chat_ids=frozenset(chat_ids) if chat_ids is not None else None,
    )


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


class GeneralZone:
    """The `general.timezone` setting, which the gateway owns.

    Analytics cannot read another service's settings, so it keeps the zone from the gateway's
    `settings-changed` events (stats_meta `general`) and, while it has seen none, asks the gateway once
    a minute (`sys settings-get`, 2 s). When neither answers, day buckets fall back to UTC.
    """

    ASK_EVERY = 60.0

    def __init__(self, store: FactStore, ask: Callable[[], Any] | None = None) -> None:
        self.store = store
        self.ask = ask
        self._asked = -1e9

    async def name(self) -> str:
        doc = await self.store.meta("general")
        if doc and isinstance(doc.get("timezone"), str):
            return str(doc["timezone"])
        if self.ask is not None and monotime.monotonic() - self._asked > self.ASK_EVERY:
            self._asked = monotime.monotonic()
            try:
                tz = await self.ask()
            except Exception:  # the gateway is down or not reachable from here: fall back
                tz = None
            if isinstance(tz, str):
                return tz
        return "UTC"


class StatsQueries:
    """The statistics use cases (`AnalyticsApp.stats`): each method takes the command's request and returns its response."""

    def __init__(
        self,
        store: FactStore,
        zones: GeneralZone,
        clock: Callable[[], datetime] | None = None,
        read_plan: str = "auto",
        open_alerts: OpenAlerts | None = None,
    ) -> None:
        if read_plan not in ("auto", "index", "scan"):
            raise ValueError(f"read_plan must be auto, index or scan, not {read_plan!r}")
        self.store = store
        self.zones = zones
        #: The alerts domain's count of undismissed alerts (all, critical), for the dashboard; without
        #: it (a stats-only test) the dashboard shows none.
        self.open_alerts = open_alerts
        self.clock = clock or (lambda: datetime.now(UTC))
        #: How facts are read: `index` walks the `t` index, `scan` reads the collection and filters here,
        #: `auto` picks by the share of the facts the window covers (tests force each one).
        self.read_plan = read_plan
        #: The oldest fact's time as of the last `refresh_span` (None: not looked up yet).
        self.oldest: datetime | None = None

    # --- shared pieces ---------------------------------------------------------------------------

    async def _timeline(self, req: Any) -> tuple[Timeline, WindowView]:
        since, until = req.resolved(self.clock())
        if since >= until:
            raise Invalid(
                "since must be before until", {"since": since.isoformat(), "until": until.isoformat()}
            )
        if until - since > MAX_SPAN[req.bucket]:
            raise Invalid(
                f"a window of {req.bucket} buckets may span at most {MAX_SPAN[req.bucket].days} days"
            )
        name = req.timezone or await self.zones.name()
        try:
            tz = zone(name)
        except ValueError as exc:
            if req.timezone:
                raise Invalid(str(exc), {"timezone": req.timezone}) from None
            name, tz = "UTC", zone("UTC")  # a bad `general.timezone` must not break every statistic
        tl = Timeline.build(since, until, req.bucket, tz)
        return tl, WindowView(since=tl.since, until=tl.until, bucket=req.bucket, timezone=name)

    async def _facts(
        self, kinds: Iterable[str], since: datetime, until: datetime, scope: Scope, **extra: Any
    ) -> list[dict[str, Any]]:
        return (await self._read([_fact_query(kinds, since, until, scope, extra)]))[0]

    async def _window(
        self, kinds: Iterable[str], tl: Timeline, scope: Scope, replies: bool
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
        """The window's facts and, when `replies`, the private sends and messages of the `REPLY_WINDOW`
        before it (what reply detection needs), read together."""
        main = _fact_query(kinds, tl.since, tl.until, scope, {})
        if not replies or scope.chat_kind not in (None, "private"):
            return (await self._read([main]))[0], None
        back = _fact_query(
            ["sent", "received"], tl.since - REPLY_WINDOW, tl.since, _plain(scope), {"ck": "private"}
        )
        docs, earlier = await self._read([main, back])
        return docs, earlier

    async def _read(self, queries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The facts matching each query (the first one decides how they are read).

        Key order matters to the embedded server's planner: with the time range first it walks the `t`
        index (20 ms for a day of 10k facts); with the kind first it took 30 times longer. A window
        holding most facts is read instead in one unfiltered pass evaluated here (an unfiltered read
        costs the embedded server about a third of a filtered one per document), which then also
        serves the other queries."""
        t = queries[0]["t"]
        out: list[list[dict[str, Any]]] = [[] for _ in queries]
        if await self._scan_is_cheaper(t["$gte"], t["$lt"]):
            matchers = [_matcher(q) for q in queries]
            async for d in self.store.all_facts():
                d["t"] = _utc(d["t"])
                for match, sink in zip(matchers, out, strict=True):
                    if match(d):
                        sink.append(d)
            return out
        for q, sink in zip(queries, out, strict=True):
            docs = await self.store.facts_matching(q)
            for d in docs:
                d["t"] = _utc(d["t"])
            sink.extend(docs)
        return out

    def forget_span(self) -> None:
        """Restored facts have another span: until looked up again, queries read through the index."""
        self.oldest = None

    async def refresh_span(self) -> datetime | None:
        """Look up (and remember) the time of the oldest fact, for `_scan_is_cheaper`.

        A sorted look-up costs the embedded server a pass over the collection, so it is not done per
        query: the stats retention sweep calls this after each round (at start and hourly); the
        oldest fact only moves with the sweep (or a late event older than all others, which only
        makes the estimate a little off)."""
        first = await self.store.oldest_fact_time()
        self.oldest = _utc(first) if first else None
        return self.oldest

    async def _scan_is_cheaper(self, since: datetime, until: datetime) -> bool:
        """Whether `[since, until)` likely holds more than SCAN_FRACTION of all facts.

        Estimated from the span between the oldest fact (see `refresh_span`) and now, assuming an even
        spread; without an estimate the index is used. Either answer gives the same result, only the
        cost differs."""
        if self.read_plan != "auto":
            return self.read_plan == "scan"
        if self.oldest is None:
            return False
        lo, hi = self.oldest, max(self.clock(), self.oldest)
        span = (hi - lo).total_seconds()
        if span <= 0:
            return since <= lo < until
        overlap = (min(until, hi) - max(since, lo)).total_seconds()
        return overlap / span >= SCAN_FRACTION

    async def _replies(
        self,
        tl: Timeline,
        scope: Scope,
        window_facts: list[dict[str, Any]],
        earlier: list[dict[str, Any]] | None = None,
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(reply, answered send) pairs with the reply inside the window, narrowed by `scope`.

        `earlier`: the private sends and messages of the `REPLY_WINDOW` before the window when already
        read (see `_window`)."""
        if scope.chat_kind not in (None, "private"):
            return []
        plain = _plain(scope)
        if earlier is None:
            earlier = await self._facts(
                ["sent", "received"], tl.since - REPLY_WINDOW, tl.since, plain, ck="private"
            )
        sends, receives = [], []
        for f in (*earlier, *window_facts):
            if f.get("ck") != "private" or not plain.keep(f):
                continue
            if f["k"] == "sent":
                sends.append(((f.get("a"), f.get("ch")), f["t"], f))
            elif f["k"] == "received":
                receives.append(((f.get("a"), f.get("ch")), f["t"], f))
        pairs = detect_replies(sends, receives, seq=lambda f: f.get("m"))
        return [
            (r, s)
            for r, s in pairs
            if tl.contains(r["t"]) and (scope.campaign_id is None or s.get("c") == scope.campaign_id)
        ]

    async def _accounts(self) -> analytics_cmd.AccountFigures:
        by_state: Counter[str] = Counter()
        async for doc in self.store.accounts():
            removed = doc.get("removed_at")
            seen = max((x for x in (doc.get("added_at"), doc.get("state_at")) if x is not None), default=None)
            if seen is None or (removed is not None and removed >= seen):
                continue  # removed since it was last seen (or only ever heard of being removed)
            by_state[doc.get("state") or "new"] += 1
        connected = sum(n for state, n in by_state.items() if state in CONNECTED_STATES)
        return analytics_cmd.AccountFigures(
            total=sum(by_state.values()), by_state=dict(by_state), connected=connected
        )

    async def _leads(self, tl: Timeline, scope: Scope, source: str | None = None) -> list[dict[str, Any]]:
        """Leads with any activity in the window and captured before its end, narrowed by `scope`."""
        q: dict[str, Any] = {"last_at": {"$gte": tl.since}, "captured_at": {"$lt": tl.until}}
        if source is not None:
            q["source"] = source
        fleet = await self.store.fleet_users()
        leads = [d for d in await self.store.leads(q) if d.get("user") not in fleet]
        groups = {d["group"] for d in leads if d.get("group")}
        chat_of = await self.store.chats_of_groups(groups) if groups else {}
        out = []
        for d in leads:
            d["captured_at"] = _utc(d["captured_at"])
            d["reached"] = {k: _utc(v) for k, v in (d.get("reached") or {}).items() if _utc(v) < tl.until}
            d["source_chat"] = chat_of.get(d.get("group") or "")
            d["ch"] = d.get("user")
            if scope.chat_id is not None and scope.chat_id in (d.get("user"), d["source_chat"]):
                d["ch"] = scope.chat_id
            if scope.keep(d):
                out.append(d)
        return out

    # --- the six statistics ----------------------------------------------------------------------

    @answers(analytics_cmd.GetDashboardStats)
    async def dashboard(self, req: analytics_cmd.DashboardRequest) -> analytics_cmd.DashboardStats:
        """get-dashboard-stats: accounts now; messages, leads, AI, groups and extraction in the window."""
        tl, view = await self._timeline(req)
        scope = Scope()
        kinds = [
            "sent",
            "received",
            "failed",
            "attempt_failed",
            "flood_wait",
            "ai_reply",
            "ai_handoff",
            "group_join",
            "extracted",
            "keyword",
            "trigger",
            "ai_suggest",
            "campaign_state",
        ]
        facts, earlier = await self._window(kinds, tl, scope, replies=True)
        replies = await self._replies(tl, scope, facts, earlier)
        count: Counter[str] = Counter()
        members = 0
        buckets = [analytics_cmd.DashboardBucket(start=s) for s in tl.starts]
        for f in facts:
            count[f["k"]] += 1
            if f["k"] == "extracted":
                members += int(f.get("n", 0))
            i = tl.index(f["t"])
            if i is None:
                continue
            if f["k"] == "sent":
                buckets[i].sent += 1
            elif f["k"] == "received":
                buckets[i].received += 1
            elif f["k"] == "failed":
                buckets[i].failed += 1
        leads = await self._leads(tl, scope)
        new_leads = [d for d in leads if tl.contains(d["captured_at"])]
        for d in new_leads:
            i = tl.index(d["captured_at"])
            if i is not None:
                buckets[i].new_leads += 1
        converted = sum(
            1 for d in leads if CONVERTED in d["reached"] and tl.contains(d["reached"][CONVERTED])
        )
        unresolved, critical = await self.open_alerts() if self.open_alerts is not None else (0, 0)
        fleet = await self.store.fleet_users()
        sent_by, received_by = _origins(facts, fleet)
        return analytics_cmd.DashboardStats(
            window=view,
            accounts=await self._accounts(),
            messages=analytics_cmd.MessageTotals(
                sent=count["sent"],
                received=count["received"],
                failed=count["failed"],
                flood_waits=count["flood_wait"],
                replies_received=len(replies),
                reply_rate=_rate(len(replies), count["sent"]),
                failed_attempts=count["attempt_failed"],
                sent_by_origin=sent_by,
                received_by_origin=received_by,
            ),
            leads=analytics_cmd.LeadFigures(
                new=len(new_leads),
                total=await self.store.captured_leads(fleet),
                converted=converted,
            ),
            ai=analytics_cmd.AiFigures(replies=count["ai_reply"], tokens=0, handoffs=count["ai_handoff"]),
            groups_joined=count["group_join"],
            members_extracted=members,
            unresolved_alerts=unresolved,
            critical_alerts=critical,
            automation=await self._automation(tl, facts, count),
            buckets=buckets,
            generated_at=self.clock(),
        )

    async def _automation(
        self, tl: Timeline, facts: list[dict[str, Any]], count: Counter[str]
    ) -> analytics_cmd.AutomationFigures:
        """Keyword matches, trigger decisions and AI suggestions of the window; campaign starts and
        completions of the window, and the latest counters of every campaign running now or active in
        the window (their sum is the campaigns' figures: a snapshot, not a count over the window)."""
        triggers = analytics_cmd.TriggerFigures(suggestions=count["ai_suggest"])
        skipped: Counter[str] = Counter()
        leads: set[str] = set()
        started = completed = 0
        for f in facts:
            if f["k"] == "trigger":
                outcome = f.get("e")
                if outcome == "fired":
                    triggers.fired += 1
                    if f.get("lead"):
                        leads.add(f["lead"])
                elif outcome == "error":
                    triggers.errors += 1
                elif outcome in SKIP_OUTCOMES:
                    skipped[outcome] += 1
            elif f["k"] == "campaign_state":
                started += f.get("e") == "running"
                completed += f.get("e") == "completed"
        triggers.skipped = dict(skipped.most_common())
        triggers.leads = len(leads)
        campaigns = analytics_cmd.CampaignFigures(started=started, completed=completed)
        rows: list[tuple[datetime, analytics_cmd.CampaignRunFigures]] = []
        for d in await self.store.campaigns():
            last = max(
                (_utc(x) for x in (d.get("progress_at"), d.get("status_at")) if x is not None), default=None
            )
            running = d.get("status") == "running"
            if last is None or not (running or tl.since <= last < tl.until):
                continue
            campaigns.running += running
            row = analytics_cmd.CampaignRunFigures(
                campaign_id=d["_id"],
                name=d.get("name"),
                status=d.get("status"),
                **{k: int(d.get(k) or 0) for k in CAMPAIGN_COUNTERS},
                percent=int(d.get("percent") or 0),
            )
            for k in CAMPAIGN_COUNTERS:
                setattr(campaigns, k, getattr(campaigns, k) + getattr(row, k))
            rows.append((last, row))
        rows.sort(key=lambda r: (r[0], r[1].campaign_id), reverse=True)
        campaigns.items = [r for _, r in rows[:DASHBOARD_CAMPAIGNS]]
        return analytics_cmd.AutomationFigures(
            keyword_matches=count["keyword"], triggers=triggers, campaigns=campaigns
        )

    @answers(analytics_cmd.GetMessageStats)
    async def messages(self, req: analytics_cmd.MessageStatsRequest) -> analytics_cmd.MessageStats:
        """get-message-stats: sent, received, failed, flood waits and replies per bucket and account."""
        tl, view = await self._timeline(req)
        scope = _scope(req)
        kinds = ["sent", "received", "failed", "attempt_failed", "flood_wait"]
        facts, earlier = await self._window(kinds, tl, scope, replies=True)
        replies = await self._replies(tl, scope, facts, earlier)
        facts = [f for f in facts if scope.keep(f)]  # (replies pair across the campaign and kind filters)
        totals = analytics_cmd.MessageTotals()
        buckets = [analytics_cmd.MessageBucket(start=s) for s in tl.starts]
        per_account: dict[str, analytics_cmd.AccountMessageFigures] = {}
        errors: Counter[str] = Counter()
        attempt_errors: Counter[str] = Counter()
        field = {"sent": "sent", "received": "received", "failed": "failed", "flood_wait": "flood_waits"}
        for f in facts:
            if f["k"] == "attempt_failed":
                totals.failed_attempts += 1
                attempt_errors[f.get("e") or "UNKNOWN"] += 1
                continue
            i, acct = tl.index(f["t"]), f.get("a")
            row = None
            if acct is not None:
                row = per_account.setdefault(acct, analytics_cmd.AccountMessageFigures(account_id=acct))
            _add_one(field[f["k"]], totals, None if i is None else buckets[i], row)
            if f["k"] == "failed":
                errors[f.get("e") or "UNKNOWN"] += 1
        totals.replies_received = len(replies)
        totals.reply_rate = _rate(len(replies), totals.sent)
        totals.sent_by_origin, totals.received_by_origin = _origins(facts, await self.store.fleet_users())
        by_account = sorted(
            per_account.values(),
            key=lambda r: (-(r.sent + r.received + r.failed + r.flood_waits), r.account_id),
        )
        return analytics_cmd.MessageStats(
            window=view,
            totals=totals,
            buckets=buckets,
            by_account=by_account,
            failures_by_error=dict(errors.most_common()),
            attempt_failures_by_error=dict(attempt_errors.most_common()),
        )

    async def _new_users(
        self, tl: Timeline, scope: Scope, window_facts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """First private contacts in the window, with the account, chat and campaign of that contact.

        A first contact inside the window is one of the window's facts, so its campaign comes from
        `window_facts` (the sends already read) rather than from another query."""
        docs = await self.store.first_contacts(tl.since, tl.until)
        campaign_of = {f["_id"]: f["c"] for f in window_facts if f["k"] == "sent" and f.get("c")}
        out = []
        for d in docs:
            item = {
                "t": _utc(d["first_at"]),
                "a": d.get("a"),
                "ch": d["_id"],
                "ck": "private",
                "c": campaign_of.get(d.get("fact") or ""),
                "s": Service.TG_SESSION.value,
                "dir": d.get("dir"),
            }
            if scope.keep(item):
                out.append(item)
        return out

    @answers(analytics_cmd.GetUserStats)
    async def users(self, req: analytics_cmd.UserStatsRequest) -> analytics_cmd.UserStats:
        """get-user-stats: new, active and replying users, opt-outs, blacklistings, collected users."""
        tl, view = await self._timeline(req)
        scope = _scope(req)
        kinds = ["sent", "received", "opt_out", "blacklist", "extracted"]
        facts, earlier = await self._window(kinds, tl, scope, replies=True)
        replies = await self._replies(tl, scope, facts, earlier)
        new = await self._new_users(tl, scope, facts)
        buckets = [analytics_cmd.UserBucket(start=s) for s in tl.starts]
        active: list[set[int]] = [set() for _ in tl.starts]
        replied: list[set[int]] = [set() for _ in tl.starts]
        totals = analytics_cmd.UserTotals(new_users=len(new))
        by_source: Counter[str] = Counter()
        for d in new:
            i = tl.index(d["t"])
            if i is not None:
                buckets[i].new_users += 1
            by_source["campaign" if d["c"] else d["dir"] or "unknown"] += 1
        for f in facts:
            if not scope.keep(f):
                continue
            k = f["k"]
            if k == "received" and f.get("ck") == "private" and "u" in f:
                i = tl.index(f["t"])
                if i is not None:
                    active[i].add(f["u"])
            elif k == "opt_out":
                totals.opted_out += 1
            elif k == "blacklist":
                totals.blacklisted += 1
            elif k == "extracted":
                totals.collected += int(f.get("n", 0))
        for r, _ in replies:
            i = tl.index(r["t"])
            if i is not None:
                replied[i].add(r["ch"])
        for i, b in enumerate(buckets):
            b.active_users = len(active[i])
            b.replied_users = len(replied[i])
        totals.active_users = len(set().union(*active)) if active else 0
        totals.replied_users = len(set().union(*replied)) if replied else 0
        return analytics_cmd.UserStats(
            window=view, totals=totals, buckets=buckets, by_source=dict(by_source.most_common())
        )

    @answers(analytics_cmd.GetGroupStats)
    async def groups(self, req: analytics_cmd.GroupStatsRequest) -> analytics_cmd.GroupStats:
        """get-group-stats: messages, keyword matches, leads, joins and leaves, overall and per group."""
        tl, view = await self._timeline(req)
        scope = _scope(req)
        kinds = ["received", "keyword", "group_join", "group_leave", "member_joined"]
        facts = _without_fleet_members(
            await self._facts(kinds, tl.since, tl.until, scope), await self.store.fleet_users()
        )
        totals = analytics_cmd.GroupTotals()
        watched = await self.store.meta("monitoring")
        totals.groups_watched = int(watched.get("groups_watched", 0)) if watched else 0
        buckets = [analytics_cmd.GroupBucket(start=s) for s in tl.starts]
        per_chat: dict[int, analytics_cmd.GroupActivity] = {}
        senders: dict[int, set[int]] = defaultdict(set)

        def row(chat: int | None, title: str | None = None) -> analytics_cmd.GroupActivity | None:
            if chat is None:
                return None
            r = per_chat.setdefault(chat, analytics_cmd.GroupActivity(chat_id=chat))
            if title:
                r.title = title
            return r

        for f in sorted(facts, key=lambda f: f["t"]):  # so a chat's latest title wins
            if not scope.keep(f):
                continue
            k, i = f["k"], tl.index(f["t"])
            chat = f.get("ch")
            bucket = None if i is None else buckets[i]
            if k == "received":
                if f.get("ck") != "group":
                    continue
                r = row(chat, f.get("title"))
                _add_one("messages", totals, bucket, r)
                if r is not None and "u" in f:
                    senders[chat].add(f["u"])  # type: ignore[index]
            elif k == "keyword":
                _add_one("keyword_matches", totals, bucket, row(chat, f.get("title")))
            elif k == "member_joined":
                _add_one("members_joined", totals, bucket, row(chat, f.get("title")))
            elif k == "group_join":
                totals.groups_joined += 1
                row(chat, f.get("title"))
            elif k == "group_leave":
                totals.groups_left += 1
        # Leads captured in a group of the window; with a chat filter only those whose group is known.
        leads = await self._leads(tl, Scope(account_id=scope.account_id))
        for d in leads:
            if not tl.contains(d["captured_at"]) or not d.get("group"):
                continue
            chat = d["source_chat"]
            if scope.chat_ids is not None and chat not in scope.chat_ids:
                continue
            i = tl.index(d["captured_at"])
            _add_one("leads", totals, None if i is None else buckets[i], row(chat))
        for chat, users in senders.items():
            per_chat[chat].active_users = len(users)
        ranked = sorted(
            per_chat.values(),
            key=lambda r: (-r.messages, -r.keyword_matches, -r.leads, -r.members_joined, r.chat_id),
        )
        return analytics_cmd.GroupStats(window=view, totals=totals, buckets=buckets, groups=ranked[: req.top])

    @answers(analytics_cmd.GetConversionStats)
    async def conversions(self, req: analytics_cmd.ConversionStatsRequest) -> analytics_cmd.ConversionStats:
        """get-conversion-stats: the funnel of the leads captured in the window.

        Stage counts, conversion rate and time to convert are about the cohort captured in
        `[since, until)` and the stages it reached before `until` (a lead that skipped a stage counts as
        having passed it). Buckets count events: leads captured, and leads first reaching `contacted`,
        `replied` and `closed_won` in each bucket, whenever they were captured."""
        tl, view = await self._timeline(req)
        scope = _scope(req)
        leads = await self._leads(tl, scope, req.source)
        cohort = [d for d in leads if tl.contains(d["captured_at"])]
        reached = [0] * len(FUNNEL)
        lost = 0
        hours: list[float] = []
        per_campaign: dict[str, list[int]] = {}
        for d in cohort:
            furthest = max((FUNNEL.index(s) for s in d["reached"] if s in FUNNEL), default=0)
            for j in range(furthest + 1):
                reached[j] += 1
            if LOST in d["reached"]:
                lost += 1
            won = CONVERTED in d["reached"]
            if won:
                hours.append((d["reached"][CONVERTED] - d["captured_at"]).total_seconds() / 3600)
            if d.get("c"):
                figures = per_campaign.setdefault(d["c"], [0, 0])
                figures[0] += 1
                figures[1] += int(won)
        stages = [
            analytics_cmd.StageCount(
                stage=s, count=reached[j], rate_from_previous=_rate(reached[j], reached[j - 1]) if j else None
            )
            for j, s in enumerate(FUNNEL)
        ]
        stages.append(analytics_cmd.StageCount(stage=LOST, count=lost))
        buckets = [analytics_cmd.ConversionBucket(start=s) for s in tl.starts]
        for d in leads:
            if (i := tl.index(d["captured_at"])) is not None:
                buckets[i].leads += 1
            for stage, name in (("contacted", "contacted"), ("replied", "replied"), (CONVERTED, "converted")):
                at = d["reached"].get(stage)
                if at is not None and (i := tl.index(at)) is not None:
                    setattr(buckets[i], name, getattr(buckets[i], name) + 1)
        converted = len(hours)
        by_campaign = [
            analytics_cmd.CampaignConversion(
                campaign_id=c, leads=n, converted=won, conversion_rate=_rate(won, n)
            )
            for c, (n, won) in sorted(per_campaign.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]
        return analytics_cmd.ConversionStats(
            window=view,
            stages=stages,
            leads=len(cohort),
            converted=converted,
            conversion_rate=_rate(converted, len(cohort)),
            avg_hours_to_convert=round(sum(hours) / len(hours), 2) if hours else None,
            buckets=buckets,
            by_campaign=by_campaign,
        )

    # --- generic series --------------------------------------------------------------------------

    @answers(analytics_cmd.GetAnalytics)
    async def analytics(self, req: analytics_cmd.GetAnalyticsRequest) -> analytics_cmd.AnalyticsResult:
        """get-analytics: each metric as a series, or as one series per group key (largest `top`)."""
        tl, view = await self._timeline(req)
        scope = _scope(req)
        kinds = {FACT_METRICS[m][0] for m in req.metrics if m in FACT_METRICS}
        kinds |= {OUTCOME_METRICS[m][0] for m in req.metrics if m in OUTCOME_METRICS}
        if "trigger_leads" in req.metrics:
            kinds.add("trigger")
        if "replies_received" in req.metrics:
            kinds |= {"sent", "received"}
        if "active_users" in req.metrics:
            kinds.add("received")
        if "new_users" in req.metrics:
            kinds.add("sent")
        wants_replies = "replies_received" in req.metrics
        facts, earlier = await self._window(kinds, tl, scope, wants_replies) if kinds else ([], None)
        if "member_joined" in kinds:
            facts = _without_fleet_members(facts, await self.store.fleet_users())
        leads = (
            await self._leads(tl, scope) if {"leads_created", "leads_converted"} & set(req.metrics) else []
        )
        series: list[MetricSeries] = []
        for metric in req.metrics:
            # items: (time, attributes for grouping, value, distinct key or None)
            items: list[tuple[datetime, dict[str, Any], float, Any]] = []
            if metric in FACT_METRICS:
                kind, summed = FACT_METRICS[metric]
                for f in facts:
                    if f["k"] == kind and scope.keep(f):
                        items.append((f["t"], f, float(f.get("n", 1)) if summed else 1.0, None))
            elif metric in OUTCOME_METRICS:
                kind, outcomes = OUTCOME_METRICS[metric]
                for f in facts:
                    if f["k"] == kind and f.get("e") in outcomes and scope.keep(f):
                        items.append((f["t"], f, 1.0, None))
            elif metric == "trigger_leads":
                for f in facts:
                    if f["k"] == "trigger" and f.get("e") == "fired" and f.get("lead") and scope.keep(f):
                        items.append((f["t"], f, 1.0, f["lead"]))
            elif metric == "replies_received":
                for r, s in await self._replies(tl, scope, facts, earlier):
                    items.append((r["t"], {**r, "c": s.get("c")}, 1.0, None))
            elif metric == "active_users":
                for f in facts:
                    if f["k"] == "received" and f.get("ck") == "private" and "u" in f and scope.keep(f):
                        items.append((f["t"], f, 1.0, f["u"]))
            elif metric == "new_users":
                for d in await self._new_users(tl, scope, facts):
                    items.append((d["t"], d, 1.0, None))
            elif metric == "leads_created":
                for d in leads:
                    items.append((d["captured_at"], {**d, "s": Service.CAMPAIGN.value}, 1.0, None))
            elif metric == "leads_converted":
                for d in leads:
                    if CONVERTED in d["reached"]:
                        items.append((d["reached"][CONVERTED], {**d, "s": Service.CAMPAIGN.value}, 1.0, None))
            # ai_tokens: no event carries a token count, so the series stays at zero (see README).
            series.extend(_series(metric, items, tl, req.group_by, req.top))
        return analytics_cmd.AnalyticsResult(window=view, group_by=req.group_by, series=series)


def _series(
    metric: str,
    items: list[tuple[datetime, dict[str, Any], float, Any]],
    tl: Timeline,
    group_by: str,
    top: int,
) -> list[MetricSeries]:
    field = GROUP_FIELD.get(group_by)
    sums: dict[Any, list[float]] = {}
    distinct: dict[Any, list[set[Any]]] = {}
    if field is None:
        sums[None] = [0.0] * len(tl)
    for t, attrs, value, unique in items:
        i = tl.index(t)
        if i is None:
            continue
        key = None if field is None else attrs.get(field)
        if field is not None and key is None:
            continue  # a fact without the grouped attribute belongs to no group
        key = None if key is None else str(key)
        if unique is None:
            sums.setdefault(key, [0.0] * len(tl))[i] += value
        else:
            distinct.setdefault(key, [set() for _ in tl.starts])[i].add(unique)
    rows: list[tuple[Any, list[float], float]] = []
    for key, points in sums.items():
        if key in distinct:
            continue
        rows.append((key, points, sum(points)))
    for key, sets in distinct.items():
        rows.append((key, [float(len(s)) for s in sets], float(len(set().union(*sets)))))
    if field is not None:
        rows.sort(key=lambda r: (-r[2], r[0]))
        rows = rows[:top]
    return [
        MetricSeries(
            metric=metric,
            key=key,
            total=total,
            points=[SeriesPoint(start=s, value=v) for s, v in zip(tl.starts, points, strict=True)],
        )
        for key, points, total in rows
    ]


def _add_one(name: str, *figures: object) -> None:
    """One more `name` in each of `figures` (the totals, a bucket, a row) that is there (not None)."""
    for figure in figures:
        if figure is not None:
            setattr(figure, name, getattr(figure, name) + 1)


def _origins(
    facts: Iterable[dict[str, Any]], fleet: frozenset[int]
) -> tuple[analytics_cmd.SentByOrigin, analytics_cmd.ReceivedByOrigin]:
    """`sent` by origin (the fact's `o`; facts stored before origins were recorded are `queue` unless
    typed elsewhere could not be told) and `received` by writer (a fleet account's user id or not)."""
    sent = analytics_cmd.SentByOrigin()
    received = analytics_cmd.ReceivedByOrigin()
    for f in facts:
        if f["k"] == "sent":
            origin = f.get("o") or "queue"
            setattr(sent, origin, getattr(sent, origin) + 1)
        elif f["k"] == "received":
            if f.get("u") in fleet:
                received.fleet += 1
            else:
                received.people += 1
    return sent, received


def _without_fleet_members(facts: list[dict[str, Any]], fleet: frozenset[int]) -> list[dict[str, Any]]:
    """The facts without the `member-joined` of the fleet's own accounts (our accounts joining a group
    are not members the group gained)."""
    if not fleet:
        return facts
    return [f for f in facts if f["k"] != "member_joined" or f.get("u") not in fleet]


def _plain(scope: Scope) -> Scope:
    """The scope of reply detection: conversations of the account/chat filters, any campaign and kind
    (a reply's campaign is the answered send's, checked after pairing)."""
    return Scope(scope.account_id, None, scope.chat_id, None, scope.chat_ids)


def _fact_query(
    kinds: Iterable[str], since: datetime, until: datetime, scope: Scope, extra: dict[str, Any]
) -> dict[str, Any]:
    q: dict[str, Any] = {"t": {"$gte": since, "$lt": until}, "k": {"$in": sorted(set(kinds))}}
    q.update(scope.pushdown())
    q.update(extra)
    return q


def _matcher(q: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """The fact query `_facts` builds, as a predicate: equality, `$in`, and `$gte`/`$lt` on `t`.

    Mirrors the server's semantics for these forms: an absent field equals only None (so it never
    matches an equality or `$in` on values)."""
    checks: list[Callable[[dict[str, Any]], bool]] = []
    for field, cond in q.items():
        if isinstance(cond, dict):
            unknown = set(cond) - {"$in", "$gte", "$lt"}
            if unknown:
                raise ValueError(f"unsupported operators {sorted(unknown)} on {field}")
            if "$in" in cond:
                checks.append(functools.partial(_is_in, field, frozenset(cond["$in"])))
            if "$gte" in cond:
                checks.append(functools.partial(_at_least, field, cond["$gte"]))
            if "$lt" in cond:
                checks.append(functools.partial(_below, field, cond["$lt"]))
        else:
            checks.append(functools.partial(_equals, field, cond))
    return lambda d: all(check(d) for check in checks)


def _is_in(field: str, values: frozenset[Any], d: dict[str, Any]) -> bool:
    return d.get(field) in values


def _at_least(field: str, lo: Any, d: dict[str, Any]) -> bool:
    return d.get(field) is not None and d[field] >= lo


def _below(field: str, hi: Any, d: dict[str, Any]) -> bool:
    return d.get(field) is not None and d[field] < hi


def _equals(field: str, value: Any, d: dict[str, Any]) -> bool:
    return d.get(field) == value


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)


def retention_cutoff(now: datetime, days: int) -> datetime:
    return now - timedelta(days=days)
