"""bench/gateway: a cheap read command end to end (HTTP -> gateway -> NATS -> service -> back)
against a raw nats-py request/reply to a trivial responder, in one run on the embedded stack.

Prints throughput at a fixed concurrency, p50/p99 latency for both paths, and their ratio.
It asserts nothing. Usage: python bench/gateway/run.py [--seconds 10] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import nats
from tgm_stack import Stack

HERE = Path(__file__).resolve().parent
RAW_SUBJECT = "bench.echo"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def drive(
    op: Callable[[], Awaitable[None]], seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                await op()
                latencies.append(time.perf_counter() - t)
            except Exception as exc:
                key = str(exc)[:80]
                errors[key] = errors.get(key, 0) + 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    if errors:
        print(f"  errors: {errors}")
    return len(latencies) / elapsed, latencies


async def bench(stack: Stack, command: str, seconds: float, concurrency: int) -> None:
    headers = {"authorization": f"Bearer {stack.admin_key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=headers, limits=limits, timeout=30
    ) as http:
        first = await http.post(f"/api/v1/commands/{command}", json={})
        assert first.status_code == 200, first.text

        async def via_gateway() -> None:
            r = await http.post(f"/api/v1/commands/{command}", json={})
            if r.status_code != 200:
                raise RuntimeError(r.text)

        await drive(via_gateway, 1.0, concurrency)  # warm-up
        gw_rps, gw_lat = await drive(via_gateway, seconds, concurrency)

    nc = await nats.connect(stack.nats_url)

    async def via_nats() -> None:
        await nc.request(RAW_SUBJECT, b"{}", timeout=10)

    await drive(via_nats, 1.0, concurrency)
    raw_rps, raw_lat = await drive(via_nats, seconds, concurrency)
    await nc.close()

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"concurrency {concurrency}, {seconds:g} s per path, command {command!r}\n")
    print(f"{'path':<44}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(
        f"{'HTTP -> gateway -> NATS -> service -> back':<44}{gw_rps:>10.0f}{pct(gw_lat, 0.5):>10.2f}{pct(gw_lat, 0.99):>10.2f}"
    )
    print(
        f"{'raw nats-py request/reply (trivial responder)':<44}{raw_rps:>10.0f}{pct(raw_lat, 0.5):>10.2f}{pct(raw_lat, 0.99):>10.2f}"
    )
    print(
        f"\nratio gateway/raw: throughput {gw_rps / raw_rps:.3f}, "
        f"p50 latency x{statistics.median(gw_lat) / statistics.median(raw_lat):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--command", default="get-ai-models", help="a cheap read served by a backend service")
    args = parser.parse_args()
    # The per-key rate limit protects a fleet from a runaway script; the bench measures the path itself.
    env = {"TGM_GATEWAY_KEY_RATE_PER_SECOND": "1000000", "TGM_GATEWAY_KEY_RATE_BURST": "1000000"}
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(Path(tmp) / "data", gateway_port=0, extra_env=env) as stack,
    ):
        # The trivial responder is a process of its own, like the service on the other path.
        responder = subprocess.Popen(
            [sys.executable, str(HERE / "responder.py"), stack.nats_url, RAW_SUBJECT],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
            asyncio.run(bench(stack, args.command, args.seconds, args.concurrency))
        finally:
            responder.terminate()
            responder.wait(10)


if __name__ == "__main__":
    main()
