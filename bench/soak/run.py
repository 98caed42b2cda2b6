"""bench/soak: the memory of every process of the stack after an hour of steady mixed load, against
its figure at the start, so that a leak shows (issue 16).

The stack as processes (`tgm_stack.Stack`: nats-server, the database server, tg-session with the
real Telethon, campaign, ai, analytics, tailchat and the gateway), with tg-session on the Telegram
emulator (`tg_emulator.threaded.EmulatorThread`, in this process), driven only through the gateway's
public HTTP API, as bench/collaboration and the e2e tests do. The emulator's world: `--accounts`
fleet accounts (20), one contact per account (who writes first, so the account may answer), and two
groups with every account and contact in them.

The load, constant over the run and modest (the machine is small and other benches run), on a fixed
schedule of slots (`--rate`: slots per second, 2 by default), each slot one operation in turn:

- reads (half the slots): get-accounts pages, get-queue-status, get-dashboard-stats, get-settings,
  get-chat-history, get-message-stats, get-knowledge-stats, get-system-info;
- sends (1 in 8): send-message to an account's contact or send-group-message in a group, through the
  paced queue, delivered on the emulator;
- inbound (1 in 8): an emulator contact writes to its account, or in a group (history, analytics);
- AI (1 in 4): ai-generate-response on the local provider with a small knowledge base loaded.

Memory: every process's RSS (with its children) and USS (psutil's memory_full_info) sampled once
the `--warmup` minutes are over (the start figure), every `--sample-every` seconds, and at the end;
the peak is the kernel's high-water mark (VmHWM). The table: RSS start, end, delta (MiB and %), peak,
and the slope in MiB/hour of a least-squares fit over the samples after warm-up; with the load mix,
the achieved rates, the errors by command and code, and the machine. The bench process itself (the
emulator and the driver) is listed as `bench (emulator)`: the emulator keeps every delivery by design.

Exit status 1 if more than `--max-error-share` of the operations failed or a process died.

    .venv/bin/python bench/soak/run.py                         # 60 min, writes bench/soak/last-run.txt
    .venv/bin/python bench/soak/run.py --minutes 3 --warmup 1 --sample-every 30 --out /tmp/soak.txt
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024
MARK = -1_000_000_000_000  # marked channel ids: MARK - channel.id
GROUPS = 2
#: Loose enough that the soak's sends are never held back for long, tight enough to be real pacing.
PACING: dict[str, Any] = {
    "jitterMinSeconds": 0.0,
    "jitterMaxSeconds": 0.5,
    "quietHoursStart": None,
    "quietHoursEnd": None,
    "perAccountPerMinute": 6,
    "perAccountPerHour": 200,
    "perChatMinIntervalSeconds": 5.0,
    "perGroupPerMinute": 4,
    "perAccountDailyNonContacts": 1000,
}
#: A contact hears from its account every few minutes: the default caps (3 a day) would hold the DMs back.
COMPLIANCE = {"perRecipientDailyCap": 100, "perRecipientTotalCap": 10000}
KNOWLEDGE = [
    {"type": "faq", "question": "How much is the Pro plan?", "answer": "The Pro plan costs 30 USD per month."},
    {"type": "faq", "question": "How do I reset my password?", "answer": "Click 'Forgot password' on the login page."},
    {"type": "faq", "question": "Do you offer refunds?", "answer": "Yes, within 14 days of purchase."},
    {"type": "faq", "question": "運費怎麼算？", "answer": "單筆訂單滿 1000 元免運，未滿收 80 元。"},
    {
        "type": "text",
        "title": "Shipping",
        "content": "Orders ship within 2 business days. Delivery takes 3 to 5 days in Europe. "
        "Express delivery is available for 15 USD.",
    },
]  # fmt: skip
QUESTIONS = [
    "How long does delivery take to Europe?",
    "What is the price of the Pro plan?",
    "I forgot my password, what do I do?",
    "Can I get my money back?",
    "请问运费怎么算？",
    "Is express delivery available?",
    "Can I pay with seashells on Mars?",
]
#: The schedule: one operation per slot, in this order, over and over (8 slots).
CYCLE = ("read", "ai", "read", "send", "read", "ai", "read", "inbound")
READS = (
    "get-accounts",
    "get-queue-status",
    "get-dashboard-stats",
    "get-settings",
    "get-chat-history",
    "get-message-stats",
    "get-knowledge-stats",
    "get-system-info",
)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the world and the fleet ---------------------------------------------------------------------


def seed(emu: Any, accounts: int) -> dict[str, Any]:
    w = emu.world
    out: dict[str, Any] = {}

    def build() -> None:
        owner = w.add_user("+15558000000", first_name="Owner", username="soak_owner")
        fleet = [w.add_user(f"+155581{i:05d}", first_name=f"Fleet{i}") for i in range(accounts)]
        contacts = [
            w.add_user(f"+155582{i:05d}", first_name=f"Contact{i}", username=f"soak_contact_{i:03d}")
            for i in range(accounts)
        ]
        groups = []
        for g in range(GROUPS):
            ch = w.create_channel(owner, f"Soak {g}")
            w.invite_to_channel(owner, ch, [*fleet, *contacts])
            groups.append(ch)
        out.update(
            fleet=fleet,
            contacts=contacts,
            groups=groups,
            sessions=[emu.emu.session_for(a) for a in fleet],
        )

    emu.do(build)
    return out


def onboard(gw: Any, emu: Any, world: dict[str, Any]) -> list[str]:
    from tgm_testing.gateway import wait_until

    creds = gw.ok("get-api-credentials")["items"]
    gw.ok("save-api-credential", {"id": creds[0]["id"], "maxAccounts": 1000, "test": False})
    ids = [
        gw.ok(
            "add-account",
            {"phone": a.phone, "sessionString": s, "dailySendLimit": 1000, "warmupEnabled": False},
        )["id"]
        for a, s in zip(world["fleet"], world["sessions"], strict=True)
    ]

    def connected() -> bool:
        items = gw.ok("get-accounts", {"ids": ids, "limit": 500})["items"]
        return len(items) == len(ids) and all(x["connected"] and x["state"] == "active" for x in items)

    wait_until(connected, 240, f"{len(ids)} accounts connected", interval=2.0)
    gw.ok("save-settings", {"settings": {"pacing": PACING, "compliance": COMPLIANCE}})
    # Every contact writes first, so its account may answer it (the emulator's non-contact limit).
    for user, acct in zip(world["contacts"], world["fleet"], strict=True):
        world_send(emu, user, ("user", acct.id), f"hello from {user.first_name}")
    gw.ok("add-knowledge", {"items": KNOWLEDGE})
    return ids


def world_send(emu: Any, sender: Any, peer: tuple[str, int], text: str) -> None:
    emu.do(lambda: emu.world.send_message(sender, peer, text))


# --- memory --------------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since the load started
    rss: float  # MiB, the process and its children
    uss: float | None  # MiB


@dataclass
class Proc:
    name: str
    process: psutil.Process
    samples: list[Sample] = field(default_factory=list)
    died: str | None = None
    with_children: bool = True  # not the bench's own process, whose children are the stack
    hwm: float | None = None  # the largest VmHWM seen (MiB)

    def tree(self) -> list[psutil.Process]:
        if not self.with_children:
            return [self.process]
        return [self.process, *self.process.children(recursive=True)]

    def sample(self, t: float) -> None:
        if self.died:
            return
        try:
            if not self.process.is_running() or self.process.status() == psutil.STATUS_ZOMBIE:
                self.died = f"gone at {t / 60:.1f} min"
                return
            rss, uss = 0.0, 0.0
            uss_ok = True
            for p in self.tree():
                try:
                    rss += p.memory_info().rss
                    try:
                        uss += p.memory_full_info().uss
                    except psutil.AccessDenied:
                        uss_ok = False
                except psutil.NoSuchProcess:
                    continue
            self.samples.append(Sample(t, rss / MIB, uss / MIB if uss_ok else None))
            peak = self.peak()
            if peak is not None:
                self.hwm = max(self.hwm or 0.0, peak)
        except psutil.NoSuchProcess:
            self.died = f"gone at {t / 60:.1f} min"

    def peak(self) -> float | None:
        """The kernel's high-water mark of the process's RSS (VmHWM, MiB), children not included."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


