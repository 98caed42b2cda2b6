"""bench/pacing: the campaign queue against the Telegram emulator with known limits, and a naive
baseline in the same run.

One process: a nats-server and the database server (children), the emulator, tg-session (real
Telethon inside) and campaign, all in this event loop. Three fleets, each with its own accounts,
users (who wrote to their account first) and groups, and the same workload: `--rounds` messages to
every user and `--posts` to every group.

- queue: the workload through `queue-message`, paced by campaign with settings derived from the
  emulator's limits (per account 30/min, per private chat 1/s, per group 20/min; jitter off, the
  default safety margin of 1 s);
- naive: a loop that sends through Telethon with a fixed sleep after each message (on FLOOD_WAIT it
  counts a violation, sleeps what Telegram asked and retries), with two sleeps: the one that exactly
  matches the fleet's per-account limit on average, and 1 s.

For each: makespan (first send to last delivery), throughput as a fraction of the most the limits
allow (a greedy schedule of the same messages under the emulator's exact limits, sends taking no
time), and limit violations (FLOOD_WAIT / PEER_FLOOD answers). Prints a table; `--out` writes it.

    .venv/bin/python bench/pacing/run.py --out bench/pacing/last-run.txt   # ~15 min: 4 accounts, 420 messages
    .venv/bin/python bench/pacing/run.py --quick                           # ~5 min, one naive run
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
API_HASH = "0123456789abcdef0123456789abcdef"


@dataclass
class Message:
    account: int  # index of the account that must send it (private), or -1 (any: group posts)
    peer: int  # emulator user id, or marked group id
    group: bool
    text: str


@dataclass
class Fleet:
    name: str
    accounts: list[Any] = field(default_factory=list)
    users: list[Any] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=list)
    workload: list[Message] = field(default_factory=list)


def build_fleet(
    emu: Any, name: str, index: int, n_accounts: int, users_per: int, n_groups: int, rounds: int, posts: int
) -> Fleet:
    w = emu.world
    f = Fleet(name)
    for i in range(n_accounts):
        f.accounts.append(w.add_user(f"+1556{index}0{i:04d}", first_name=f"{name}{i}"))
    for j in range(n_accounts * users_per):
        u = w.add_user(f"+1556{index}1{j:04d}", first_name=f"User{j}")
        f.users.append(u)
    for k in range(n_groups):
        ch = w.create_channel(f.accounts[0], f"{name} group {k}")
        w.invite_to_channel(f.accounts[0], ch, f.accounts[1:])
        f.groups.append(-1_000_000_000_000 - ch.id)
        f.channel_ids.append(ch.id)
    for r in range(rounds):
        for j, u in enumerate(f.users):
            f.workload.append(Message(j % n_accounts, u.id, False, f"{name} r{r} u{j} [{name}-p{r}-{j}]"))
    for m in range(posts):
        for k, g in enumerate(f.groups):
            f.workload.append(Message(-1, g, True, f"{name} post {m} [{name}-g{k}-{m}]"))
    return f


def users_write_first(emu: Any, f: Fleet) -> None:
    for j, u in enumerate(f.users):
        emu.world.post(u, f.accounts[j % len(f.accounts)], f"hello from user {j}")


# --- the limit-implied best schedule -------------------------------------------------------------


def best_makespan(f: Fleet, limits: Any) -> float:
    """Greedy earliest-feasible schedule of the workload (in order) under the emulator's limits, sends
    taking no time: per account, per private chat, per group. Group posts take whichever account can
    post first."""

    def slot(q: deque[float], rl: Any, t: float) -> float:
        if rl is None:
            return t
        recent = [x for x in q if x > t - rl.window]
        if len(recent) < rl.count:
            return t
        return recent[len(recent) - rl.count] + rl.window

    acct: dict[int, deque[float]] = {i: deque() for i in range(len(f.accounts))}
    chat: dict[tuple[int, int], deque[float]] = {}
    last = 0.0
    for msg in f.workload:
        options = [msg.account] if msg.account >= 0 else list(acct)
        best_t, best_a = math.inf, -1
        for a in options:
            q = chat.setdefault((a, msg.peer), deque())
            rl = limits.group_messages if msg.group else limits.private_chat_messages
            t = 0.0
            for _ in range(100):  # the two windows interact: iterate to a fixed point
                t2 = max(slot(acct[a], limits.account_messages, t), slot(q, rl, t))
                if t2 == t:
                    break
                t = t2
            if t < best_t:
                best_t, best_a = t, a
        acct[best_a].append(best_t)
        chat[(best_a, msg.peer)].append(best_t)
        last = max(last, best_t)
    return last


# --- the runs ------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    messages: int
    delivered: int
    makespan: float
    best: float
    violations: int
    duplicates: int
    note: str = ""

    @property
    def fraction(self) -> float:
        return self.best / self.makespan if self.makespan > 0 else 0.0


def args_debug() -> bool:
    import os

    return bool(os.environ.get("BENCH_PACING_DEBUG"))


def deliveries_of(emu: Any, f: Fleet) -> list[Any]:
    ours = {a.id for a in f.accounts}
    return [d for d in emu.world.deliveries if d.from_user_id in ours and "[" in d.text]


async def wait_for(pred: Any, timeout: float, interval: float = 0.1, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met in {timeout}s")
        await asyncio.sleep(interval)


class Caller:
    """Commands on the bus as the gateway sends them: signed with the services' bus key (commands
    without the gateway's signature are refused, tgm_runtime.busauth)."""

    def __init__(self, nc: Any, signer: Any) -> None:
        self.nc, self.signer = nc, signer

    async def ok(self, cmd: Any, payload: dict[str, Any], timeout: float = 60) -> Any:
        from tgm_runtime.testing import signed_headers

        data = json.dumps(payload).encode()
        headers = signed_headers(self.signer, cmd.SUBJECT, data, principal="bench")
        msg = await self.nc.request(cmd.SUBJECT, data, timeout=timeout, headers=headers)
        reply = json.loads(msg.data)
        if not reply.get("ok"):
            raise RuntimeError(f"{cmd.NAME}: {reply}")
        return reply["data"]


