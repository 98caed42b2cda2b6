"""bench/lists: what every list command costs with 10,000 rows behind it (issue 16: "a bench shows each
list command's cost at 10,000 rows"), on the embedded default stack, over the gateway's HTTP API
(`POST /api/v1/commands/<name>`, one client, one request at a time).

- List commands: every command whose response is a `Page[...]` in `tgm_contracts` (25 of the 26 are
  measured; `get-group-members` reads the members from Telegram through a live account, which the
  default stack has not got, so it is listed as not measured).
- Seeding: one real row per list is made through the public commands (add-account, ip-bind,
  add-keyword-set, add-template, add-group, save-trigger-rule, add-lead, track-user, add-campaign,
  create-ad-campaign, save-role, save-script, save-scenario, start/stop-collaboration,
  start/stop-swarm, save-chat-history, credential-start-scrape); the rest are copies of that row,
  inserted straight into the owning service's collection (the shape its store wrote, with `_id`,
  the fields of unique indexes and the times varied: each copy is a second older than the one
  before). Rows the stack cannot make without Telegram (collected users, created groups, activity
  items, alerts) are built as the store's insert code builds them (`build_*` below). The services
  that own seeded collections are restarted afterwards (no cache from before the seeding is read),
  and the bench waits until every JetStream consumer is idle (`settle`, bench/gateway/run.py).
- Measured per command: the first page (the command's default page size, no filter) `--calls`
  times (20), then the bench follows `nextCursor` to about row 9,000 (`--deep`, 0.9 of the rows) and
  fetches that page as many times: median and p95 latency of each, and the server CPU per page
  (psutil user + system of every service process and the database server over the timed calls,
  divided by the calls). A deep page costing more than 3x its first page (and 5 ms more) is
  flagged SCANS; a command that answers every row at once (no cursor in its request) is flagged
  UNPAGED, and a page over 1 s SLOW. A command whose call takes seconds is called fewer times (at
  least 3), as the table says.
- Output: the table, the machine (CPU model, cores) and its load average before and after, also
  written to `last-run.txt` beside this file (`--out` moves it). It asserts nothing.

Usage: python bench/lists/run.py [--rows 10000] [--only get-leads,get-logs] [--calls 20]
       python bench/lists/run.py --data DIR   # keep the stack's data: a second run seeds nothing

Wrap runs in `flock /tmp/bench.lock ...` on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.util
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import psutil
import pymongo
from tgm_contracts import bus
from tgm_contracts.models.session import ChatView, TelegramUser
from tgm_stack import Stack

HERE = Path(__file__).resolve().parent
Doc = dict[str, Any]


def _gateway_bench() -> Any:
    """bench/gateway/run.py as a module (its `settle`, `cpu_seconds`), loaded by path: both files are `run.py`."""
    spec = importlib.util.spec_from_file_location("bench_gateway_run", HERE.parent / "gateway" / "run.py")
    assert spec and spec.loader
    module = sys.modules.get(spec.name) or importlib.util.module_from_spec(spec)
    if spec.name not in sys.modules:
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------ the lists


@dataclass
class Target:
    """One list command and the rows behind it."""

    command: str
    service: str
    db: str
    collection: str
    #: The rows this command lists (counted to decide how many to seed) and the exemplar among them.
    rows: Doc = field(default_factory=dict)
    #: The exemplar copies are made of, among the rows (default: any of them).
    exemplar: Doc | None = None
    payload: Doc = field(default_factory=dict)
    paged: bool = True
    #: Builds row i from scratch (no exemplar); None: copies of an exemplar the public commands made.
    build: Callable[[int, Context], Doc] | None = None
    #: Adjusts copy i of the exemplar beyond `_id`, unique-index fields and times.
    fix: Callable[[Doc, int], None] | None = None
    #: Rows come from another target's seeding (the same collection).
    seeded_by: str | None = None


@dataclass
class Context:
    """Ids the public commands made, for rows built from scratch."""

    account_id: str
    tracked_user_id: int
    tracked_lead_id: str | None
    base: datetime


BENCH_CHAT = -1001234567
TRACKED_USER = 990002


def build_collected(i: int, ctx: Context) -> Doc:
    """tg-session extraction/service.py: a member as the extraction job stores it."""
    user = TelegramUser(
        user_id=5_000_000 + i,
        username=f"bench_user_{i}",
        first_name="Bench",
        last_name=f"User {i}",
        presence="recently",
    )
    job_id = "ext_bench000000000000"
    return {
        **user.model_dump(by_alias=False),
        "_id": f"{job_id}:{user.user_id}",
        "source_chat_id": BENCH_CHAT,
        "source_chat_title": "bench group",
        "job_id": job_id,
        "account_id": ctx.account_id,
        "member_role": "member",
        "collected_at": ctx.base - timedelta(seconds=i),
        "last_message_at": None,
    }


def build_created_group(i: int, ctx: Context) -> Doc:
    """tg-session groups/service.py `create_here`: the record of a group the fleet created."""
    chat = ChatView(chat_id=-1002000000000 - i, kind="supergroup", title=f"bench group {i}", is_admin=True)
    return {
        "_id": f"cg_be{i:014x}",
        "account_id": ctx.account_id,
        "kind": "supergroup",
        "chat": chat.model_dump(mode="json", by_alias=False),
        "invite_link": None,
        "invited": [],
        "failed_invites": [],
        "created_at": ctx.base - timedelta(seconds=i),
    }


def build_activity(i: int, ctx: Context) -> Doc:
    """campaign crm/consumers.py: a tracked user's group message, one activity item."""
    return {
        "_id": f"g|{BENCH_CHAT}|{1_000_000 + i}",
        "user_id": ctx.tracked_user_id,
        "username_key": None,
        "lead_id": ctx.tracked_lead_id,
        "kind": "group_message",
        "at": ctx.base - timedelta(seconds=i),
        "account_id": ctx.account_id,
        "group_id": str(BENCH_CHAT),
        "group_title": "bench group",
        "text": f"bench message {i}",
        "ref_id": str(1_000_000 + i),
        "detail": {"chatId": BENCH_CHAT, "messageId": 1_000_000 + i},
    }