def slope_per_hour(samples: list[Sample], get: Any) -> float:
    """Least-squares slope of get(sample) over time, MiB per hour."""
    pts = [(s.t, get(s)) for s in samples if get(s) is not None]
    if len(pts) < 2:
        return float("nan")
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    den = sum((t - mt) ** 2 for t, _ in pts)
    if den == 0:
        return float("nan")
    return sum((t - mt) * (v - mv) for t, v in pts) / den * 3600


# --- the load ------------------------------------------------------------------------------------


class Load:
    def __init__(self, gw: Any, emu: Any, world: dict[str, Any], ids: list[str]) -> None:
        self.gw, self.emu, self.world, self.ids = gw, emu, world, ids
        self.lock = threading.Lock()
        self.done: Counter[str] = Counter()  # by kind
        self.by_command: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()  # "command: code"
        self.lat: dict[str, list[float]] = {}
        self.not_sent: Counter[str] = Counter()  # send states other than sent
        self.n = itertools.count()
        self.cursor: str | None = None

    def _record(self, kind: str, command: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.done[kind] += 1
            self.by_command[command] += 1
            self.lat.setdefault(kind, []).append(seconds)
            if error:
                self.errors[f"{command}: {error}"] += 1

    def _call(self, kind: str, command: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        error = None
        data = None
        try:
            r = self.gw.post(command, payload)
            body = r.json()
            if r.status_code == 200 and body.get("ok"):
                data = body["data"]
            else:
                error = (body.get("error") or {}).get("code") or f"HTTP {r.status_code}"
        except Exception as exc:  # a timeout, a dead gateway: counted, the load goes on
            error = type(exc).__name__
        self._record(kind, command, time.perf_counter() - t0, error)
        return data

    def op(self, kind: str) -> None:
        i = next(self.n)
        k = i % len(self.ids)
        contact = self.world["contacts"][k]
        if kind == "read":
            command = READS[(i // len(CYCLE)) % len(READS)]
            payload: dict[str, Any] = {}
            if command == "get-accounts":
                payload = {"limit": 10, **({"cursor": self.cursor} if self.cursor else {})}
            elif command == "get-queue-status":
                payload = {"includeJobs": True, "limit": 20}
            elif command == "get-chat-history":
                payload = {"accountId": self.ids[k], "peer": f"@{contact.username}", "limit": 20}
            data = self._call(kind, command, payload)
            if command == "get-accounts" and data is not None:
                self.cursor = data.get("nextCursor")
        elif kind == "ai":
            q = QUESTIONS[i % len(QUESTIONS)]
            self._call(
                kind,
                "ai-generate-response",
                {"accountId": self.ids[k], "userId": f"contact-{k}", "message": q},
            )
        elif kind == "send":
            if (i // len(CYCLE)) % 2 == 0:
                command = "send-message"
                payload = {"accountId": self.ids[k], "peer": f"@{contact.username}", "text": f"soak dm {i}"}
            else:
                command = "send-group-message"
                g = self.world["groups"][(i // len(CYCLE) // 2) % GROUPS]
                payload = {"accountId": self.ids[k], "group": MARK - g.id, "text": f"soak group {i}"}
            data = self._call(kind, command, payload)
            if data is not None and data.get("state") != "sent":
                with self.lock:
                    self.not_sent[f"{command}: {data.get('state')} {data.get('reason') or ''}".strip()] += 1
        elif kind == "inbound":
            t0 = time.perf_counter()
            error = None
            try:
                if (i // len(CYCLE)) % 2 == 0:
                    peer = ("user", self.world["fleet"][k].id)
                    text = f"{QUESTIONS[i % len(QUESTIONS)]} ({i})"
                else:
                    peer = ("channel", self.world["groups"][(i // len(CYCLE) // 2) % GROUPS].id)
                    text = f"soak chatter {i}"
                world_send(self.emu, contact, peer, text)
            except Exception as exc:
                error = type(exc).__name__
            self._record(kind, "emulator send_message", time.perf_counter() - t0, error)


# --- the run -------------------------------------------------------------------------------------


def run(args: argparse.Namespace, tmp: Path) -> tuple[str, bool]:
    from tg_emulator.threaded import EmulatorThread
    from tgm_stack import Stack
    from tgm_testing.gateway import GatewayClient

    emu = EmulatorThread().start()
    stack: Stack | None = None
    procs: list[Proc] = []
    load_avgs: list[tuple[float, float, float]] = []
    try:
        world = seed(emu, args.accounts)
        home = tmp / "stack"
        home.mkdir()
        stack = Stack(home / "data", gateway_port=0, extra_env=emu.env(home))
        say("starting the stack")
        stack.start()
        assert stack.mongo is not None and stack.nats is not None, "the soak runs the embedded stack"
        procs = [Proc(c.name, psutil.Process(c.process.pid)) for c in stack.children.values()]
        procs.sort(key=lambda p: (p.name != "gateway", p.name))
        procs += [
            Proc("nats-server", psutil.Process(stack.nats.process.pid)),
            Proc("database", psutil.Process(stack.mongo.process.pid)),
            Proc("bench (emulator)", psutil.Process(os.getpid()), with_children=False),
        ]
        with GatewayClient(stack, timeout=120) as gw:
            say(f"stack up; onboarding {args.accounts} accounts")
            ids = onboard(gw, emu, world)
            say(f"accounts connected; load for {args.minutes} min, warm-up {args.warmup} min")
            load = Load(gw, emu, world, ids)
            total = args.minutes * 60
            warm = args.warmup * 60
            period = 1.0 / args.rate
            started = time.monotonic()
            next_sample = warm
            pool = ThreadPoolExecutor(max_workers=8)
            busy = threading.Semaphore(16)  # a slow stack backs the schedule up, never unbounded
            skipped = 0
            for slot in itertools.count():
                due = started + slot * period
                now = time.monotonic()
                if due - started >= total:
                    break
                if due > now:
                    time.sleep(due - now)
                elapsed = time.monotonic() - started
                if elapsed >= next_sample:
                    for p in procs:
                        p.sample(elapsed)
                    load_avgs.append(os.getloadavg())
                    d = load.done
                    say(
                        f"{elapsed / 60:.1f} min: {sum(d.values())} ops {dict(d)}, "
                        f"{sum(load.errors.values())} errors; RSS "
                        + ", ".join(f"{p.name} {p.samples[-1].rss:.0f}" for p in procs if p.samples)
                    )
                    next_sample += args.sample_every
                kind = CYCLE[slot % len(CYCLE)]
                if not busy.acquire(blocking=False):
                    skipped += 1
                    continue

                def go(kind: str = kind) -> None:
                    try:
                        load.op(kind)
                    finally:
                        busy.release()

                pool.submit(go)
            pool.shutdown(wait=True)
            elapsed = time.monotonic() - started
            for p in procs:
                p.sample(elapsed)
            load_avgs.append(os.getloadavg())
            for c in stack.children.values():
                if not c.process.alive:
                    for p in procs:
                        if p.name == c.name and not p.died:
                            p.died = f"exited {c.process.returncode}"
    finally:
        if stack is not None:
            stack.stop()
        emu.stop()
    return report(args, procs, load, elapsed, skipped, load_avgs)


def report(
    args: argparse.Namespace,
    procs: list[Proc],
    load: Load,
    elapsed: float,
    skipped: int,
    load_avgs: list[tuple[float, float, float]],
) -> tuple[str, bool]:
    lines = [
        f"date           {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (end)",
        f"machine        {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} at the end, "
        f"1-min average over the samples {sum(x[0] for x in load_avgs) / max(1, len(load_avgs)):.2f} "
        f"(other benches share the machine)",
        f"run            {elapsed / 60:.1f} min of load, the first {args.warmup:g} min warm-up; "
        f"{args.accounts} accounts on the emulator, {GROUPS} groups; samples every {args.sample_every:g} s "
        "after warm-up",
        "",
        "memory (MiB; RSS and USS of the process and its children; peak = the process's own VmHWM, the kernel's "
        "high-water mark of its RSS, at the last sample)",
        "| process | RSS start | RSS end | delta | delta % | peak | slope MiB/h | USS start | USS end | USS slope MiB/h |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    died = []
    for p in procs:
        if not p.samples:
            lines.append(f"| {p.name} | — | — | — | — | — | — | — | — | — | {p.died or 'no sample'}")
            died.append(p.name)
            continue
        a, b = p.samples[0], p.samples[-1]
        peak = p.hwm
        uss_a = f"{a.uss:.1f}" if a.uss is not None else "—"
        uss_b = f"{b.uss:.1f}" if b.uss is not None else "—"
        note = f" ({p.died})" if p.died else ""
        if p.died:
            died.append(p.name)
        lines.append(
            f"| {p.name}{note} | {a.rss:.1f} | {b.rss:.1f} | {b.rss - a.rss:+.1f} | "
            f"{(b.rss - a.rss) / a.rss * 100:+.1f}% | {peak:.1f} | "
            f"{slope_per_hour(p.samples, lambda s: s.rss):+.1f} | {uss_a} | {uss_b} | "
            f"{slope_per_hour(p.samples, lambda s: s.uss):+.1f} |"
            if peak is not None
            else f"| {p.name}{note} | {a.rss:.1f} | {b.rss:.1f} | {b.rss - a.rss:+.1f} | "
            f"{(b.rss - a.rss) / a.rss * 100:+.1f}% | — | {slope_per_hour(p.samples, lambda s: s.rss):+.1f} | "
            f"{uss_a} | {uss_b} | {slope_per_hour(p.samples, lambda s: s.uss):+.1f} |"
        )
    if procs and procs[0].samples:
        lines.append("")
        lines.append("RSS samples (min: MiB per process, in the table's order)")
        for j, s in enumerate(procs[0].samples):
            row = [f"{s.t / 60:5.1f}"]
            for p in procs:
                row.append(f"{p.samples[j].rss:7.1f}" if j < len(p.samples) else "      —")
            lines.append("  " + " ".join(row))
    ops = sum(load.done.values())
    errors = sum(load.errors.values())
    lines += [
        "",
        f"load           schedule {args.rate:g} slots/s, cycle {'/'.join(CYCLE)}; reads rotate over {', '.join(READS)}",
        "achieved       "
        + ", ".join(
            f"{k} {n} ({n / elapsed:.2f}/s, median {sorted(load.lat[k])[len(load.lat[k]) // 2] * 1000:.0f} ms)"
            for k, n in sorted(load.done.items())
        )
        + f"; total {ops} ({ops / elapsed:.2f}/s); {skipped} slots skipped (16 operations already under way)",
        "by command     " + ", ".join(f"{k} {n}" for k, n in sorted(load.by_command.items())),
        f"sends          not delivered at once: {dict(load.not_sent) or 'none'}",
        f"errors         {errors} of {ops} ({errors / max(1, ops) * 100:.2f}%): {dict(load.errors) or 'none'}",
    ]
    ok = not died and errors <= args.max_error_share * max(1, ops)
    if died:
        lines.append(f"died           {', '.join(died)}")
    lines.append(
        f"verdict        {'ok' if ok else 'FAILED'} (errors allowed up to {args.max_error_share:.1%}, no process may die)"
    )
    return "\n".join(lines), ok


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--minutes", type=float, default=60, help="minutes of load, warm-up included")
    p.add_argument("--warmup", type=float, default=3, help="minutes before the start figure")
    p.add_argument("--sample-every", type=float, default=300, help="seconds between samples")
    p.add_argument("--accounts", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="operations scheduled per second")
    p.add_argument("--max-error-share", type=float, default=0.01)
    p.add_argument("--out", type=Path, default=HERE / "last-run.txt")
    args = p.parse_args()
    if args.warmup >= args.minutes:
        p.error("--warmup must be shorter than --minutes")
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    text, ok = run(args, tmp)
    print("\n" + text, flush=True)
    args.out.write_text(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