async def run_queue(
    emu: Any, f: Fleet, call: Caller, campaign: Any, limits: Any, floods: list[dict]
) -> Result:
    from tgm_contracts.commands import accounts as A
    from tgm_contracts.commands import messaging as M

    ids = []
    for a in f.accounts:
        acc = await call.ok(
            A.AddAccount,
            {
                "phone": a.phone,
                "sessionString": emu.session_for(a),
                "dailySendLimit": 1000,
                "warmupEnabled": False,
            },
        )
        ids.append(acc["id"])

    async def connected() -> bool:
        items = (await call.ok(A.GetAccounts, {"ids": ids, "limit": 500}))["items"]
        return all(x["connected"] and x["state"] == "active" for x in items) and len(items) == len(ids)

    deadline = time.monotonic() + 120
    while not await connected():
        if time.monotonic() > deadline:
            raise TimeoutError("accounts did not connect")
        await asyncio.sleep(0.5)
    users_write_first(emu, f)
    convs = campaign.db["conversations"]
    deadline = time.monotonic() + 120
    while await convs.count_documents({"in_count": {"$gt": 0}}) < len(f.users):
        if time.monotonic() > deadline:
            raise TimeoutError("conversations not recorded")
        await asyncio.sleep(0.2)
    private = [{"peer": m.peer, "variables": {"t": m.text}} for m in f.workload if not m.group]
    groups = [{"peer": m.peer, "variables": {"t": m.text}} for m in f.workload if m.group]
    floods.clear()
    t0 = emu.world.now()
    await call.ok(
        M.QueueMessage,
        {
            "text": "{t}",
            "recipients": private,
            "idempotencyKey": f"bench-{f.name}-p",
            "dedupeRecipients": False,
        },
    )
    await call.ok(
        M.QueueMessage,
        {
            "text": "{t}",
            "recipients": groups,
            "idempotencyKey": f"bench-{f.name}-g",
            "dedupeRecipients": False,
        },
    )
    total = len(f.workload)
    await wait_for(lambda: len(deliveries_of(emu, f)) >= total, 1800, 0.2, "queue deliveries")
    jobs = campaign.db["jobs"]
    await wait_for_async(lambda: _drained(jobs), 60)
    done = deliveries_of(emu, f)
    outcomes: Counter[str] = Counter()
    async for j in jobs.find({}, {"history": 1}):
        outcomes.update(h["outcome"] for h in j.get("history") or [])
    makespan = max(d.date for d in done) - t0
    texts = Counter(d.text for d in done)
    if args_debug():
        for a in f.accounts:
            ts = sorted(round(d.date - t0, 1) for d in done if d.from_user_id == a.id)
            print(a.first_name, len(ts), ts, flush=True)
    violations = outcomes["flood_wait"] + outcomes["peer_flood"]
    reg = campaign.registry
    n = reg.get_sample_value("tgm_campaign_send_seconds_count") or 0
    mean = (reg.get_sample_value("tgm_campaign_send_seconds_sum") or 0) / n if n else 0.0
    return Result(
        "queue (campaign + tg-session)",
        total,
        len(done),
        makespan,
        best_makespan(f, limits),
        max(violations, len(floods)),
        sum(n - 1 for n in texts.values() if n > 1),
        f"job outcomes {dict(outcomes)}; tg-session send call {mean:.2f}s on average",
    )