def build_alert(i: int, ctx: Context) -> Doc:
    """analytics alerts/store.py `raise_`: an open alert as first raised."""
    at = (ctx.base - timedelta(seconds=i)).replace(microsecond=0)
    event_id = uuid.uuid4().hex
    return {
        "_id": f"be{i:030x}",
        "level": ("info", "warning", "error", "critical")[i % 4],
        "code": "bench_alert",
        "title": "bench alert",
        "message": f"bench alert {i}",
        "service": "tg-session",
        "account_id": None,
        "subject": None,
        "count": 1,
        "first_seen_at": at,
        "last_seen_at": at,
        "dismissed": False,
        "dismissed_at": None,
        "dismissed_by": None,
        "note": None,
        "source_event_id": event_id,
        "fold_key": f"bench_alert|{i}",
        "recent_event_ids": [event_id],
    }


def _fix_account(d: Doc, i: int) -> None:
    d["phone"] = f"+1556{i:07d}"
    d["label"] = f"bench {i}"


def _fix_conversation(d: Doc, i: int) -> None:
    key = f"@benchpeer{i}"
    d["chat_key"], d["peer_keys"] = key, [key]
    d["_id"] = f"{d['account_id']}|{key}"


def _fix_run(d: Doc, i: int) -> None:
    d["state"]["run_id"] = d["_id"]
    d["idempotency_key"] = None


def _fix_swarm(d: Doc, i: int) -> None:
    d.pop("active_chat", None)  # a stopped swarm holds no chat (the unique, sparse `one_per_chat`)


