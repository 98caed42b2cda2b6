"""bench/telemetry: what log shipping and performance sampling cost a service.

One service runtime on a real nats-server and database answers a trivial command that logs one INFO
record per call. A load generator in the same process drives it in alternating phases:
- "off": the shipper is detached from the root logger and the sampler's `observe` does nothing;
- "on":  the shipper ships every record (batches to TGM_TELEMETRY) and the sampler counts every call
  and publishes a sample every second (15x the default rate).
Phases alternate (off, on, off, on, ...) so drift in the machine's load falls on both alike.
Also prints the per-call cost of `observe` and of one shipped `log.info` measured in isolation.

It asserts nothing. Usage: python bench/telemetry/run.py [--seconds 5] [--rounds 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import uuid
from typing import Any

import nats
from pydantic import Field
from tgm_contracts import Service
from tgm_contracts.base import Request, Response
from tgm_runtime import RuntimeSettings, ServiceRuntime
from tgm_runtime.telemetry import LogShipper, Metrics, PerfSampler, TelemetrySettings
from tgm_testing.servers import MongoServer, NatsServer

SUBJECT = "bench.telemetry.echo"


class EchoRequest(Request):
    n: int = Field(ge=0)


class EchoResponse(Response):
    n: int


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def drive(nc: Any, seconds: float, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    body = json.dumps({"n": 1}).encode()

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            await nc.request(SUBJECT, body, timeout=10)
            latencies.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - t0), latencies


async def micro() -> None:
    n = 100_000
    sampler = PerfSampler(Service.AI, "r", "b", 15)
    t = time.perf_counter()
    for i in range(n):
        sampler.observe("echo", "command", (i % 50) / 1000)
    observe_us = (time.perf_counter() - t) / n * 1e6

    async def sink(subject: str, data: bytes, msg_id: str) -> None:
        return None

    from prometheus_client import CollectorRegistry

    lg = logging.getLogger("bench.micro")
    lg.propagate = False
    lg.setLevel(logging.INFO)
    t = time.perf_counter()
    for i in range(n):
        lg.info("job %d done for account %s", i, "acc-1")
    bare_us = (time.perf_counter() - t) / n * 1e6
    shipper = LogShipper(Service.AI, "r", "b", sink, Metrics(CollectorRegistry()), queue_size=n + 1)
    lg.addHandler(shipper)
    t = time.perf_counter()
    for i in range(n):
        lg.info("job %d done for account %s", i, "acc-1")
    shipped_us = (time.perf_counter() - t) / n * 1e6
    lg.removeHandler(shipper)
    t = time.perf_counter()
    await shipper.ship()
    ship_us = (time.perf_counter() - t) / n * 1e6
    print(f"isolated costs over {n:,} calls:")
    print(f"  sampler.observe               {observe_us:6.2f} us/call")
    print(f"  log.info, no handler          {bare_us:6.2f} us/record")
    print(f"  log.info into the shipper     {shipped_us:6.2f} us/record (format, redact, enqueue)")
    print(f"  batch encode (publish no-op)  {ship_us:6.2f} us/record")


async def main(seconds: float, rounds: int, concurrency: int) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        NatsServer(os.path.join(tmp, "nats")) as ns,
        MongoServer(os.path.join(tmp, "db")) as db,
    ):
        if True:  # one block for the servers' lifetime
            rt = ServiceRuntime(
                Service.AI,
                "bench",
                settings=RuntimeSettings(
                    nats_url=ns.url,
                    mongodb_uri=db.uri,
                    database_prefix=f"bench{uuid.uuid4().hex[:6]}_",
                    replica_id="ai-bench",
                ),
            )
            rt.telemetry.settings = TelemetrySettings(log_ship=True, perf_sample_seconds=1.0)
            handler_log = logging.getLogger("tgm.ai.bench")
            logging.getLogger().setLevel(logging.INFO)

            @rt.handler(SUBJECT, "echo", EchoRequest, EchoResponse, queue="bench")
            async def echo(req: EchoRequest, ctx: Any) -> EchoResponse:
                handler_log.info("echo %d for request %s", req.n, ctx.request_id)
                return EchoResponse(n=req.n)

            await rt.start()
            shipper = rt.telemetry.shipper
            assert shipper is not None
            observe = rt.perf.observe
            root = logging.getLogger()

            def switch(on: bool) -> None:
                if on:
                    root.addHandler(shipper)
                    rt.perf.observe = observe  # type: ignore[method-assign]
                else:
                    root.removeHandler(shipper)
                    rt.perf.observe = lambda *a, **k: None  # type: ignore[method-assign]

            nc = await nats.connect(ns.url)
            try:
                await drive(nc, 1.0, concurrency)  # warm up
                results: dict[str, list[tuple[float, list[float]]]] = {"off": [], "on": []}
                for _ in range(rounds):
                    for mode in ("off", "on"):
                        switch(mode == "on")
                        results[mode].append(await drive(nc, seconds, concurrency))
                switch(True)
                await shipper.ship()
                shipped = rt.telemetry.metrics.shipped.labels("log")._value.get()
                dropped = rt.telemetry.metrics.dropped.labels("log")._value.get()
                samples = rt.telemetry.metrics.shipped.labels("perf")._value.get()
            finally:
                await nc.close()
                await rt.stop()

    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, concurrency {concurrency}, ")
    print(f"{rounds} rounds of {seconds:g} s per mode, alternating; one INFO record logged per call\n")
    summary = {}
    for mode, runs in results.items():
        rps = [r for r, _ in runs]
        lat = [x for _, lats in runs for x in lats]
        summary[mode] = (statistics.mean(rps), pct(lat, 0.5), pct(lat, 0.99))
        print(
            f"telemetry {mode:3}: {summary[mode][0]:8.0f} calls/s (rounds: {', '.join(f'{r:.0f}' for r in rps)})"
            f"   p50 {summary[mode][1]:6.2f} ms   p99 {summary[mode][2]:6.2f} ms"
        )
    off, on = summary["off"], summary["on"]
    print(
        f"\noverhead: throughput {100 * (1 - on[0] / off[0]):+.1f} %, "
        f"p50 {on[1] - off[1]:+.3f} ms, p99 {on[2] - off[2]:+.3f} ms"
    )
    print(f"shipped {shipped:.0f} log records ({dropped:.0f} dropped) and {samples:.0f} perf samples\n")
    await micro()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()
    asyncio.run(main(args.seconds, args.rounds, args.concurrency))