async def _drained(jobs: Any) -> bool:
    return await jobs.count_documents({"state": {"$in": ["pending", "scheduled", "in_flight"]}}) == 0


async def wait_for_async(pred: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.2)


async def run_naive(emu: Any, f: Fleet, sleep: float, limits: Any) -> Result:
    from telethon import errors

    clients = []
    for a in f.accounts:
        c = emu.client(emu.session_for(a))
        await c.connect()
        await c.get_me()
        clients.append(c)
    users_write_first(emu, f)
    for c in clients:
        await c.get_dialogs()  # access hashes of the users who wrote and of the groups
    violations = 0
    rr = 0
    t0 = emu.world.now()
    try:
        for m in f.workload:
            if m.account >= 0:
                client = clients[m.account]
            else:
                client = clients[rr % len(clients)]
                rr += 1
            for _ in range(10):
                try:
                    await client.send_message(m.peer, m.text)
                    break
                except errors.FloodWaitError as exc:
                    violations += 1
                    await asyncio.sleep(exc.seconds)
                except errors.PeerFloodError:
                    violations += 1
                    break
            await asyncio.sleep(sleep)
    finally:
        for c in clients:
            await c.disconnect()
    done = deliveries_of(emu, f)
    makespan = max(d.date for d in done) - t0
    texts = Counter(d.text for d in done)
    return Result(
        f"naive loop, sleep {sleep:.2f}s",
        len(f.workload),
        len(done),
        makespan,
        best_makespan(f, limits),
        violations,
        sum(n - 1 for n in texts.values() if n > 1),
    )


async def bench(args: argparse.Namespace, nats_srv: Any, mongo_srv: Any, tmp: Path) -> list[Result]:
    import nats
    from tg_emulator.emulator import Emulator
    from tg_emulator.keys import PUBLIC_KEY_PEM
    from tg_emulator.world import World
    from tgm_campaign.bootstrap import build as campaign_runtime
    from tgm_campaign.settings import CampaignSettings
    from tgm_contracts.commands import telegram_ops as T
    from tgm_runtime import RuntimeSettings
    from tgm_session.bootstrap import build as session_runtime
    from tgm_session.settings import SessionSettings

    emu = await Emulator(World()).start()
    limits = emu.world.limits
    key = tmp / "rsa.pem"
    key.write_text(PUBLIC_KEY_PEM)
    prefix = f"b{uuid.uuid4().hex[:6]}_"
    master = base64.b64encode(b"b" * 32).decode()

    def rs(replica: str) -> RuntimeSettings:
        return RuntimeSettings(
            nats_url=nats_srv.url,
            mongodb_uri=mongo_srv.uri,
            database_prefix=prefix,
            data_dir=tmp,
            master_key=master,
            replica_id=replica,
        )

    session = session_runtime(
        SessionSettings(
            runtime=rs("bench-session"),
            dc_host=emu.host,
            dc_port=emu.port,
            rsa_public_key_file=key,
            api_id=1,
            api_hash=API_HASH,
            claim_interval_seconds=0.2,
            request_timeout_seconds=15,
        ),
    )
    campaign = campaign_runtime(CampaignSettings(runtime=rs("bench-campaign")))
    await session.start()
    await campaign.start()
    nc = await nats.connect(nats_srv.url)
    floods: list[dict] = []

    async def on_flood(msg: Any) -> None:
        floods.append(json.loads(msg.data))

    await nc.subscribe("tgm.tg-session.evt.flood-wait-recorded.v1", cb=on_flood)
    call = Caller(nc, campaign)
    creds = (await call.ok(T.GetApiCredentials, {}))["items"]
    await call.ok(T.SaveApiCredential, {"id": creds[0]["id"], "maxAccounts": 1000, "test": False})
    acct_rl, chat_rl, group_rl = limits.account_messages, limits.private_chat_messages, limits.group_messages
    pacing = {
        "jitterMinSeconds": 0.0,
        "jitterMaxSeconds": 0.0,
        "quietHoursStart": None,
        "quietHoursEnd": None,
        "perAccountPerMinute": round(acct_rl.count * 60 / acct_rl.window),
        "perAccountPerHour": 2000,
        "perChatMinIntervalSeconds": chat_rl.window / chat_rl.count,
        "perGroupPerMinute": round(group_rl.count * 60 / group_rl.window),
        "perAccountDailyNonContacts": 1000,
        # tg-session's send call takes about a second here (its own database work): with one send at
        # a time an account could not even use its window. Several in flight let it.
        "perAccountMaxInFlight": args.in_flight,
    }
    assert campaign.settings_store is not None
    await campaign.settings_store.save("pacing", pacing, None)
    await campaign.settings_store.save(
        "compliance", {"perRecipientDailyCap": 100, "perRecipientTotalCap": 10000}, None
    )
    shape = (args.accounts, args.users, args.groups, args.rounds, args.posts)
    results = []
    try:
        fq = build_fleet(emu, "Q", 1, *shape)
        print(f"queue: {len(fq.workload)} messages, {args.accounts} accounts", flush=True)
        results.append(await run_queue(emu, fq, call, campaign, limits, floods))
        print(results[-1], flush=True)
        tuned = acct_rl.window / acct_rl.count / args.accounts
        sleeps = [
            tuned if x.strip() == "tuned" else float(x) for x in args.naive_sleeps.split(",") if x.strip()
        ]
        for i, sleep in enumerate(sleeps):
            fn = build_fleet(emu, f"N{i}", 2 + i, *shape)
            print(f"naive: sleep {sleep:.2f}s", flush=True)
            results.append(await run_naive(emu, fn, sleep, limits))
            print(results[-1], flush=True)
    finally:
        await nc.close()
        await campaign.stop()
        await session.stop()
        await emu.stop()
    results_meta = {"limits": limits, "pacing": pacing}
    bench.meta = results_meta  # type: ignore[attr-defined]
    return results