C, TS, AN = "tgm_campaign", "tgm_session", "tgm_analytics"
TARGETS = [
    Target(
        "get-accounts",
        "tg-session",
        TS,
        "accounts",
        exemplar={"binding.is_active": True},  # copies of a bound account: the bindings' rows too
        fix=_fix_account,
    ),
    Target(
        "ip-get-all-bindings",
        "tg-session",
        TS,
        "accounts",
        rows={"binding.is_active": True},
        seeded_by="get-accounts",
    ),
    Target("credential-get-all", "tg-session", TS, "credential_scrapes"),
    Target("get-collected-users", "tg-session", TS, "collected_users", build=build_collected),
    Target("get-created-groups", "tg-session", TS, "created_groups", build=build_created_group),
    Target("get-leads", "campaign", C, "leads"),
    Target("get-funnel-users", "campaign", C, "leads", seeded_by="get-leads"),
    Target("get-tracked-users", "campaign", C, "tracked_users"),
    Target(
        "get-user-activity",
        "campaign",
        C,
        "activity",
        rows={"user_id": TRACKED_USER},
        payload={"userId": TRACKED_USER},
        build=build_activity,
    ),
    Target("get-keyword-sets", "campaign", C, "keyword_sets", paged=False),
    Target("get-monitored-groups", "campaign", C, "groups", paged=False),
    Target("get-trigger-rules", "campaign", C, "trigger_rules", paged=False),
    Target("get-campaigns", "campaign", C, "campaigns"),
    Target(
        "get-chat-templates",
        "campaign",
        C,
        "templates",
        rows={"category": "custom"},
        payload={"category": "custom"},
        paged=False,
    ),
    Target("get-ad-templates", "campaign", C, "templates", rows={"category": "ad"}, paged=False),
    Target(
        "get-chat-history",
        "campaign",
        C,
        "messages",
        rows={"chat_key": "@benchpeer"},
        payload={"peer": "@benchpeer"},  # one peer's history (peer or leadId is required)
    ),
    Target("get-private-messages", "campaign", C, "conversations", fix=_fix_conversation),
    Target("get-roles", "campaign", C, "roles", paged=False),
    Target("get-scripts", "campaign", C, "scripts", paged=False),
    Target("get-scenarios", "campaign", C, "scenarios", paged=False),
    Target("get-collaboration-status", "campaign", C, "collaboration_runs", fix=_fix_run),
    Target("get-swarm-status", "campaign", C, "swarms", paged=False, fix=_fix_swarm),
    Target("get-ad-campaigns", "campaign", C, "ad_campaigns"),
    Target("get-alerts", "analytics", AN, "alerts", build=build_alert),
    Target("get-logs", "analytics", AN, "logs"),
]
NOT_MEASURED = {
    "get-group-members": "read live from Telegram by an account (tg-session groups/service.py "
    "`members_here`); the default stack has no logged-in account, so nothing to page through",
}


# ------------------------------------------------------------------------------ seeding


class Gateway:
    """The public commands, over the gateway's HTTP API."""

    def __init__(self, stack: Stack) -> None:
        headers = {"authorization": f"Bearer {stack.admin_key}"}
        self.http = httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=120)

    def call(self, command: str, payload: Doc) -> httpx.Response:
        return self.http.post(f"/api/v1/commands/{command}", json=payload)

    def ok(self, command: str, payload: Doc) -> Any:
        r = self.call(command, payload)
        body = orjson.loads(r.content)
        if not body.get("ok"):
            raise RuntimeError(f"{command} {payload}: {body}")
        return body["data"]


