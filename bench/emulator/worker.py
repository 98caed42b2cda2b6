"""Bench client process: holds many Telethon connections to the emulator and sends on command.

Protocol (JSON lines): reads a job file given as argv[1]; prints {"event": "connected", ...} once
all clients are up; then reads commands from stdin: {"cmd": "send", "seconds": S} runs every
client's send loop for S seconds and prints {"event": "sent", "count": N, "errors": E};
{"cmd": "stop"} disconnects and exits.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from telethon.tl import types
from tg_emulator.client_support import make_client


async def _connect(job: dict, spec: dict, sem: asyncio.Semaphore):
    async with sem:
        client = make_client(job["host"], job["port"], spec["session"], connection_retries=5, timeout=30)
        await asyncio.wait_for(client.connect(), 60)
        await asyncio.wait_for(client.get_me(input_peer=True), 60)
        return client


async def _send_loop(client, peer, until: float, counts: list[int]) -> None:
    i = 0
    while time.monotonic() < until:
        try:
            await asyncio.wait_for(client.send_message(peer, f"bench {i}"), 30)
            counts[0] += 1
        except Exception:
            counts[1] += 1
            await asyncio.sleep(0.1)
        i += 1


async def main(path: str) -> None:
    job = json.loads(Path(path).read_text())
    sem = asyncio.Semaphore(job.get("connect_concurrency", 25))
    t0 = time.monotonic()
    results = await asyncio.gather(*(_connect(job, s, sem) for s in job["clients"]), return_exceptions=True)
    clients = [r for r in results if not isinstance(r, BaseException)]
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    print(
        json.dumps(
            {
                "event": "connected",
                "count": len(clients),
                "failed": len(failures),
                "errors": failures[:3],
                "seconds": round(time.monotonic() - t0, 2),
            }
        ),
        flush=True,
    )
    peers = [
        types.InputPeerUser(s["partner_id"], s["partner_hash"])
        for s, r in zip(job["clients"], results, strict=True)
        if not isinstance(r, BaseException)
    ]
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        if cmd["cmd"] == "send":
            counts = [0, 0]
            until = time.monotonic() + float(cmd["seconds"])
            senders = clients[: cmd.get("senders", len(clients))]
            await asyncio.gather(
                *(_send_loop(c, p, until, counts) for c, p in zip(senders, peers, strict=False))
            )
            print(json.dumps({"event": "sent", "count": counts[0], "errors": counts[1]}), flush=True)
        elif cmd["cmd"] == "stop":
            break
    await asyncio.gather(*(asyncio.wait_for(c.disconnect(), 10) for c in clients), return_exceptions=True)
    print(json.dumps({"event": "stopped"}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
