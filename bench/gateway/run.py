"""bench/gateway: our command paths end to end (HTTP -> gateway -> NATS -> service -> back) against a
raw nats-py request/reply to a trivial responder, alternated in one run on the embedded stack.

- Client: wrk (a C load generator; installed with `apt-get install -y wrk` when missing) for the HTTP
  paths; `natsload.py` (nats-py in a process of its own) for the raw reference.
- Paths: `get-ai-models` and the raw bus at c=1 and c=16, `get-settings` (a fan-out) at c=16,
  `get-accounts` (page of 50) at c=1 and c=16 with 1,000 accounts stored, then at c=16 with 10,000;
  and the time to read every account page by page (one client following `nextCursor`).
- Rounds: every path runs once per round, in the same order, `--rounds` times (3); the table shows
  the medians. Server CPU per request comes from psutil (user + system time of each process over the
  run, divided by the requests served): gateway, ai, tg-session, campaign, analytics, the database
  server, nats-server and the trivial responder.
- Settling: after accounts are added the bench waits until every JetStream consumer has nothing
  pending (`settle`: the services have digested the account events seeding made) and prints how
  long that took; the figures are of the steady state, not of the minutes after 10,000 accounts
  were added at once.
- Output: the table, the machine and its load average, also written to `last-run.txt` beside this file
  (`--out` moves it). It asserts nothing; the issue-16 targets are printed beside the figures.

Usage: python bench/gateway/run.py [--seconds 6] [--rounds 3] [--accounts 1000,10000]
       python bench/gateway/run.py --only read-all [--accounts 10000] [--data DIR]

`--only read-all` runs the page-by-page reads alone (after one warm-up read) and prints each run's
seconds and the server CPU per page; it writes no `last-run.txt`. `--data DIR` keeps the stack's data
directory (its database) between runs, so a second run seeds only the accounts still missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
import orjson
import psutil
from tgm_contracts.commands.accounts import AddAccount
from tgm_contracts.commands.telegram_ops import SaveApiCredential
from tgm_stack import Stack

HERE = Path(__file__).resolve().parent
#: Within the gateway's own subjects: the raw path connects as the gateway's NATS user (the stack's
#: nats-server has per-service users and permissions, tgm_contracts.bus).
RAW_SUBJECT = "tgm.gateway.bench.echo"
PAGE = 50
PROCESSES = ("gateway", "ai", "tg-session", "campaign", "analytics", "database", "nats", "responder")


def ensure_wrk() -> str:
    """The bench's own setup: wrk from the Debian package when it is not installed."""
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print("wrk not found: installing the Debian package (apt-get install -y wrk)", flush=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still not on PATH after apt-get install")
    return found


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per request, per process


@dataclass
class Path_:
    name: str
    concurrency: int
    runs: list[Run] = field(default_factory=list)
    reference: str | None = None  # the raw path this one is compared with

    def median(self, get: Callable[[Run], float]) -> float:
        return statistics.median(get(r) for r in self.runs) if self.runs else float("nan")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> tuple[int, float, float, float, int]:
    """requests, req/s, p50 ms, p99 ms, errors (non-2xx, socket errors) from wrk --latency output."""
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return requests, rps, p50, p99, errors


class Bench:
    def __init__(self, stack: Stack, responder: subprocess.Popen[str], wrk: str, seconds: float) -> None:
        self.stack = stack
        self.wrk = wrk
        self.seconds = seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="tgm-bench-"))
        assert stack.mongo is not None and stack.nats is not None, "the bench runs the embedded stack"
        pids = {
            "gateway": stack.child("gateway").process.pid,
            "ai": stack.child("ai").process.pid,
            "tg-session": stack.child("tg-session").process.pid,
            "campaign": stack.child("campaign").process.pid,
            "analytics": stack.child("analytics").process.pid,
            "database": stack.mongo.process.pid,
            "nats": stack.nats.process.pid,
            "responder": responder.pid,
        }
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items() if pid}

    def _cpu(self) -> dict[str, float]:
        return cpu_seconds(self.procs)

    def _script(self, command: str, payload: dict[str, object]) -> Path:
        path = self.tmp / f"{command}.lua"
        body = json.dumps(payload).replace("\\", "\\\\").replace('"', '\\"')
        path.write_text(
            'wrk.method = "POST"\n'
            f'wrk.body = "{body}"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {self.stack.admin_key}"\n'
        )
        return path

    def http(self, command: str, concurrency: int, payload: dict[str, object], seconds: float) -> Run:
        script = self._script(command, payload)
        url = f"{self.stack.gateway_url}/api/v1/commands/{command}"
        argv = [self.wrk, "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--latency", "--timeout", "10s"]
        before = self._cpu()
        out = subprocess.run([*argv, "-s", str(script), url], capture_output=True, text=True, check=True)
        after = self._cpu()
        requests, rps, p50, p99, errors = parse_wrk(out.stdout)
        return Run(rps, p50, p99, requests, errors, self._per_request(before, after, requests))

    def raw(self, concurrency: int, seconds: float) -> Run:
        before = self._cpu()
        out = subprocess.run(
            [
                sys.executable,
                str(HERE / "natsload.py"),
                self.stack.nats_url_for("gateway"),
                RAW_SUBJECT,
                str(concurrency),
                str(seconds),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        after = self._cpu()
        got = json.loads(out.stdout.strip().splitlines()[-1])
        return Run(
            got["rps"],
            got["p50_ms"],
            got["p99_ms"],
            got["requests"],
            got["errors"],
            self._per_request(before, after, got["requests"]),
        )

    @staticmethod
    def _per_request(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, float]:
        n = max(1, requests)
        return {k: (after[k] - before[k]) * 1000 / n for k in after}

    def read_all(self, expected: int) -> float:
        """Seconds to read every account as pages of 50, following nextCursor (one client)."""
        return self.read_all_run(expected)[0]

    def read_all_run(self, expected: int) -> tuple[float, int, dict[str, float]]:
        """`read_all`'s seconds, its page count and the server CPU ms per page (per process); each
        page's milliseconds are kept in `page_ms` (the slowest ones show a cache being rebuilt)."""
        before = self._cpu()
        pages = 0
        self.page_ms: list[float] = []
        headers = {"authorization": f"Bearer {self.stack.admin_key}"}
        seen = 0
        t0 = time.perf_counter()
        with httpx.Client(base_url=self.stack.gateway_url, headers=headers, timeout=60) as http:
            cursor = None
            while True:
                payload: dict[str, object] = {"limit": PAGE}
                if cursor:
                    payload["cursor"] = cursor
                started = time.perf_counter()
                r = http.post("/api/v1/commands/get-accounts", json=payload)
                r.raise_for_status()
                self.page_ms.append((time.perf_counter() - started) * 1000)
                pages += 1
                data = orjson.loads(r.content)["data"]  # the client's parse is not the server's cost
                seen += len(data["items"])
                cursor = data.get("nextCursor")
                if not cursor:
                    break
        elapsed = time.perf_counter() - t0
        after = self._cpu()
        if seen != expected:
            print(f"  read-all saw {seen} accounts, {expected} stored", flush=True)
        return elapsed, pages, self._per_request(before, after, pages)

    def stored(self) -> int:
        """Accounts already in the database (a kept `--data` directory)."""
        headers = {"authorization": f"Bearer {self.stack.admin_key}"}
        with httpx.Client(base_url=self.stack.gateway_url, headers=headers, timeout=60) as http:
            r = http.post("/api/v1/commands/get-accounts", json={"limit": 1})
            r.raise_for_status()
            return int(r.json()["data"]["total"])


async def seed_accounts(stack: Stack, first: int, count: int, concurrency: int = 32) -> None:
    """Accounts added through tg-session's own add-account (the real write path), over the bus, as the
    gateway sends commands: as its NATS user, signed with the services' bus key."""
    from tgm_contracts import bus
    from tgm_runtime.testing import bus_auth_for, signed_headers

    nc = await nats.connect(stack.nats_url_for("gateway"), inbox_prefix=bus.inbox_prefix("gateway"))
    signer = bus_auth_for(stack.master_key_file)

    async def ask(subject: str, payload: dict[str, object], rid: str) -> None:
        data = json.dumps(payload).encode()
        headers = signed_headers(signer, subject, data, principal="bench", request_id=rid)
        msg = await nc.request(subject, data, timeout=30, headers=headers)
        reply = json.loads(msg.data)
        if not reply.get("ok"):
            raise RuntimeError(f"{subject} failed: {reply}")

    # Every account takes a slot of an API credential: one credential per 1,000 accounts.
    for c in range(first // 1000, (first + count + 999) // 1000):
        credential = {"apiId": 100_000 + c, "apiHash": f"{c:032x}", "maxAccounts": 1000, "test": False}
        await ask(SaveApiCredential.SUBJECT, credential, f"seed-cred{c}")
    numbers = iter(range(first, first + count))

    async def worker() -> None:
        for n in numbers:
            await ask(AddAccount.SUBJECT, {"phone": f"+1555{n:07d}", "label": f"bench {n}"}, f"seed{n}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    t0 = time.perf_counter()
    backlog = await settle(nc)
    print(
        f"  {count:,} accounts added; the services' event consumers caught up with them in "
        f"{time.perf_counter() - t0:.1f} s ({backlog:,} events pending when the last was added)",
        flush=True,
    )
    await nc.close()


async def settle(nc: nats.NATS, timeout: float = 900) -> int:
    """Wait until every JetStream consumer of every stream has nothing pending or unacknowledged
    (the services have digested what seeding published: each added account is an event campaign,
    analytics and tg-session's other replicas react to, and the database serves one operation at a
    time). The figures are the steady state an operator reads the fleet in, not the minutes right
    after 10,000 accounts were added at once; how long the catching up took is printed. Returns the
    backlog seen first."""
    js = nc.jetstream()
    first: int | None = None
    deadline = time.monotonic() + timeout
    while True:
        pending = 0
        for stream in await js.streams_info():
            for consumer in await js.consumers_info(stream.config.name):
                pending += (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
        if first is None:
            first = pending
        if pending == 0:
            return first
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the event consumers still had {pending} events pending after {timeout:.0f} s"
            )
        await asyncio.sleep(0.5)


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    """User + system CPU seconds of each process so far."""
    out = {}
    for name, p in procs.items():
        t = p.cpu_times()
        out[name] = t.user + t.system
    return out


def fmt_cpu(run_cpu: dict[str, float]) -> str:
    parts = [f"{k} {v:.2f}" for k, v in run_cpu.items() if v >= 0.005]
    return f"{sum(run_cpu.values()):.2f} ({', '.join(parts)})"


def report(paths: list[Path_], reads: dict[int, list[float]], lines: list[str]) -> None:
    by_name = {(p.name, p.concurrency): p for p in paths}
    lines.append(
        "| path | c | req/s | p50 ms | p99 ms | ratio to raw | server CPU ms/request (per process) | errors |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for p in paths:
        rps = p.median(lambda r: r.rps)
        ratio = ""
        if p.reference:
            ref = by_name[(p.reference, p.concurrency)]
            ratio = f"{rps / ref.median(lambda r: r.rps):.3f}"
        cpu = {k: statistics.median(r.cpu_ms.get(k, 0.0) for r in p.runs) for k in PROCESSES}
        if p.reference is None:
            cpu = {k: v for k, v in cpu.items() if k in ("nats", "responder")}
        else:
            cpu.pop("responder", None)
        lines.append(
            f"| {p.name} | {p.concurrency} | {rps:,.0f} | {p.median(lambda r: r.p50_ms):.2f} | "
            f"{p.median(lambda r: r.p99_ms):.1f} | {ratio or '1'} | {fmt_cpu(cpu)} | "
            f"{sum(r.errors for r in p.runs)} |"
        )
    for n, times in reads.items():
        lines.append(
            f"| read all {n:,} accounts, pages of {PAGE} | 1 | — | — | — | — | "
            f"{statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}) | — |"
        )


def read_only(bench: Bench, counts: list[int], stored: int, rounds: int) -> None:
    """`--only read-all`: the page-by-page reads, with the load average around each count's runs."""
    for n in counts:
        if n > stored:
            asyncio.run(seed_accounts(bench.stack, stored, n - stored))
            stored = n
        bench.read_all_run(n)  # warm-up
        load = os.getloadavg()[0]
        for _ in range(rounds):
            secs, pages, cpu = bench.read_all_run(n)
            ms = sorted(bench.page_ms)
            print(
                f"read all {n:,}: {secs:.2f} s, {pages} pages (ms a page: median {ms[len(ms) // 2]:.1f}, "
                f"slowest {', '.join(f'{m:.0f}' for m in ms[-3:][::-1])}), server CPU ms/page {fmt_cpu(cpu)}",
                flush=True,
            )
        print(f"  load average {load:.2f} before, {os.getloadavg()[0]:.2f} after", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accounts", default="1000,10000", help="account counts, ascending")
    parser.add_argument("--out", type=Path, default=HERE / "last-run.txt")
    parser.add_argument("--only", choices=["read-all"], help="run only these paths (no last-run.txt)")
    parser.add_argument("--data", type=Path, help="the stack's data directory, kept between runs")
    args = parser.parse_args()
    wrk = ensure_wrk()
    counts = [int(n) for n in args.accounts.split(",") if n]
    load_start = os.getloadavg()
    started = datetime.now(UTC)
    # The per-key rate limit protects a fleet from a runaway script; the bench measures the path itself.
    env = {"TGM_GATEWAY_KEY_RATE_PER_SECOND": "1000000", "TGM_GATEWAY_KEY_RATE_BURST": "1000000"}
    lines: list[str] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(args.data or Path(tmp) / "data", gateway_port=0, extra_env=env) as stack,
    ):
        # The trivial responder is a process of its own, like the service on the other path.
        responder = subprocess.Popen(
            [sys.executable, str(HERE / "responder.py"), stack.nats_url_for("gateway"), RAW_SUBJECT],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
            bench = Bench(stack, responder, wrk, args.seconds)
            paths: list[Path_] = []
            reads: dict[int, list[float]] = {}
            stored = bench.stored() if args.data else 0
            if args.only == "read-all":
                read_only(bench, counts, stored, args.rounds)
                return
            for i, n in enumerate(counts):
                asyncio.run(seed_accounts(stack, stored, n - stored))
                stored = n
                print(f"{n} accounts stored", flush=True)
                plan: list[tuple[Path_, Callable[[float], Run]]] = []

                def add(
                    name: str, c: int, ref: str | None, fn: Callable[[float], Run], plan: list = plan
                ) -> None:
                    p = Path_(name, c, reference=ref)
                    paths.append(p)
                    plan.append((p, fn))

                acc = f"`get-accounts`, {n:,} stored, page of {PAGE}"
                if i == 0:
                    for c in (1, 16):
                        add("raw nats-py request/reply", c, None, lambda s, c=c: bench.raw(c, s))
                        add(
                            "`get-ai-models` via the gateway",
                            c,
                            "raw nats-py request/reply",
                            lambda s, c=c: bench.http("get-ai-models", c, {}, s),
                        )
                    add(
                        "`get-settings` (fan-out)",
                        16,
                        "raw nats-py request/reply",
                        lambda s: bench.http("get-settings", 16, {}, s),
                    )
                    add(acc, 1, "raw nats-py request/reply", lambda s: bench.http("get-accounts", 1, {}, s))
                add(acc, 16, "raw nats-py request/reply", lambda s: bench.http("get-accounts", 16, {}, s))
                for _, fn in plan:  # warm-up: caches, connections, the first page of each path
                    fn(1.0)
                reads[n] = []
                for r in range(args.rounds):
                    for p, fn in plan:
                        p.runs.append(fn(args.seconds))
                    reads[n].append(bench.read_all(n))
                    print(f"  round {r + 1}/{args.rounds} done", flush=True)
        finally:
            responder.terminate()
            responder.wait(10)
    load_end = os.getloadavg()
    header = [
        f"bench/gateway {started:%Y-%m-%d %H:%M} UTC: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load_start[0]:.1f} before, "
        f"{load_end[0]:.1f} after; {args.rounds} rounds x {args.seconds:g} s per path, medians; "
        f"wrk -t1 (HTTP), natsload.py (raw)",
        "",
    ]
    report(paths, reads, lines)
    targets = [
        "",
        "issue 16 targets: get-ai-models >= 0.25x raw at c=1 and >= 0.10x at c=16, server CPU <= 2 ms/request;",
        "get-accounts (1,000 stored, page 50) >= 100 req/s at c=16 with p99 <= 250 ms; all 10,000 page by",
        "page <= 2 s; get-settings >= 300 req/s at c=16.",
    ]
    text = "\n".join(header + lines + targets) + "\n"
    print("\n" + text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
