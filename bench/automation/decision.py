"""bench/automation decision latency: inbound message -> rule decision -> reply job queued, through
the real campaign service in its own process.

Processes, as in production: a nats-server and the database server; campaign started by its real
entry point (`python -m tgm_campaign`, settings from the environment as `tgm-stack` gives them,
its own health port waited on); `fleet.py` in a process of its own standing in for tg-session
(`FakeFleet`: the accounts, their membership of the group, get-group-members, the send path); and
this process, the load generator, which sets everything up through campaign's own commands, publishes
the load and measures. Setup: a keyword set (`--keywords` of the bench corpus plus the asks the
stream carries), a template, the monitored group with two listener accounts, monitoring started,
one trigger rule (reply by template, delay 60 s so the jobs wait in the queue as they would in
production, a daily limit above the run).

Then `MessageReceived` events are published on TGM_EVENTS (JetStream, with the event id as the
message id, as tg-session does) for the group at `--rate` per second for `--seconds` (each from its
own sender, `--match-share` of them carrying a keyword, the rest plain chat that is matched and
dropped; with `--listeners 2` each message is published by both listener accounts, as tg-session
does when two of them sit in the group, and processed once). Latency of a matching message = the
arrival here of the `message-queued` event of its job (`trg:<rule>:<chat>:<msg>`, mapped through the
jobs collection after the run) minus the moment its publish started, both on this process's clock.
All processes share the machine's two cores (and whatever else runs on it: the load average is
printed).

    .venv/bin/python bench/automation/decision.py [--rate 200] [--seconds 20] [--match-share 0.05]
                                                  [--listeners 1] [--out bench/automation/last-run-decision.txt]
    --profile N   campaign runs under cProfile (wall clock, start-up included); its N costliest
                  functions are printed after the run
    --profile-file PATH   keep that profile there (for pstats: callers, callees)
    --count-ops   campaign runs under opcount.py: every database command it sends during the load
                  (and 2 s after the last job is queued, for the writes that follow the reply) is
                  counted by command, collection and the campaign code that sent it, and printed
                  with the count per matching message (the listener walks the stack per command:
                  read its latency figures as those of an instrumented run)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import random
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus

HERE = Path(__file__).resolve().parent

CHAT = -1001999
ASKS = ["多少钱", "how much", "怎么买", "price"]
#: Seconds measured with no load before it starts (the processes' own periodic work).
IDLE_SECONDS = 5.0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def cpu_seconds(pids: dict[str, int], kernel: bool = False) -> dict[str, float]:
    """User + system CPU seconds so far of each process (with its children, but this process's
    children are the others); `kernel`: the system part alone (on loopback a socket send does the
    receiver's TCP work too)."""
    import psutil

    out = {}
    for name, pid in pids.items():
        try:
            procs = [psutil.Process(pid)]
            if pid != os.getpid():
                procs += procs[0].children(recursive=True)
        except psutil.Error:
            continue
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
            except psutil.Error:
                continue
            total += t.system if kernel else t.user + t.system
        out[name] = total
    return out


def bus_signer() -> tuple[dict[str, str], Any]:
    """The bus key campaign is given (`TGM_BUS_KEY`) and the signer of the bench's commands with it, on
    a runtime that checks command signatures (tgm_runtime.busauth); else nothing to sign with."""
    try:
        from tgm_runtime.busauth import BusAuth
    except ImportError:
        return {}, None
    key = os.urandom(32)
    return {"TGM_BUS_KEY": base64.b64encode(key).decode()}, BusAuth([key])


async def bench(
    args: argparse.Namespace, nats_url: str, prefix: str, pids: dict[str, int], bus_auth: Any
) -> dict[str, Any]:
    import nats
    from tgm_contracts import Headers, streams
    from tgm_contracts.commands import automation as A
    from tgm_contracts.commands import messaging as M
    from tgm_contracts.events_session import MessageReceived
    from tgm_contracts.models.session import TelegramUser

    nc = await nats.connect(nats_url)
    js = nc.jetstream()

    async def data(cmd: Any, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode()
        headers = {Headers.REQUEST_ID: uuid.uuid4().hex, Headers.ROLE: "admin", Headers.PRINCIPAL: "bench"}
        if bus_auth is not None:  # signed as the gateway signs what it forwards
            headers.update(bus_auth.headers(cmd.SUBJECT, body, "bench", "admin"))
        reply = json.loads((await nc.request(cmd.SUBJECT, body, timeout=60, headers=headers)).data)
        assert reply["ok"], reply
        return reply["data"]

    work = corpus.make(keywords=args.keywords, messages=0, seed=7, sets=1)
    literal = [k["keyword"] for k in work.keywords if k["match_type"] == "contains"][: args.keywords]
    ks = await data(A.AddKeywordSet, {"name": "bench", "keywords": [*ASKS, *literal][:2000]})
    tpl = await data(
        M.AddTemplate, {"name": "bench reply", "content": "Hi {first_name}, about {keyword}: see DM"}
    )
    await data(
        A.AddGroup,
        {
            "group": CHAT,
            "name": "Deals",
            "keywordSetIds": [ks["id"]],
            "listenerAccountIds": ["acct0", "acct1"],
        },
    )
    status = await data(A.StartMonitoring, {})
    assert status["active"], status
    rule = await data(
        A.SaveTriggerRule,
        {
            "name": "bench",
            "keywordSetIds": [ks["id"]],
            "actions": [{"type": "reply_template", "templateId": tpl["template"]["id"]}],
            "delayMin": 60,
            "delayMax": 60,
            "dailyLimit": 10_000,
            "cooldownSeconds": 0,
        },
    )
    await asyncio.sleep(2)  # campaign's caches of the rules and groups (1-2 s) see the new state

    queued: dict[str, float] = {}  # job id -> when its message-queued event arrived
    fired: list[float] = []
    all_queued = asyncio.Event()
    done_publishing = False

    async def on_event(msg: Any) -> None:
        now = time.perf_counter()
        if msg.subject.endswith("message-queued.v1"):
            for j in json.loads(msg.data).get("jobIds", []):
                queued[j] = now
            if done_publishing and len(queued) >= len(matching):
                all_queued.set()
        elif msg.subject.endswith("trigger-fired.v1"):
            fired.append(now)

    await nc.subscribe("tgm.campaign.evt.>", cb=on_event)

    rng = random.Random(3)
    filler = corpus.FILLER_ZH + corpus.FILLER_EN
    total = int(args.rate * args.seconds)
    published: dict[int, float] = {}
    matching: set[int] = set()
    listeners = ["acct0", "acct1"][: args.listeners]

    async def publish(i: int) -> None:
        hit = rng.random() < args.match_share
        text = f"{rng.choice(filler)} {rng.choice(ASKS)}?" if hit else rng.choice(filler)
        if hit:
            matching.add(i)
        published[i] = time.perf_counter()
        for acct in listeners:
            evt = MessageReceived(
                account_id=acct,
                chat_kind="supergroup",
                chat_id=CHAT,
                chat_title="Deals",
                message_id=i,
                sender_id=10_000 + i,
                sender=TelegramUser(user_id=10_000 + i, first_name="Ann", username=f"u{i}"),
                text=text,
                date=datetime.now(UTC),
            )
            await js.publish(
                evt.SUBJECT,
                json.dumps(evt.model_dump(mode="json", by_alias=True)).encode(),
                stream=streams.EVENTS_STREAM.name,
                headers={Headers.MSG_ID: evt.event_id},
            )

    idle0 = cpu_seconds(pids)
    await asyncio.sleep(IDLE_SECONDS)  # what the processes burn with no load (periodic work)
    idle1 = cpu_seconds(pids)
    pending: set[asyncio.Task[None]] = set()
    cpu0, sys0 = cpu_seconds(pids), cpu_seconds(pids, kernel=True)
    if args.count_ops:
        os.kill(pids["campaign"], signal.SIGUSR1)  # opcount.py: the window starts
    print(
        f"load starting (campaign pid {pids.get('campaign')})", file=sys.stderr, flush=True
    )  # for a profiler
    # The load generator's own collector pauses (up to 100 ms measured here) would stamp events late
    # and count as campaign's latency: no collection in this process while it measures.
    gc.collect()
    gc.freeze()
    gc.disable()
    t0 = time.perf_counter()
    for i in range(1, total + 1):
        delay = t0 + (i - 1) / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.ensure_future(publish(i))  # the bench's own load, not service code
        pending.add(task)
        task.add_done_callback(pending.discard)
    offered = time.perf_counter() - t0
    await asyncio.gather(*pending)
    done_publishing = True
    if len(queued) >= len(matching):
        all_queued.set()
    try:  # every matching message's job queued, or a minute more at most
        await asyncio.wait_for(all_queued.wait(), 60)
    except TimeoutError:
        pass
    wall = time.perf_counter() - t0
    gc.enable()
    cpu1, sys1 = cpu_seconds(pids), cpu_seconds(pids, kernel=True)
    if args.count_ops:
        await asyncio.sleep(2)  # the writes after the reply (counters, the firing's end, crm's reads)
        os.kill(pids["campaign"], signal.SIGUSR2)  # opcount.py: the window ends, its file written
        for _ in range(100):
            if args.ops_file.exists():
                break
            await asyncio.sleep(0.1)
    await nc.close()
    return {
        "rule": rule["id"],
        "messages": total,
        "events": total * len(listeners),
        "offered_s": offered,
        "matching": matching,
        "published": published,
        "queued": queued,
        "fired_events": len(fired),
        "cpu": {k: cpu1[k] - cpu0[k] for k in cpu1 if k in cpu0},
        "sys": {k: sys1[k] - sys0[k] for k in sys1 if k in sys0},
        "idle": {k: (idle1[k] - idle0[k]) / IDLE_SECONDS for k in idle1 if k in idle0},
        "wall": wall,
    }


def latencies(r: dict[str, Any], mongo_uri: str, prefix: str) -> dict[str, Any]:
    """Map each matching message to its job (the jobs collection) and its message-queued arrival."""
    import pymongo
    from tgm_contracts import Service

    client: Any = pymongo.MongoClient(mongo_uri)
    try:
        jobs = list(client[prefix + Service.CAMPAIGN.database]["jobs"].find({}, {"key": 1}))
        for name in client.list_database_names():
            if name.startswith(prefix):
                client.drop_database(name)
    finally:
        client.close()
    by_message = {
        int(j["key"].rsplit(":", 1)[1]): j["_id"] for j in jobs if str(j.get("key", "")).startswith("trg:")
    }
    lat: list[float] = []
    at: list[float] = []  # when each was published, seconds into the load
    first = min(r["published"].values(), default=0.0)
    missing = 0
    for i in r["matching"]:
        job = by_message.get(i)
        if job is None or job not in r["queued"]:
            missing += 1
            continue
        lat.append((r["queued"][job] - r["published"][i]) * 1000)
        at.append(r["published"][i] - first)
    extra = [m for m in by_message if m not in r["matching"]]
    return {"lat": lat, "at": at, "jobs": len(by_message), "missing": missing, "unexpected": len(extra)}


def ops_lines(ops: list[dict[str, Any]] | None, matching: int) -> list[str]:
    """The counted database commands (opcount.py) as report lines: the total, per matching message,
    and each (command, collection, sender) with its count."""
    if ops is None:
        return ["database commands: not counted (opcount.py wrote no file)"]
    total = sum(o["n"] for o in ops)
    per = f", {total / matching:.1f} per matching message" if matching else ""
    out = [f"database commands sent by campaign during the load (+2 s): {total:,}{per}"]
    for o in ops:
        each = f" ({o['n'] / matching:.2f}/match)" if matching else ""
        rtt = f", {o['ms'] / o['n']:.1f} ms each" if "ms" in o else ""
        out.append(f"  {o['n']:6,}{each} {o['command']} {o['collection']}{rtt}: {o['where']}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--match-share", type=float, default=0.05)
    ap.add_argument("--listeners", type=int, default=1, choices=[1, 2])
    ap.add_argument("--keywords", type=int, default=2000, help="keywords in the group's set (at most 2,000)")
    ap.add_argument(
        "--out", type=Path, default=HERE / "last-run-decision.txt", help="the report is appended here"
    )
    ap.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="cProfile the campaign process; print its N costliest functions",
    )
    ap.add_argument("--profile-file", type=Path, help="with --profile: keep the campaign's profile here")
    ap.add_argument(
        "--count-ops",
        action="store_true",
        help="count campaign's database commands during the load (bench/automation/opcount.py)",
    )
    args = ap.parse_args()
    from tgm_testing.procs import ManagedProcess, free_port
    from tgm_testing.servers import MongoServer, NatsServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-automation-"))
    prefix = f"b{uuid.uuid4().hex[:6]}_"
    nats_srv = NatsServer(tmp / "nats", log_path=tmp / "nats.log")
    mongo_srv = MongoServer(tmp / "db", log_path=tmp / "db.log")
    nats_srv.start()
    mongo_srv.start()
    ready_file = tmp / "fleet.ready"
    fleet_args = ["--prefix", prefix + "fleet_", "--chat", str(CHAT), "--ready-file", str(ready_file)]
    bus_env, bus_auth = bus_signer()  # campaign and the fleet check each other's commands with it
    fleet = ManagedProcess(
        [sys.executable, HERE / "fleet.py", "--nats", nats_srv.url, "--mongo", mongo_srv.uri, *fleet_args],
        name="fleet",
        env=bus_env,
        log_path=tmp / "fleet.log",
        ready=ready_file.exists,
        ready_timeout=60,
    )
    health = free_port()
    profile_out = tmp / "campaign.prof"
    argv = [sys.executable, "-m", "tgm_campaign"]
    if args.profile:
        argv = [sys.executable, "-m", "cProfile", "-o", str(profile_out), "-m", "tgm_campaign"]
    args.ops_file = tmp / "ops.json"
    ops_env = {}
    if args.count_ops:
        argv = [sys.executable, str(HERE / "opcount.py")]
        ops_env = {"TGM_BENCH_OPS_FILE": str(args.ops_file)}
    campaign = ManagedProcess(
        argv,
        name="campaign",
        env={
            "NATS_URL": nats_srv.url,
            "MONGODB_URI": mongo_srv.uri,
            "TGM_DATABASE_PREFIX": prefix,
            "TGM_REPLICA_ID": "campaign-bench",
            "TGM_HEALTH_PORT": str(health),
            "TGM_DATA_DIR": str(tmp / "data"),
            "TGM_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **bus_env,
            **ops_env,
        },
        log_path=tmp / "campaign.log",
        ready=lambda: http_ok(f"http://127.0.0.1:{health}/readyz"),
        ready_timeout=90,
        grace=30,
    )
    try:
        fleet.start()
        campaign.start()
        pids = {"campaign": campaign.pid, "database": mongo_srv.pid, "nats": nats_srv.pid, "fleet": fleet.pid}
        pids["bench"] = os.getpid()
        r = asyncio.run(bench(args, nats_srv.url, prefix, {k: v for k, v in pids.items() if v}, bus_auth))
        campaign.terminate()
        fleet.terminate()
        r.update(latencies(r, mongo_srv.uri, prefix))
    finally:
        campaign.terminate()
        fleet.terminate()
        mongo_srv.stop()
        nats_srv.stop()
    if args.profile:
        import pstats

        pstats.Stats(str(profile_out)).sort_stats("tottime").print_stats(args.profile)
        pstats.Stats(str(profile_out)).sort_stats("cumulative").print_stats(args.profile)
        if args.profile_file:
            shutil.copyfile(profile_out, args.profile_file)
    ops = json.loads(args.ops_file.read_text()) if args.count_ops and args.ops_file.exists() else None
    shutil.rmtree(tmp, ignore_errors=True)  # kept when the run failed: the children's logs are there
    lat = r["lat"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"bench/automation decision: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average {load}; campaign in its own "
        "process (python -m tgm_campaign), FakeFleet in another",
        f"{r['messages']:,} messages at {args.rate:.0f}/s offered over {r['offered_s']:.1f} s "
        f"({r['events']:,} events, {args.listeners} listener(s) each), {len(r['matching']):,} matching "
        f"({args.match_share:.0%}), keyword set of {min(2000, args.keywords + 4):,} keywords",
        f"reply jobs {r['jobs']:,} (one per matching message: missing {r['missing']}, unexpected "
        f"{r['unexpected']}); trigger-fired events {r['fired_events']:,}",
    ]
    if lat:
        lines.append(
            f"publish -> job queued (message-queued event): p50 {pct(lat, 50):.1f} ms, p90 {pct(lat, 90):.1f} ms, "
            f"p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms (target p99 < 100 ms)"
        )
        # the slowest few with when they were published: close together is a stall somewhere,
        # spread out is queueing
        slowest = sorted(zip(lat, r["at"], strict=True), reverse=True)[:5]
        lines.append("slowest: " + ", ".join(f"{ms:.0f} ms at {t:.2f} s" for ms, t in slowest))
    cpu = ", ".join(f"{k} {v:.1f} s (system {r['sys'].get(k, 0):.1f})" for k, v in r["cpu"].items())
    if "campaign" in r["cpu"]:
        cpu += f"; campaign {r['cpu']['campaign'] / r['events'] * 1000:.2f} ms per event"
    idle = ", ".join(f"{k} {v:.0%}" for k, v in r["idle"].items())
    lines.append(
        f"CPU from the first publish to the last job queued ({r['wall']:.1f} s): {cpu}; idle: {idle} of a core"
    )
    if args.count_ops:
        lines += ops_lines(ops, len(r["matching"]))
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")
    ok = lat and r["missing"] == 0 and r["unexpected"] == 0
    return 0 if ok and pct(lat, 99) < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