def make_exemplars(gw: Gateway, db: pymongo.MongoClient[Doc]) -> Context:
    """One real row per list, through the public commands (skipped when a kept data dir has them)."""
    session, campaign = db[TS], db[C]
    if not session.api_credentials.find_one({"api_id": 100_001}):
        gw.ok(
            "save-api-credential", {"apiId": 100_001, "apiHash": "0" * 32, "maxAccounts": 1000, "test": False}
        )
    accounts = []
    for n in (1, 2):
        phone = f"+155500000{n:02d}"
        doc = session.accounts.find_one({"phone": phone})
        accounts.append(
            doc["_id"] if doc else gw.ok("add-account", {"phone": phone, "label": f"bench {n}"})["id"]
        )
    acc1, acc2 = accounts
    if not session.accounts.find_one({"_id": acc1, "binding": {"$ne": None}}):
        proxy = {"type": "socks5", "host": "127.0.0.1", "port": 1}
        gw.ok(
            "ip-bind",
            {"accountId": acc1, "proxy": proxy, "verify": False, "reconnect": False, "country": "de"},
        )
    if not session.credential_scrapes.find_one():
        gw.ok("credential-start-scrape", {"accountId": acc1, "codeSource": "manual"})
        deadline = time.monotonic() + 30  # it fails at once (no site session): copy a settled run
        while session.credential_scrapes.find_one({"state": {"$in": ["starting", "waiting_code"]}}):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    if not (ks := campaign.keyword_sets.find_one()):
        ks = {
            "_id": gw.ok("add-keyword-set", {"name": "bench set", "keywords": [{"keyword": "price"}]})["id"]
        }
    for category in ("custom", "ad"):
        if not campaign.templates.find_one({"category": category}):
            gw.ok("add-template", {"name": f"bench {category}", "category": category, "content": "hello"})
    ad_template = campaign.templates.find_one({"category": "ad"})["_id"]  # type: ignore[index]
    if not (group := campaign.groups.find_one()):
        group = {"_id": gw.ok("add-group", {"group": "@benchgroup"})["id"]}
    if not campaign.trigger_rules.find_one():
        actions = [{"type": "notify"}]
        gw.ok("save-trigger-rule", {"name": "bench rule", "keywordSetIds": [ks["_id"]], "actions": actions})
    if not (lead := campaign.leads.find_one({"user_id": 990_001})):
        lead = {"_id": gw.ok("add-lead", {"userId": 990_001, "firstName": "Bench", "tags": ["bench"]})["id"]}
    if not campaign.tracked_users.find_one():
        gw.ok("track-user", {"userId": TRACKED_USER, "valueLevel": "high"})
    if not campaign.campaigns.find_one():
        gw.ok(
            "add-campaign",
            {"name": "bench", "audience": {"leadIds": [lead["_id"]]}, "steps": [{"text": "hi"}]},
        )
    if not campaign.ad_campaigns.find_one():
        schedule = {"type": "once", "startAt": "2030-01-01T00:00:00Z"}
        gw.ok(
            "create-ad-campaign",
            {
                "name": "bench",
                "templateIds": [ad_template],
                "targets": [{"groupId": group["_id"]}],
                "schedule": schedule,
            },
        )
    done = all(campaign[c].find_one() for c in ("scenarios", "collaboration_runs", "swarms"))
    roles = [] if done else [r["id"] for r in gw.ok("get-roles", {})["items"] if r.get("boundAccountId")]
    if not roles and not done:
        gw.ok("save-role", {"name": "bench role"})
        roles = [gw.ok("save-role", {"name": f"bench {a}", "boundAccountId": a})["id"] for a in (acc1, acc2)]
    if not (script := campaign.scripts.find_one()):
        stages = [{"trigger": {"type": "manual"}, "lines": [{"slot": "a", "text": "hi"}]}]
        script = {
            "_id": gw.ok("save-script", {"name": "bench", "roles": [{"key": "a"}], "stages": stages})["id"]
        }
    if not campaign.scenarios.find_one():
        gw.ok(
            "save-scenario",
            {
                "name": "bench",
                "scriptId": script["_id"],
                "roleBindings": {"a": roles[0]},
                "where": "existing_group",
                "chat": "@benchgroup",
            },
        )
    if not campaign.collaboration_runs.find_one():
        run = gw.ok(
            "start-collaboration",
            {
                "scriptId": script["_id"],
                "roleBindings": {"a": roles[0]},
                "chat": BENCH_CHAT,
                "leadId": lead["_id"],
                "startAt": "2030-01-01T00:00:00Z",
            },
        )
        gw.ok("stop-collaboration", {"runId": run["id"]})
    if not campaign.swarms.find_one():
        swarm = gw.ok("start-swarm", {"chat": BENCH_CHAT, "roleIds": roles[:2], "durationMinutes": 60})
        gw.ok("stop-swarm", {"swarmId": swarm["id"]})
    if not campaign.messages.find_one():
        message = {"text": "hi", "direction": "in", "date": "2024-01-01T00:00:00Z"}
        gw.ok("save-chat-history", {"accountId": acc1, "peer": "@benchpeer", "messages": [message]})
    tracked = campaign.leads.find_one({"user_id": TRACKED_USER})
    return Context(acc1, TRACKED_USER, tracked["_id"] if tracked else None, datetime.now(UTC))


_HEX_TAIL = re.compile(r"[0-9a-f]{10,}$")


def copy_id(exemplar_id: Any, i: int, salt: int) -> Any:
    """A new `_id` of the exemplar's form: its trailing hex replaced by "b", the target's number
    (two lists may share a collection) and i."""
    if isinstance(exemplar_id, str) and (m := _HEX_TAIL.search(exemplar_id)):
        width = len(m.group())
        return exemplar_id[: m.start()] + f"b{salt:02x}{i:0{width - 3}x}"[-width:]
    return f"{exemplar_id}~b{salt}_{i}"


