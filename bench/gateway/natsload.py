"""The raw reference's client: nats-py request/reply to the trivial responder at a fixed concurrency.

A process of its own (like wrk for the HTTP paths), so its CPU is not the servers'. Prints one JSON
line: {"requests", "seconds", "rps", "p50_ms", "p99_ms", "errors"}.
Usage: python natsload.py <nats-url> <subject> <concurrency> <seconds>
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import nats


async def main(url: str, subject: str, concurrency: int, seconds: float) -> None:
    nc = await nats.connect(url, inbox_prefix="_INBOX.gateway")  # the gateway's user reads only its inbox
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            try:
                await nc.request(subject, b"{}", timeout=10)
                latencies.append(time.perf_counter() - t)
            except Exception:
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    await nc.close()
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0

    print(
        json.dumps(
            {
                "requests": len(latencies),
                "seconds": elapsed,
                "rps": len(latencies) / elapsed,
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
                "errors": errors,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
