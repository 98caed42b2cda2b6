"""bench/collaboration: 20 concurrent collaboration runs and 5 ad campaigns on 30 accounts, under pacing
limits chosen to bind, against the Telegram emulator; did everything go out, how close to what the
limits allow, and did any account or chat go faster than its limit?

The stack as processes (`tgm_stack.Stack`: nats-server, the database server, tg-session with the real
Telethon, campaign, the gateway), driven only through the gateway, like the e2e tests. The emulator's
world: 30 role accounts; 20 collaboration groups, each with three of the accounts (run k: accounts
3k, 3k+1, 3k+2 mod 30, so every account plays in two runs at once) and a target user; 20 ad groups
where all 30 accounts are members.

- collaboration: one script of `--stages` stages (time triggers, no delay), each stage a line by each
  of its three roles; 20 runs started together (`start-collaboration`), every line tagged with its
  run, stage and slot;
- ads: 5 campaigns, each on 4 ad groups with 6 accounts rotating, a `daily` schedule with a run at
  each of the next `--ad-minutes` minutes (UTC), `minGroupIntervalMinutes` 1;
- pacing: `PACING` below, tight enough that the per-account minute limit is what paces the load.

Figures, all from the emulator's record of deliveries (not from the system's own counters):
- sends delivered against the workload, duplicates (a run's line or an ad run's post twice);
- `best`: the makespan of a greedy schedule of the same sends (each on the account that made it, in
  the order it made them) under the same limits with sends taking no time — the most the limits
  allow; `fraction` = best / measured makespan (first start to last delivery);
- violations: any account above `perAccountPerMinute` in a 60 s window or above `perAccountPerHour`
  in any 3,600 s (sliding), any account above
  `perGroupPerMinute` in one group in 60 s, any two sends of an account into one chat closer than
  `perChatMinIntervalSeconds` (0.05 s of clock tolerance).

`--hour` runs an hour of emulator time (the emulator keeps real time, so a real hour: 28 stages 100 s
apart, an ad run every 5 minutes) and counts the first 60 minutes' sends against what
`perAccountPerHour` x 30 allows; a shorter run prints its measured rate scaled to 60 minutes.

    .venv/bin/python bench/collaboration/run.py --out bench/collaboration/last-run.txt   # ~8 min
    .venv/bin/python bench/collaboration/run.py --quick                                  # ~4 min
    .venv/bin/python bench/collaboration/run.py --hour --out bench/collaboration/last-run-hour.txt
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MARK = -1_000_000_000_000  # marked channel ids: MARK - channel.id
ACCOUNTS = 30
RUNS = 20
AD_CAMPAIGNS = 5
AD_GROUPS_PER = 4
AD_ACCOUNTS_PER = 6
PACING: dict[str, Any] = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.5,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "perAccountPerMinute": 6,
    "perAccountPerHour": 60,
    "perChatMinIntervalSeconds": 5.0,
    "perGroupPerMinute": 4,
    "perAccountDailyNonContacts": 1000,
}
TAG = re.compile(r"\[(c\d+s\d+l\d+|ad)\]")
LINE = re.compile(r"c\d+s(\d+)l(\d+)")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def seed(emu: Any) -> dict[str, Any]:
    w = emu.world
    out: dict[str, Any] = {}

    def build() -> None:
        owner = w.add_user("+15557000000", first_name="Owner", username="bench_collab_owner")
        accounts = [w.add_user(f"+155571{i:05d}", first_name=f"Acc{i}") for i in range(ACCOUNTS)]
        targets = [w.add_user(f"+155572{k:05d}", first_name=f"Target{k}") for k in range(RUNS)]
        collab = []
        for k in range(RUNS):
            ch = w.create_channel(owner, f"Collab {k}")
            members = [accounts[(3 * k + j) % ACCOUNTS] for j in range(3)]
            w.invite_to_channel(owner, ch, [*members, targets[k]])
            collab.append(ch)
        ads = []
        for g in range(AD_CAMPAIGNS * AD_GROUPS_PER):
            ch = w.create_channel(owner, f"Ads {g}")
            w.invite_to_channel(owner, ch, accounts)
            ads.append(ch)
        out.update(
            accounts=accounts,
            targets=targets,
            collab=collab,
            ads=ads,
            sessions=[emu.emu.session_for(a) for a in accounts],
        )

    emu.do(build)
    return out


def onboard(gw: Any, world: dict[str, Any]) -> list[str]:
    from tgm_testing.gateway import wait_until

    creds = gw.ok("get-api-credentials")["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 1000, "test": False})
    ids = [
        gw.ok(
            "add-account",
            {"phone": a.phone, "sessionString": s, "dailySendLimit": 1000, "warmupEnabled": False},
        )["id"]
        for a, s in zip(world["accounts"], world["sessions"], strict=True)
    ]

    def connected() -> bool:
        items = gw.ok("get-accounts", {"ids": ids, "limit": 500})["items"]
        return len(items) == len(ids) and all(x["connected"] and x["state"] == "active" for x in items)

    wait_until(connected, 180, "30 accounts connected", interval=1.0)
    gw.ok("save-settings", {"settings": {"pacing": PACING}})
    return ids


def ours(emu: Any, world: dict[str, Any]) -> list[tuple[float, int, int, str]]:
    """(date, account user id, channel id, text) of every tagged send of our accounts."""
    mine = {a.id for a in world["accounts"]}
    return emu.do(
        lambda: [
            (d.date, d.from_user_id, d.chat_id, d.text or "")
            for d in emu.world.deliveries
            if d.from_user_id in mine and TAG.search(d.text or "")
        ]
    )


# --- the limits' best schedule and the violations ------------------------------------------------


def best_makespan(sends: list[tuple[float, int, int, str]], t0: float, stage_delay: float = 0.0) -> float:
    """Greedy earliest-feasible times of the same sends (each on the account that made it, in the
    order they were delivered) under PACING, sends taking no time; a run's line also comes after the
    run's previous line (the script's order), and a stage's first line `stage_delay` after the
    previous stage's last. The last one's time after t0: a lower bound of the makespan the limits
    allow (it knows nothing of the runner's rounds or the queue's latency)."""
    minute, hour = PACING["perAccountPerMinute"], PACING["perAccountPerHour"]
    gap, group_minute = PACING["perChatMinIntervalSeconds"], PACING["perGroupPerMinute"]

    def slot(q: deque[float], count: int, window: float, t: float) -> float:
        recent = [x for x in q if x > t - window]
        return t if len(recent) < count else recent[len(recent) - count] + window

    per_account: dict[int, deque[float]] = defaultdict(deque)
    per_pair: dict[tuple[int, int], deque[float]] = defaultdict(deque)
    chain: dict[int, float] = {}  # collaboration chat -> the time of its run's previous line
    last = 0.0
    for _, who, chat, text in sorted(sends):
        tag = TAG.search(text).group(1)  # type: ignore[union-attr]
        collab = tag.startswith("c")
        t = chain.get(chat, 0.0) if collab else 0.0
        pos = LINE.match(tag)
        if pos and int(pos.group(1)) > 0 and int(pos.group(2)) == 0:
            t += stage_delay
        q, c = per_account[who], per_pair[(who, chat)]
        for _ in range(100):  # the windows interact: iterate to a fixed point
            t2 = max(
                slot(q, minute, 60.0, t),
                slot(q, hour, 3600.0, t),
                slot(c, group_minute, 60.0, t),
                (c[-1] + gap) if c else t,
            )
            if t2 == t:
                break
            t = t2
        q.append(t)
        c.append(t)
        if collab:
            chain[chat] = t
        last = max(last, t)
    return last


def violations(sends: list[tuple[float, int, int, str]]) -> dict[str, int]:
    eps = 0.05
    out: Counter[str] = Counter()
    by_account: dict[int, list[float]] = defaultdict(list)
    by_pair: dict[tuple[int, int], list[float]] = defaultdict(list)
    for date, who, chat, _ in sorted(sends):
        by_account[who].append(date)
        by_pair[(who, chat)].append(date)

    def over(times: list[float], count: int, window: float) -> int:
        n = 0
        for i in range(count, len(times)):
            if times[i] - times[i - count] < window - eps:
                n += 1
        return n

    for times in by_account.values():
        out["account per minute"] += over(times, PACING["perAccountPerMinute"], 60.0)
        out["account per hour"] += over(times, PACING["perAccountPerHour"], 3600.0)
    for times in by_pair.values():
        out["account per group per minute"] += over(times, PACING["perGroupPerMinute"], 60.0)
        out["chat interval"] += sum(
            1 for a, b in itertools.pairwise(times) if b - a < PACING["perChatMinIntervalSeconds"] - eps
        )
    return dict(out)


# --- the run -------------------------------------------------------------------------------------


def bench(args: argparse.Namespace, tmp: Path) -> str:
    from tg_emulator.threaded import EmulatorThread
    from tgm_stack import Stack
    from tgm_testing.gateway import GatewayClient, wait_until

    emu = EmulatorThread().start()
    stack: Stack | None = None
    try:
        world = seed(emu)
        home = tmp / "stack"
        home.mkdir()
        stack = Stack(
            home / "data",
            gateway_port=0,
            services=("tg-session", "campaign"),
            extra_env=emu.env(home),
        )
        stack.start()
        with GatewayClient(stack, timeout=120) as gw:
            say("stack up; onboarding 30 accounts")
            ids = onboard(gw, world)
            say("accounts connected")
            roles = [
                gw.ok(
                    "save-role",
                    {
                        "name": f"Role {i}",
                        "type": "custom",
                        "boundAccountId": acct,
                        "aiConfig": {"typingSpeed": 2000},
                    },
                )["id"]
                for i, acct in enumerate(ids)
            ]
            slots = ("a", "b", "c")
            stages = [
                {
                    "name": f"s{s}",
                    "trigger": {"type": "time", "delaySeconds": args.stage_delay},
                    "lines": [
                        {
                            "slot": slot,
                            "text": "{run} stage " + str(s) + " line " + str(j) + " [c{run}s" + f"{s}l{j}]",
                            "delaySeconds": 0,
                            "jitterSeconds": 0,
                            "simulateTyping": False,
                        }
                        for j, slot in enumerate(slots)
                    ],
                }
                for s in range(args.stages)
            ]
            script = gw.ok(
                "save-script", {"name": "bench", "roles": [{"key": s} for s in slots], "stages": stages}
            )
            tpl = gw.ok(
                "add-template",
                {"name": "bench ad", "category": "ad", "content": "{Big|Great|Fresh} deals today [ad]"},
            )["template"]

            now = datetime.now(UTC)
            first = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
            times = [
                (first + timedelta(minutes=m * args.ad_every)).strftime("%H:%M")
                for m in range(args.ad_minutes)
            ]
            t0 = emu.do(emu.world.now)
            started = time.monotonic()
            runs = []
            for k in range(RUNS):
                bindings = {slot: roles[(3 * k + j) % ACCOUNTS] for j, slot in enumerate(slots)}
                run = gw.ok(
                    "start-collaboration",
                    {
                        "scriptId": script["id"],
                        "roleBindings": bindings,
                        "chat": MARK - world["collab"][k].id,
                        "target": world["targets"][k].id,
                        "variables": {"run": str(k)},
                    },
                )
                runs.append(run["id"])
            campaigns = []
            for c in range(AD_CAMPAIGNS):
                groups = world["ads"][c * AD_GROUPS_PER : (c + 1) * AD_GROUPS_PER]
                cmp = gw.ok(
                    "create-ad-campaign",
                    {
                        "name": f"bench ads {c}",
                        "templateIds": [tpl["id"]],
                        "targets": [{"chat": MARK - g.id} for g in groups],
                        "schedule": {"type": "daily", "times": times, "timezone": "UTC"},
                        "accounts": {"accountIds": ids[c * AD_ACCOUNTS_PER : (c + 1) * AD_ACCOUNTS_PER]},
                        "accountStrategy": "rotate",
                        "minGroupIntervalMinutes": 1,
                        "skipIfLastMessageOurs": False,
                        "start": True,
                    },
                )
                campaigns.append(cmp["id"])
            say(f"{RUNS} runs started, {AD_CAMPAIGNS} ad campaigns running at {times}")
            lines_total = RUNS * args.stages * len(slots)
            ads_total = AD_CAMPAIGNS * AD_GROUPS_PER * args.ad_minutes
            last_ad = first + timedelta(minutes=(args.ad_minutes - 1) * args.ad_every)

            def statuses() -> Counter[str]:
                items = gw.pages("get-collaboration-status", {"limit": 100})
                return Counter(x["status"] for x in items if x["id"] in runs)

            def done() -> bool:
                st = statuses()
                sent = ours(emu, world)
                say(f"runs {dict(st)}; {len(sent)} sends")
                ads_settled = datetime.now(UTC) > last_ad + timedelta(seconds=90)
                return st.get("running", 0) == 0 and st.get("pending", 0) == 0 and ads_settled

            wait_until(done, args.deadline, "every run finished and the last ad run settled", interval=10.0)
            elapsed = time.monotonic() - started
            for cid in campaigns:
                gw.ok("stop-ad-campaign", {"id": cid})
            sends = ours(emu, world)
            final = statuses()
            stats = [gw.ok("get-ad-stats", {"adCampaignId": cid})["totals"] for cid in campaigns]
            ad_runs = sum(x["counters"]["runs"] for x in gw.ok("get-ad-campaigns", {"limit": 100})["items"])
    finally:
        if stack is not None:
            stack.stop()
        emu.stop()

    tags = Counter(TAG.search(t).group(1) for _, _, _, t in sends)  # type: ignore[union-attr]
    collab = [s for s in sends if TAG.search(s[3]).group(1).startswith("c")]  # type: ignore[union-attr]
    ad_posts = [s for s in sends if not TAG.search(s[3]).group(1).startswith("c")]  # type: ignore[union-attr]
    dup_lines = sum(n - 1 for tag, n in tags.items() if tag.startswith("c") and n > 1)
    # An ad run posts once per group: two posts of one campaign in one group within 30 s are one run twice.
    dup_ads = 0
    by_group: dict[int, list[float]] = defaultdict(list)
    for date, _, chat, _ in sorted(ad_posts):
        by_group[chat].append(date)
    for dates in by_group.values():
        dup_ads += sum(1 for a, b in itertools.pairwise(dates) if b - a < 30)
    makespan = max(d for d, *_ in sends) - t0 if sends else 0.0
    best = best_makespan(sends, t0, args.stage_delay)
    bad = violations(sends)
    per_account = Counter(who for _, who, _, _ in sends)
    rate = len(sends) / makespan * 60 if makespan else 0.0
    hour_cap = PACING["perAccountPerHour"] * ACCOUNTS
    stats_posted = sum(s["posted"] for s in stats)
    failed: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    for s in stats:
        failed.update(s.get("failedByReason") or {})
        skipped.update(s.get("skippedByReason") or {})
    load = os.getloadavg()
    if makespan >= 3600:
        in_hour = sum(1 for d, *_ in sends if d < t0 + 3600)
        hour_line = (
            f"an hour        {in_hour} sends in the first 60 min of emulator time, against {hour_cap} "
            f"that perAccountPerHour allows 30 accounts ({in_hour / hour_cap:.3f} of it)"
        )
    else:
        hour_line = (
            f"an hour        {rate * 60:.0f} sends at this rate (scaled from {makespan / 60:.1f} min), but "
            f"perAccountPerHour caps an hour at {hour_cap}: this load, sustained, is hour-capped"
        )
    lines = [
        f"machine        {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (at the end)",
        f"date           {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"workload       {RUNS} collaboration runs x {args.stages} stages x 3 roles = {lines_total} lines "
        f"({args.stage_delay} s between stages); "
        f"{AD_CAMPAIGNS} ad campaigns x {AD_GROUPS_PER} groups x {args.ad_minutes} runs "
        f"(every {args.ad_every} min) = {ads_total} posts; "
        f"{ACCOUNTS} accounts (each in 2 runs; 6 per ad campaign)",
        f"pacing         {PACING}",
        "",
        f"delivered      {len(collab)}/{lines_total} lines, {len(ad_posts)}/{ads_total} ad posts "
        f"(get-ad-stats posted {stats_posted}, failed {dict(failed)}, skipped {dict(skipped)}, "
        f"ad runs opened {ad_runs}); collaboration runs {dict(final)}",
        f"duplicates     {dup_lines} lines, {dup_ads} ad posts",
        f"makespan       {makespan:.1f} s measured (first start to last delivery; {elapsed:.0f} s wall to settle), "
        f"best {best:.1f} s under the limits -> fraction {best / makespan if makespan else 0:.3f}",
        f"throughput     {rate:.1f} sends/min over the makespan; the account limit sustains "
        f"{PACING['perAccountPerMinute'] * ACCOUNTS}/min for 30 accounts (a first minute may use a whole window "
        f"sooner); per account {min(per_account.values()) if per_account else 0}..{max(per_account.values()) if per_account else 0} sends",
        hour_line,
        f"violations     {sum(bad.values())} {bad}",
    ]
    return "\n".join(lines)


#: The command line: (flag, argparse options).
OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--stages", {"type": int, "default": 8, "help": "stages of the script (3 lines each)"}),
    ("--ad-minutes", {"type": int, "default": 5, "help": "ad runs, one every --ad-every minutes"}),
    ("--ad-every", {"type": int, "default": 1, "help": "minutes between two ad runs"}),
    ("--stage-delay", {"type": int, "default": 0, "help": "seconds between a stage and the next"}),
    ("--deadline", {"type": float, "default": 900, "help": "give up after this many seconds"}),
    ("--quick", {"action": "store_true", "help": "3 stages, 2 ad runs"}),
    (
        "--hour",
        {
            "action": "store_true",
            "help": "an hour of emulator time: 28 stages 100 s apart, 12 ad runs 5 min apart (~75 min)",
        },
    ),
    ("--out", {"type": Path, "default": None}),
)


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for flag, options in OPTIONS:
        p.add_argument(flag, **options)
    args = p.parse_args()
    if args.quick:
        args.stages, args.ad_minutes = 3, 2
    if args.hour:
        args.stages, args.stage_delay, args.ad_minutes, args.ad_every = 28, 100, 12, 5
        args.deadline = max(args.deadline, 5400)
    tmp = Path(tempfile.mkdtemp(prefix="bench-collab-"))
    text = bench(args, tmp)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = "violations     0 " in text and "duplicates     0 lines, 0 ad posts" in text
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