def _shifted(value: Any, by: timedelta) -> Any:
    if isinstance(value, datetime):
        return value - by
    if isinstance(value, dict):
        return {k: _shifted(v, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_shifted(v, by) for v in value]
    return value


def unique_fields(coll: pymongo.collection.Collection[Doc]) -> list[str]:
    return sorted(
        {k for info in coll.index_information().values() if info.get("unique") for k, _ in info["key"]}
        - {"_id"}
    )


def copies(target: Target, exemplar: Doc, first: int, count: int, uniques: list[str]) -> Iterator[Doc]:
    salt = TARGETS.index(target)
    for i in range(first, first + count):
        d = _shifted(copy.deepcopy(exemplar), timedelta(seconds=i))
        d["_id"] = copy_id(exemplar["_id"], i, salt)
        for name in uniques:
            v = d.get(name)
            if isinstance(v, bool) or v is None:
                continue
            if isinstance(v, int):
                d[name] = v + 10_000_000 + i if v >= 0 else v - 10_000_000 - i
            elif isinstance(v, str):
                d[name] = f"{v}_b{salt}_{i}"
        if target.fix:
            target.fix(d, i)
        yield d


def seed(target: Target, db: pymongo.MongoClient[Doc], ctx: Context, rows: int) -> int:
    """Bring the target's rows up to `rows`; the number inserted."""
    coll = db[target.db][target.collection]
    have = coll.count_documents(target.rows)
    if have >= rows or target.seeded_by:
        return 0
    missing = rows - have
    first = have  # row i is the i-th of the list: ids and unique fields made from i do not repeat
    if target.build:
        docs: Iterator[Doc] = (target.build(i, ctx) for i in range(first, first + missing))
    else:
        exemplar = coll.find_one({**target.rows, **(target.exemplar or {})}, sort=[("_id", 1)])
        if exemplar is None:
            raise RuntimeError(f"{target.command}: no exemplar row in {target.db}.{target.collection}")
        docs = copies(target, exemplar, first, missing, unique_fields(coll))
    batch: list[Doc] = []
    for d in docs:
        batch.append(d)
        if len(batch) == 1000:
            _insert(coll, batch)
            batch = []
    if batch:
        _insert(coll, batch)
    return missing


def _insert(coll: pymongo.collection.Collection[Doc], batch: list[Doc]) -> None:
    try:
        coll.insert_many(batch, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        first = exc.details["writeErrors"][0]
        raise RuntimeError(
            f"{coll.full_name}: {len(exc.details['writeErrors'])} rows refused: {first['errmsg']}"
        ) from None


async def settle(stack: Stack) -> int:
    nc = await nats.connect(stack.nats_url_for("gateway"), inbox_prefix=bus.inbox_prefix("gateway"))
    try:
        return int(await _gateway_bench().settle(nc, timeout=60))
    except RuntimeError as exc:  # measured anyway; said in the output
        print(f"  not settled: {exc}", flush=True)
        return -1
    finally:
        await nc.close()


# --------------------------------------------------------------------------- measuring


@dataclass
class Timed:
    ms: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per call, per process
    items: int = 0
    errors: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        if not self.ms:
            return float("nan")
        s = sorted(self.ms)
        return s[min(len(s) - 1, round(q * (len(s) - 1)))]


@dataclass
class Result:
    target: Target
    rows: int
    first: Timed
    deep: Timed | None = None
    deep_row: int | None = None
    total: int | None = None
    page_size: int = 0
    flags: list[str] = field(default_factory=list)


class Meter:
    def __init__(self, stack: Stack) -> None:
        pids = {c.service: c.process.pid for c in stack.children.values()}
        assert stack.mongo is not None, "the bench runs the embedded stack"
        pids["database"] = stack.mongo.process.pid
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items() if pid}

    def cpu(self) -> dict[str, float]:
        return _gateway_bench().cpu_seconds(self.procs)


def timed_calls(gw: Gateway, meter: Meter, command: str, payload: Doc, calls: int) -> Timed:
    """`calls` requests (fewer when one takes seconds: at least 3, about 20 s in all)."""
    out = Timed()
    before = meter.cpu()
    n = 0
    while n < calls:
        started = time.perf_counter()
        r = gw.call(command, payload)
        out.ms.append((time.perf_counter() - started) * 1000)
        n += 1
        body = orjson.loads(r.content)
        if body.get("ok"):
            out.items = len(body["data"].get("items") or [])
        else:
            out.errors.append(body["error"]["code"])
        if n >= 3 and sum(out.ms) > 20_000:
            break
    after = meter.cpu()
    out.cpu_ms = {k: (after[k] - before[k]) * 1000 / n for k in after}
    return out


def measure(gw: Gateway, meter: Meter, target: Target, rows: int, calls: int, deep_at: float) -> Result:
    payload = dict(target.payload)
    for _ in range(2):  # warm-up: connections, the service's first read
        gw.call(target.command, payload)
    first_page = gw.ok(target.command, payload)
    result = Result(target, rows, timed_calls(gw, meter, target.command, payload, calls))
    result.total = first_page.get("total")
    result.page_size = len(first_page.get("items") or [])
    if not target.paged:
        some = "every row" if result.page_size >= rows else f"the first {result.page_size:,} only"
        result.flags.append(f"UNPAGED ({some})")
    elif first_page.get("nextCursor"):
        seen, page, cursor = result.page_size, first_page, first_page["nextCursor"]
        while cursor and seen < deep_at * rows:
            page = gw.ok(target.command, {**payload, "cursor": cursor})
            seen += len(page["items"])
            cursor = page.get("nextCursor")
        if cursor:
            result.deep_row = seen
            result.deep = timed_calls(gw, meter, target.command, {**payload, "cursor": cursor}, calls)
    first_ms = statistics.median(result.first.ms)
    if result.deep is not None:
        deep_ms = statistics.median(result.deep.ms)
        if deep_ms > 3 * first_ms and deep_ms - first_ms > 5:
            result.flags.append(f"SCANS (deep {deep_ms / first_ms:.1f}x first)")
    if max(first_ms, statistics.median(result.deep.ms) if result.deep else 0) > 1000:
        result.flags.append("SLOW")
    if result.first.errors:
        result.flags.append(f"errors: {', '.join(sorted(set(result.first.errors)))}")
    return result


def fmt_cpu(cpu: dict[str, float]) -> str:
    parts = [f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1]) if v >= 0.05]
    return f"{sum(cpu.values()):.1f} ({', '.join(parts)})" if parts else f"{sum(cpu.values()):.1f}"


