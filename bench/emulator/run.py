"""Benchmark the Telegram emulator: connections held, memory per connection, messages per second.

Starts ``tg-emulator serve`` as its own process, seeds N users through the admin API, gives each a
logged-in session, spreads N real Telethon clients over a few worker processes, and measures:

- connections held (the server's count, checked again after a hold period),
- memory per connection: (server RSS with N clients - RSS before any client) / N,
- messages per second through the server: every client sends private messages to a partner for
  a fixed time; the rate is the server's delivery-log growth over that time.

Bounded: every phase has a timeout and the whole run is capped (``--max-seconds``); all child
processes are killed on the way out. Usage: ``python bench/emulator/run.py [--clients 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

HERE = Path(__file__).resolve().parent


async def _read_json_line(stream, timeout: float) -> dict:
    while True:
        line = await asyncio.wait_for(stream.readline(), timeout)
        if not line:
            raise RuntimeError("worker exited early")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue  # stray library output


async def bench(args: argparse.Namespace) -> dict:
    procs: list[asyncio.subprocess.Process] = []
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tg_emulator.cli",
        "serve",
        "--port",
        "0",
        "--admin-port",
        "0",
        "--devsite-port",
        "0",
        "--unlimited",
        "--log-level",
        "WARNING",
        stdout=asyncio.subprocess.PIPE,
    )
    procs.append(server)
    try:
        line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
        fields = dict(p.split("=") for p in line.split()[2:])
        port, admin = int(fields["port"]), int(fields["admin_port"])
        base = f"http://127.0.0.1:{admin}"
        sproc = psutil.Process(server.pid)
        n = args.clients
        async with aiohttp.ClientSession() as http:
            users = [{"phone": f"+1888{i:07d}", "first_name": f"Bench{i}"} for i in range(n)]
            seeded = await (await http.post(f"{base}/world/seed", json={"users": users})).json()
            ids = seeded["users"]
            all_users = {u["id"]: u for u in await (await http.get(f"{base}/users")).json()}
            sessions = []
            for uid in ids:
                r = await http.post(f"{base}/users/{uid}/sessions")
                sessions.append((await r.json())["session"])
            await asyncio.sleep(0.5)
            rss_base = sproc.memory_info().rss

            # Pair clients up: i talks to i^1.
            specs = []
            for i in range(n):
                partner = ids[i ^ 1] if (i ^ 1) < n else ids[0]
                specs.append(
                    {
                        "session": sessions[i],
                        "partner_id": partner,
                        "partner_hash": all_users[partner]["access_hash"],
                    }
                )
            per = -(-n // args.workers)
            tmp = tempfile.mkdtemp(prefix="tgemu-bench-")
            workers = []
            t_connect = time.monotonic()
            for k in range(args.workers):
                chunk = specs[k * per : (k + 1) * per]
                if not chunk:
                    continue
                path = os.path.join(tmp, f"job{k}.json")
                Path(path).write_text(json.dumps({"host": "127.0.0.1", "port": port, "clients": chunk}))
                proc = await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(HERE / "worker.py"),
                    path,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                procs.append(proc)
                workers.append(proc)
            connected = [await _read_json_line(p.stdout, args.phase_timeout) for p in workers]
            connect_seconds = time.monotonic() - t_connect
            held = sum(c["count"] for c in connected)
            failed = sum(c["failed"] for c in connected)
            errors = [e for c in connected for e in c["errors"]][:3]

            await asyncio.sleep(args.hold)
            summary = await (await http.get(f"{base}/world")).json()
            rss_conn = sproc.memory_info().rss
            conns_after_hold = summary["connections"]

            before = summary["deliveries"]
            for p in workers:
                p.stdin.write(json.dumps({"cmd": "send", "seconds": args.send_seconds}).encode() + b"\n")
                await p.stdin.drain()
            cpu0 = sproc.cpu_times()
            t0 = time.monotonic()
            sent = [await _read_json_line(p.stdout, args.send_seconds + args.phase_timeout) for p in workers]
            elapsed = time.monotonic() - t0
            cpu1 = sproc.cpu_times()
            after = (await (await http.get(f"{base}/world")).json())["deliveries"]
            delivered = after - before
            for p in workers:
                p.stdin.write(b'{"cmd": "stop"}\n')
                await p.stdin.drain()
            await asyncio.gather(*(asyncio.wait_for(p.wait(), 60) for p in workers), return_exceptions=True)
        server_cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return {
            "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
            f"{round(psutil.virtual_memory().total / 2**30, 1)} GiB RAM, Python {platform.python_version()}",
            "clients_requested": n,
            "worker_processes": len(workers),
            "connections_held": held,
            "connect_failures": failed,
            "connect_errors": errors,
            "connect_seconds": round(connect_seconds, 1),
            "server_connections_after_hold": conns_after_hold,
            "hold_seconds": args.hold,
            "server_rss_before_mib": round(rss_base / 2**20, 1),
            "server_rss_with_clients_mib": round(rss_conn / 2**20, 1),
            "memory_per_connection_kib": round((rss_conn - rss_base) / max(1, held) / 1024, 1),
            "send_seconds": round(elapsed, 1),
            "messages_sent_by_clients": sum(s["count"] for s in sent),
            "send_errors": sum(s["errors"] for s in sent),
            "messages_delivered": delivered,
            "messages_per_second": round(delivered / elapsed, 1),
            "server_cpu_share_during_send": round(server_cpu / elapsed, 2),
        }
    finally:
        for p in procs:
            if p.returncode is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        await asyncio.gather(*(p.wait() for p in procs), return_exceptions=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4, help="client processes")
    ap.add_argument("--hold", type=float, default=10.0, help="seconds to hold all connections")
    ap.add_argument("--send-seconds", type=float, default=15.0)
    ap.add_argument("--phase-timeout", type=float, default=240.0)
    ap.add_argument("--max-seconds", type=float, default=600.0, help="hard cap on the whole run")
    ap.add_argument("--json", action="store_true", help="print only the JSON result")
    args = ap.parse_args()
    try:
        result = asyncio.run(asyncio.wait_for(bench(args), args.max_seconds))
    except TimeoutError:
        print("bench: gave up after --max-seconds", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
        return 0
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k.ljust(width)}  {v}")
    return 0 if result["connections_held"] == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
