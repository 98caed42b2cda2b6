"""bench/automation decision latency: inbound message -> rule decision -> reply job queued, through
the real campaign service.

One process, like bench/pacing: a nats-server and the database server as children, campaign built
with its bootstrap (`tgm_campaign.bootstrap.build`), `FakeFleet` standing in for tg-session (the
accounts, their membership of the group, the send path). Setup through campaign's own commands: a
keyword set (`--keywords` of the bench corpus plus the asks the stream carries), a template, the
monitored group with two listener accounts, monitoring started, one trigger rule (reply by template,
delay 60 s so the jobs wait in the queue as they would in production, a daily limit above the run).

Then `MessageReceived` events are published on TGM_EVENTS for the group at `--rate` per second for
`--seconds` (each from its own sender, `--match-share` of them carrying a keyword, the rest plain chat
that is matched and dropped; with `--listeners 2` each message is published by both listener
accounts, as tg-session does when two of them sit in the group, and processed once). Latency of a
matching message = the arrival of the `message-queued` event of its job (`trg:<rule>:<chat>:<msg>`,
mapped through the jobs collection after the run) minus the moment its publish started. The load
generator, the fake fleet and campaign share one event loop and two cores, so the figure is an
upper bound of what campaign alone would show.

    .venv/bin/python bench/automation/decision.py [--rate 200] [--seconds 20] [--listeners 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import corpus

CHAT = -1001999


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))]


async def bench(args: argparse.Namespace, nats_url: str, mongo_uri: str) -> dict[str, Any]:
    import nats
    from tgm_campaign.bootstrap import build
    from tgm_campaign.settings import CampaignSettings
    from tgm_campaign.testing import FakeFleet, FleetChat
    from tgm_contracts import Headers
    from tgm_contracts.commands import automation as A
    from tgm_contracts.commands import messaging as M
    from tgm_contracts.commands.telegram_ops import GetGroupMembers
    from tgm_contracts.events_session import MessageReceived
    from tgm_contracts.models.session import TelegramUser
    from tgm_runtime import RuntimeSettings

    prefix = f"b{uuid.uuid4().hex[:6]}_"
    fleet = FakeFleet(nats_url, mongo_uri, ["acct0", "acct1", "acct2"], database_prefix=prefix + "fleet_")
    fleet.chats.append(FleetChat(chat_id=CHAT, title="Deals", username="dealsbench"))
    for acct in ("acct0", "acct1"):
        fleet.accounts[acct].members_of = {CHAT}
    await fleet.start()
    rt = build(
        CampaignSettings(
            runtime=RuntimeSettings(
                nats_url=nats_url, mongodb_uri=mongo_uri, database_prefix=prefix, replica_id="campaign-bench"
            )
        )
    )
    await rt.start()
    nc = await nats.connect(nats_url)

    async def members(msg: Any) -> None:  # tg-session's get-group-members: no admins
        await msg.respond(json.dumps({"ok": True, "data": {"items": []}}).encode())

    await nc.subscribe(GetGroupMembers.SUBJECT, cb=members)

    async def data(cmd: Any, payload: dict[str, Any]) -> Any:
        headers = {Headers.REQUEST_ID: uuid.uuid4().hex, Headers.ROLE: "admin", Headers.PRINCIPAL: "bench"}
        reply = json.loads(
            (await nc.request(cmd.SUBJECT, json.dumps(payload).encode(), timeout=60, headers=headers)).data
        )
        assert reply["ok"], reply
        return reply["data"]

    work = corpus.make(keywords=args.keywords, messages=0, seed=7, sets=1)
    asks = ["多少钱", "how much", "怎么买", "price"]
    literal = [k["keyword"] for k in work.keywords if k["match_type"] == "contains"][: args.keywords]
    ks = await data(A.AddKeywordSet, {"name": "bench", "keywords": [*asks, *literal][:2000]})
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
        text = f"{rng.choice(filler)} {rng.choice(asks)}?" if hit else rng.choice(filler)
        if hit:
            matching.add(i)
        published[i] = time.perf_counter()
        for acct in listeners:
            await fleet.rt.publish(
                MessageReceived(
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
            )

    pending: set[asyncio.Task[None]] = set()
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

    jobs = await rt.db["jobs"].find({}, {"key": 1}).to_list()
    lat: list[float] = []
    missing = 0
    by_message = {
        int(j["key"].rsplit(":", 1)[1]): j["_id"] for j in jobs if str(j.get("key", "")).startswith("trg:")
    }
    for i in matching:
        job = by_message.get(i)
        if job is None or job not in queued:
            missing += 1
            continue
        lat.append((queued[job] - published[i]) * 1000)
    extra = [m for m in by_message if m not in matching]
    await nc.close()
    await rt.stop()
    await fleet.stop()
    client = __import__("pymongo").MongoClient(mongo_uri)
    for name in client.list_database_names():
        if name.startswith(prefix):
            client.drop_database(name)
    client.close()
    return {
        "rule": rule["id"],
        "messages": total,
        "events": total * len(listeners),
        "offered_s": offered,
        "matching": len(matching),
        "jobs": len(by_message),
        "missing": missing,
        "unexpected": len(extra),
        "fired_events": len(fired),
        "lat": lat,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--match-share", type=float, default=0.5)
    ap.add_argument("--listeners", type=int, default=1, choices=[1, 2])
    ap.add_argument("--keywords", type=int, default=2000, help="keywords in the group's set (at most 2,000)")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--profile", type=int, metavar="N", help="cProfile the bench process; print the N costliest functions"
    )
    args = ap.parse_args()
    from tgm_testing.servers import MongoServer, NatsServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-automation-"))
    nats_srv = NatsServer(tmp / "nats", log_path=tmp / "nats.log")
    mongo_srv = MongoServer(tmp / "db", log_path=tmp / "db.log")
    nats_srv.start()
    mongo_srv.start()
    try:
        if args.profile:  # one process: the load generator and FakeFleet are in the figures too
            import cProfile
            import pstats

            prof = cProfile.Profile()
            r = prof.runcall(asyncio.run, bench(args, nats_srv.url, mongo_srv.uri))
            pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(args.profile)
        else:
            r = asyncio.run(bench(args, nats_srv.url, mongo_srv.uri))
    finally:
        mongo_srv.stop()
        nats_srv.stop()
    lat = r["lat"]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"bench/automation decision: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average {load}",
        f"{r['messages']:,} messages at {args.rate:.0f}/s offered over {r['offered_s']:.1f} s "
        f"({r['events']:,} events, {args.listeners} listener(s) each), {r['matching']:,} matching "
        f"({args.match_share:.0%}), keyword set of {min(2000, args.keywords + 4):,} keywords",
        f"reply jobs {r['jobs']:,} (one per matching message: missing {r['missing']}, unexpected "
        f"{r['unexpected']}); trigger-fired events {r['fired_events']:,}",
    ]
    if lat:
        lines.append(
            f"publish -> job queued (message-queued event): p50 {pct(lat, 50):.1f} ms, p90 {pct(lat, 90):.1f} ms, "
            f"p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms (target p99 < 100 ms)"
        )
    text = "\n".join(lines)
    print(text)
    if args.out:
        with args.out.open("a") as f:
            f.write(text + "\n")
    ok = lat and r["missing"] == 0 and r["unexpected"] == 0
    return 0 if ok and pct(lat, 99) < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