def report(results: list[Result], failed: dict[str, str] | None = None) -> list[str]:
    lines = [
        "| command | service | rows | page | first p50 / p95 ms | first CPU ms/page | deep row | "
        "deep p50 / p95 ms | deep CPU ms/page | calls | flags |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        deep = r.deep
        lines.append(
            f"| `{r.target.command}` | {r.target.service} | {r.rows:,} | {r.page_size:,} | "
            f"{r.first.p(0.5):.1f} / {r.first.p(0.95):.1f} | {fmt_cpu(r.first.cpu_ms)} | "
            f"{f'{r.deep_row:,}' if r.deep_row else '—'} | "
            f"{f'{deep.p(0.5):.1f} / {deep.p(0.95):.1f}' if deep else '—'} | "
            f"{fmt_cpu(deep.cpu_ms) if deep else '—'} | "
            f"{len(r.first.ms)}{f' + {len(deep.ms)}' if deep else ''} | {'; '.join(r.flags) or 'ok'} |"
        )
    for command, why in (failed or {}).items():
        lines.append(f"| `{command}` | — | — | — | FAILED: {why} | | | | | | |")
    if failed is None:
        return lines
    for command, why in NOT_MEASURED.items():
        lines.append(f"| `{command}` | tg-session | — | — | not measured: {why} | | | | | | |")
    return lines


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_all(
    stack: Stack, gw: Gateway, db: pymongo.MongoClient[Doc], targets: list[Target], rows: int
) -> None:
    """Every target up to `rows`, the owning services restarted, the event consumers idle."""
    t0 = time.perf_counter()
    ctx = make_exemplars(gw, db)
    seeded: dict[str, int] = {}
    for t in targets:
        by = next((s for s in TARGETS if s.command == t.seeded_by), None)
        for s in (by, t) if by else (t,):
            n = seed(s, db, ctx, rows)
            if n:
                seeded[s.service] = seeded.get(s.service, 0) + n
                print(f"  {s.command}: {n:,} rows inserted into {s.db}.{s.collection}", flush=True)
    for service in seeded:  # no cache from before the rows were inserted
        stack.restart(service)
    backlog = asyncio.run(settle(stack))
    print(
        f"{rows:,} rows per list: seeded {sum(seeded.values()):,} rows in {time.perf_counter() - t0:.0f} s "
        f"(restarted: {', '.join(seeded) or 'none'}; {backlog} events were pending)",
        flush=True,
    )


def grows(small: Result, large: Result) -> None:
    """Flag a first page whose cost rose with the rows (a count or a scan on every page)."""
    a, b = statistics.median(small.first.ms), statistics.median(large.first.ms)
    if b > 3 * a and b - a > 5:
        large.flags.insert(0, f"GROWS ({b / a:.1f}x from {small.rows:,} to {large.rows:,} rows)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", default="10000", help="rows behind each list; several ascending (1000,10000) compare them"
    )
    parser.add_argument("--only", default="", help="comma-separated command names")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per page")
    parser.add_argument("--deep", type=float, default=0.9, help="the deep page: this share of the rows")
    parser.add_argument("--data", type=Path, help="the stack's data directory, kept between runs")
    parser.add_argument("--out", type=Path, default=HERE / "last-run.txt")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.rows.split(",") if n.strip())
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - {t.command for t in TARGETS} - set(NOT_MEASURED)
    if unknown:
        raise SystemExit(f"unknown list commands: {', '.join(sorted(unknown))}")
    targets = [t for t in TARGETS if not only or t.command in only]
    load_start = os.getloadavg()
    started = datetime.now(UTC)
    env = {"TGM_GATEWAY_KEY_RATE_PER_SECOND": "1000000", "TGM_GATEWAY_KEY_RATE_BURST": "1000000"}
    runs: list[tuple[int, list[Result], dict[str, str]]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(args.data or Path(tmp) / "data", gateway_port=0, extra_env=env) as stack,
    ):
        gw = Gateway(stack)
        db: pymongo.MongoClient[Doc] = pymongo.MongoClient(stack.mongodb_uri)
        for count in counts:
            seed_all(stack, gw, db, targets, count)
            meter = Meter(stack)
            results: list[Result] = []
            failed: dict[str, str] = {}
            for t in targets:
                rows = db[t.db][t.collection].count_documents(t.rows)
                try:
                    r = measure(gw, meter, t, rows, args.calls, args.deep)
                except (RuntimeError, httpx.HTTPError) as exc:
                    print(f"  {t.command}: failed: {exc}", flush=True)
                    failed[t.command] = f"{rows:,} rows: {str(exc)[:300]}"
                    continue
                if runs and (before := next((b for b in runs[0][1] if b.target is t), None)):
                    grows(before, r)
                results.append(r)
                print("  " + report([r])[2], flush=True)
            runs.append((count, results, failed))
        db.close()
    load_end = os.getloadavg()
    header = [
        f"bench/lists {started:%Y-%m-%d %H:%M} UTC: {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load_start[0]:.2f} before, "
        f"{load_end[0]:.2f} after; over the gateway's HTTP API, one client, one request at a time; "
        f"first page = the default page size, no filter; deep page = the page at about {args.deep:.0%} "
        "of the rows (following nextCursor); CPU = user + system ms of every service process and the "
        "database server, per page",
    ]
    lines = list(header)
    for count, results, failed in runs:
        lines += ["", f"{count:,} rows per list:", "", *report(results, failed)]
    lines += [
        "",
        "SCANS: the deep page costs > 3x the first (and > 5 ms more). GROWS: the first page costs > 3x",
        "what it cost with the fewest rows (and > 5 ms more): a count or a read of every row on each page.",
        "UNPAGED: the request has no cursor (or limit); one call answers every row, or the first n only.",
        "SLOW: a page over 1 s. calls: first-page + deep-page calls timed (fewer than asked when a call",
        "takes seconds: at least 3, about 20 s in all).",
    ]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if not only:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