def table(results: list[Result], args: argparse.Namespace, meta: dict[str, Any]) -> str:
    import os

    lim = meta["limits"]
    lines = [
        f"machine        {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        f"emulator       account {lim.account_messages.count}/{lim.account_messages.window:.0f}s, "
        f"private chat {lim.private_chat_messages.count}/{lim.private_chat_messages.window:.0f}s, "
        f"group {lim.group_messages.count}/{lim.group_messages.window:.0f}s",
        f"workload       {args.accounts} accounts, {args.users * args.accounts} users x {args.rounds} messages, "
        f"{args.groups} groups x {args.posts} posts",
        f"queue pacing   {json.dumps(meta['pacing'])} (+ default safetyMarginSeconds 1.0)",
        "",
        f"{'run':34} {'msgs':>5} {'deliv':>5} {'makespan s':>10} {'best s':>7} {'fraction':>8} {'violations':>10} {'dupes':>5}",
    ]
    for r in results:
        lines.append(
            f"{r.name:34} {r.messages:5d} {r.delivered:5d} {r.makespan:10.1f} {r.best:7.1f} {r.fraction:8.3f} "
            f"{r.violations:10d} {r.duplicates:5d}"
        )
    for r in results:
        if r.note:
            lines.append(f"  {r.name}: {r.note}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--accounts", type=int, default=4)
    p.add_argument("--users", type=int, default=10, help="users per account")
    p.add_argument("--groups", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="messages to every user")
    p.add_argument("--posts", type=int, default=150, help="posts to every group")
    p.add_argument(
        "--naive-sleeps",
        default="tuned,1.0",
        help="fixed sleeps of the naive loop; `tuned` = the per-account limit spread over the fleet",
    )
    p.add_argument("--in-flight", type=int, default=8, help="perAccountMaxInFlight of the queue run")
    p.add_argument("--quick", action="store_true", help="smaller workload, one naive run")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    if args.quick:
        args.accounts, args.users, args.groups, args.rounds, args.posts = 3, 10, 2, 3, 45
        args.naive_sleeps = "tuned"
    from tgm_testing.servers import MongoServer, NatsServer

    # Started from the main thread, so they die with this process whatever happens to it.
    tmp = Path(tempfile.mkdtemp(prefix="bench-pacing-"))
    nats_srv = NatsServer(tmp / "nats", log_path=tmp / "nats.log")
    mongo_srv = MongoServer(tmp / "db", log_path=tmp / "db.log")
    nats_srv.start()
    mongo_srv.start()
    try:
        results = asyncio.run(bench(args, nats_srv, mongo_srv, tmp))
    finally:
        mongo_srv.stop()
        nats_srv.stop()
    text = table(results, args, bench.meta)  # type: ignore[attr-defined]
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    queue = results[0]
    return 0 if queue.delivered == queue.messages and queue.duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
