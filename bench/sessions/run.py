"""Benchmark tg-session's session pools against the Telegram emulator.

Runs the real stack (nats-server, database, tg-session replicas, gateway) as processes and the
emulator on a thread of this process, imports N accounts (Telethon StringSessions the emulator
issued) through the gateway, and measures:

- accounts held per replica once every account is connected (the fair-share leases at work);
- memory per connected account: (replica RSS with its accounts - RSS of the same replica before it
  held any) / accounts it holds;
- time to connect N accounts: both replicas are stopped and started again with N accounts in the
  database; the clock runs from the restart until the gateway lists all N as connected (leases
  claimed, Telethon connected, session verified with Telegram).

Bounded: every wait has a deadline, the stack is stopped on the way out.
Usage: ``python bench/sessions/run.py [--accounts 500] [--replicas 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from tgm_stack import Stack

HERE = Path(__file__).resolve().parent
API_HASH = "0123456789abcdef0123456789abcdef"


class EmulatorThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> EmulatorThread:
        from tg_emulator.emulator import Emulator
        from tg_emulator.limits import Limits
        from tg_emulator.world import World

        self.thread.start()

        async def boot() -> Any:
            return await Emulator(World(limits=Limits.unlimited())).start()

        self.emu = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(30)
        return self

    def do(self, fn: Any) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(120)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.emu.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def rss_mib(pid: int | None) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20 if pid else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="deadline of each phase")
    args = ap.parse_args()
    n, replicas = args.accounts, args.replicas
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, Python {platform.python_version()}",
        "accounts": n,
        "replicas": replicas,
    }
    emu = EmulatorThread().start()
    tmp = Path(tempfile.mkdtemp(prefix="tgm-bench-sessions-"))
    key = tmp / "rsa.pem"
    from tg_emulator.keys import PUBLIC_KEY_PEM

    key.write_text(PUBLIC_KEY_PEM)
    world = emu.emu.world
    sessions = emu.do(
        lambda: [
            (f"+1556{i:07d}", emu.emu.session_for(world.add_user(f"+1556{i:07d}", first_name=f"B{i}")))
            for i in range(n)
        ]
    )
    env = {
        "TGM_SESSION_DC_HOST": emu.emu.host,
        "TGM_SESSION_DC_PORT": str(emu.emu.port),
        "TGM_SESSION_RSA_PUBLIC_KEY_FILE": str(key),
        "TGM_SESSION_API_ID": "1",
        "TGM_SESSION_API_HASH": API_HASH,
        "TGM_SESSION_CLAIM_INTERVAL_SECONDS": "1",
        "TGM_SESSION_CONNECT_CONCURRENCY": "32",
        "TGM_LOG_LEVEL": "WARNING",
    }
    stack = Stack(tmp / "data", gateway_port=0, services=("tg-session",), replicas={"tg-session": replicas},
                  extra_env=env)  # fmt: skip
    stack.start()
    try:
        http = httpx.Client(base_url=stack.gateway_url, headers={"authorization": f"Bearer {stack.admin_key}"},
                            timeout=120)  # fmt: skip

        def ok(command: str, payload: dict[str, Any]) -> Any:
            reply = http.post(f"/api/v1/commands/{command}", json=payload).json()
            if not reply.get("ok"):
                raise SystemExit(f"{command} failed: {reply}")
            return reply["data"]

        def holders() -> dict[str, int]:
            counts: dict[str, int] = {}
            cursor = None
            while True:
                reply = http.post(
                    "/api/v1/commands/get-accounts",
                    json={"limit": 500, **({"cursor": cursor} if cursor else {})},
                ).json()
                if not reply.get("ok"):
                    return {}  # replicas restarting: nobody answers yet
                page = reply["data"]
                for a in page["items"]:
                    if a["connected"]:
                        counts[a["holder"]] = counts.get(a["holder"], 0) + 1
                cursor = page["nextCursor"]
                if cursor is None:
                    return counts

        def wait_all(deadline: float) -> dict[str, int]:
            while True:
                h = holders()
                if sum(h.values()) >= n:
                    return h
                if time.monotonic() > deadline:
                    raise SystemExit(f"not all connected in time: {h}")
                time.sleep(0.5)

        pids = {f"tg-session-{i}": stack.child("tg-session", i).process.pid for i in range(replicas)}
        time.sleep(2)
        base = {name: rss_mib(pid) for name, pid in pids.items()}
        cred = ok("get-api-credentials", {})["items"][0]
        ok("save-api-credential", {"id": cred["id"], "maxAccounts": max(1000, n), "test": False})
        t0 = time.monotonic()
        for phone, session in sessions:
            ok("add-account", {"phone": phone, "sessionString": session})
        out["import_seconds"] = round(time.monotonic() - t0, 1)
        first = wait_all(time.monotonic() + args.timeout)
        out["first_connect_seconds_from_first_import"] = round(time.monotonic() - t0, 1)
        time.sleep(3)
        per_replica: dict[str, Any] = {}
        for name, pid in pids.items():
            held = first.get(name, 0)
            rss = rss_mib(pid)
            per_replica[name] = {
                "held": held,
                "rss_before_mib": round(base[name], 1),
                "rss_with_accounts_mib": round(rss, 1),
                "kib_per_account": round((rss - base[name]) * 1024 / held, 1) if held else None,
            }
        out["per_replica"] = per_replica
        out["emulator_connections"] = emu.do(lambda: emu.emu.server.connection_count())
        # Cold start: both replicas restart with N accounts waiting for them.
        for i in range(replicas):
            stack.child("tg-session", i).process.terminate()
        t1 = time.monotonic()
        for i in range(replicas):
            stack.child("tg-session", i).process.start(wait=False)
        after = wait_all(time.monotonic() + args.timeout)
        out["time_to_connect_all_seconds"] = round(time.monotonic() - t1, 1)
        out["held_after_restart"] = after
        dup = emu.do(lambda: sum(1 for r in world.auth_keys.values() if r.revoked == "duplicated"))
        out["auth_key_duplicated"] = dup
    finally:
        stack.stop()
        emu.stop()
    width = max(len(k) for k in out) + 2
    lines = []
    for k, v in out.items():
        if isinstance(v, dict):
            v = json.dumps(v)
        lines.append(f"{k:<{width}}{v}")
    text = "\n".join(lines)
    print(text)
    (HERE / "last-run.txt").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
