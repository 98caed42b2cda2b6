"""Log shipping and performance sampling (tgm_runtime.telemetry): batches, filters, the bounded queue,
redaction, no recursion; and the runtime publishing both to a real TGM_TELEMETRY stream."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import Field
from tgm_contracts import Service, streams, subjects
from tgm_contracts.base import Request, Response
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS, LogBatch, PerfSample
from tgm_runtime.telemetry import LogShipper, Metrics, PerfSampler, TelemetrySettings
from tgm_runtime.testing import bare_runtime

pytestmark = [pytest.mark.timeout(30)]

SESSION = "1BVtsOKABu" + "x7Qz" * 80  # what a Telethon session string looks like: long base64


class Sink:
    """A publish function that records what it was given and can fail or log on demand."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, str]] = []
        self.fail = False
        self.on_publish: Callable[[], None] | None = None
        self.changed = asyncio.Event()

    async def __call__(self, subject: str, data: bytes, msg_id: str) -> None:
        if self.on_publish:
            self.on_publish()
        if self.fail:
            raise ConnectionError("nats is down")
        self.sent.append((subject, data, msg_id))
        self.changed.set()

    def batches(self) -> list[LogBatch]:
        return [LogBatch.model_validate_json(d) for _, d, _ in self.sent]

    def records(self) -> list[Any]:
        return [r for b in self.batches() for r in b.records]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


def make_shipper(sink: Sink, **kw: Any) -> tuple[LogShipper, logging.Logger, Metrics]:
    metrics = Metrics(CollectorRegistry())
    shipper = LogShipper(Service.CAMPAIGN, "r1", "boot1", sink, metrics, **kw)
    logger = logging.getLogger(f"tgmtest.{uuid.uuid4().hex[:6]}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(shipper)
    return shipper, logger, metrics


def dropped(metrics: Metrics) -> float:
    return metrics.dropped.labels("log")._value.get()


@pytest.mark.unit
async def test_records_ship_in_batches_with_context_and_order() -> None:
    sink = Sink()
    shipper, logger, _ = make_shipper(sink, batch=200, interval=60)
    for i in range(450):
        logger.info("job %d done", i, extra={"job": i, "peer": "@someone"})
    logger.debug("not shipped at the default INFO level")
    assert await shipper.ship() == 450
    batches = sink.batches()
    assert [len(b.records) for b in batches] == [200, 200, 50]
    assert {s for s, _, _ in sink.sent} == {subjects.telemetry(Service.CAMPAIGN, "logs")}
    assert len({m for _, _, m in sink.sent}) == 3  # one dedupe id per batch
    records = sink.records()
    assert [r.seq for r in records] == list(range(450))
    assert records[7].message == "job 7 done" and records[7].level == "info"
    assert records[7].fields == {"job": 7, "peer": "@someone"}
    assert batches[0].service is Service.CAMPAIGN and batches[0].replica_id == "r1"
    assert batches[0].id_of(records[0]) == "r1:boot1:0"


@pytest.mark.unit
async def test_a_full_batch_is_published_without_waiting_for_the_interval() -> None:
    sink = Sink()
    shipper, logger, _ = make_shipper(sink, batch=50, interval=60)
    shipper.start()
    try:
        for i in range(50):
            logger.warning("w%d", i)
        await sink.wait(lambda: len(sink.records()) == 50)
        # And from another thread (e.g. a library's worker): the loop is woken thread-safely.
        t = threading.Thread(target=lambda: [logger.error("from a thread %d", i) for i in range(50)])
        t.start()
        t.join()
        await sink.wait(lambda: len(sink.records()) == 100)
    finally:
        await shipper.stop()
    assert {r.level for r in sink.records()} == {"warning", "error"}


@pytest.mark.unit
async def test_the_interval_ships_a_partial_batch() -> None:
    sink = Sink()
    shipper, logger, _ = make_shipper(sink, batch=200, interval=0.05)
    shipper.start()
    try:
        logger.info("alone")
        await sink.wait(lambda: len(sink.records()) == 1)
    finally:
        await shipper.stop()


@pytest.mark.unit
async def test_internal_and_own_records_are_not_shipped_and_publishing_never_recurses() -> None:
    sink = Sink()
    shipper, _, _ = make_shipper(sink, batch=200, interval=60)
    root_like = [logging.getLogger(n) for n in ("nats.aio.client", "faststream.access", "tgm.telemetry")]
    for lg in root_like:
        lg.addHandler(shipper)
    chatty = logging.getLogger("tgmtest.chatty")
    chatty.propagate = False
    chatty.setLevel(logging.DEBUG)
    chatty.addHandler(shipper)
    try:
        logging.getLogger("nats.aio.client").info("reconnecting")  # transport chatter: not shipped
        logging.getLogger("faststream.access").info("received message")
        logging.getLogger("nats.aio.client").error("connection lost")  # a real problem: shipped
        logging.getLogger("tgm.telemetry").error("the shipper's own error")  # never shipped
        # Whatever the publish path logs (a client library warning about the publish) is not queued.
        sink.on_publish = lambda: chatty.warning("publish is slow")
        chatty.info("first")
        assert await shipper.ship() == 2
        assert [r.message for r in sink.records()] == ["connection lost", "first"]
        assert not shipper.queue
        # A failing publish keeps the batch, logs once (not shipped), and re-sends it with the same id.
        sink.fail = True
        chatty.info("second")
        assert await shipper.ship() == 0
        assert await shipper.ship() == 0
        assert len(shipper.queue) == 0 and shipper._pending is not None
        sink.fail = False
        sink.on_publish = None
        assert await shipper.ship() == 1
        assert [r.message for r in sink.records()] == ["connection lost", "first", "second"]
    finally:
        for lg in [*root_like, chatty]:
            lg.removeHandler(shipper)


@pytest.mark.unit
async def test_a_full_queue_drops_the_oldest_and_counts_them() -> None:
    sink = Sink()
    shipper, logger, metrics = make_shipper(sink, batch=200, interval=60, queue_size=10)
    for i in range(25):
        logger.info("r%d", i)
    assert len(shipper.queue) == 10 and dropped(metrics) == 15
    await shipper.ship()
    [batch] = sink.batches()
    assert batch.dropped == 15
    assert [r.message for r in batch.records] == [f"r{i}" for i in range(15, 25)]


@pytest.mark.unit
async def test_secrets_logged_by_mistake_never_reach_the_stream() -> None:
    sink = Sink()
    shipper, logger, _ = make_shipper(sink, batch=200, interval=60)
    logger.info("login with apiHash=%s", "0123456789abcdef0123")
    logger.info("payload %s", {"apiHash": "feedfacefeedface", "phone": "+15550001"})
    logger.info('{"password": "hunter2hunter2"}')
    logger.info("session is %s", SESSION)
    logger.warning("proxy", extra={"proxy_password": "pr0xyPass", "note": "token=tok-abcdef123"})
    try:
        raise RuntimeError("failed with api_key=sk-live-123456")
    except RuntimeError:
        logger.exception("call failed")
    await shipper.ship()
    wire = b"".join(d for _, d, _ in sink.sent).decode()
    for secret in (
        "0123456789abcdef0123",
        "feedfacefeedface",
        "hunter2hunter2",
        SESSION[:40],
        "pr0xyPass",
        "tok-abcdef123",
        "sk-live-123456",
    ):
        assert secret not in wire, secret
    records = sink.records()
    assert len(records) == 6 and "+15550001" in records[1].message  # only secrets are hidden
    assert "Traceback" in records[5].message and records[5].level == "error"


def _sampler() -> PerfSampler:
    return PerfSampler(Service.AI, "r9", "b9", 15)


@pytest.mark.unit
async def test_the_sampler_counts_operations_into_the_fixed_histogram() -> None:
    sampler = _sampler()
    for ms in (0.2, 0.5, 0.6, 4, 4, 120, 90_000):
        sampler.observe("add-knowledge", "command", ms / 1000)
    sampler.observe("add-knowledge", "command", 0.010, error=True)
    sampler.observe("ai.reply-requested@replies", "event", 0.003)
    sampler.gauge("queue_depth", lambda: 7, merge="max")

    async def tokens() -> int:
        return 1234

    sampler.gauge("ai_tokens", tokens)
    sampler.gauge("broken", lambda: 1 / 0)
    sampler.gauge("unknown", lambda: None)
    raw = await sampler.take()
    sample = PerfSample.model_validate(raw)  # the wire contract accepts it
    assert sample.seq == 0 and sample.figures == {"queue_depth": 7.0, "ai_tokens": 1234.0}
    assert sample.figure_merge == {"queue_depth": "max"}
    with pytest.raises(ValueError):
        sampler.gauge("x", lambda: 1, merge="avg")
    ops = {(o.name, o.kind): o for o in sample.operations}
    cmd = ops[("add-knowledge", "command")]
    assert cmd.count == 8 and cmd.errors == 1 and cmd.max_ms == 90_000
    assert len(cmd.histogram) == HISTOGRAM_SIZE
    assert cmd.histogram[0] == 2  # 0.2 and 0.5 (bounds are inclusive)
    assert cmd.histogram[LATENCY_BOUNDS_MS.index(1)] == 1  # 0.6
    assert cmd.histogram[LATENCY_BOUNDS_MS.index(5)] == 2
    assert cmd.histogram[LATENCY_BOUNDS_MS.index(10)] == 1
    assert cmd.histogram[LATENCY_BOUNDS_MS.index(150)] == 1
    assert cmd.histogram[-1] == 1  # slower than the last bound
    # The next period starts empty.
    nxt = PerfSample.model_validate(await sampler.take())
    assert nxt.seq == 1 and nxt.operations == [] and nxt.period_start == sample.period_end


class EchoRequest(Request):
    text: str = Field(min_length=1, max_length=10)


class EchoResponse(Response):
    text: str


@pytest.mark.integration
async def test_a_runtime_ships_its_logs_and_samples_to_the_stream(
    nats_server: Any, mongo_server: Any
) -> None:
    import nats

    rt = bare_runtime(Service.AI, nats_url=nats_server.url, mongo_uri=mongo_server.uri, tag="tel")
    rt.telemetry.settings = TelemetrySettings(log_ship=True, log_ship_interval=0.1, perf_sample_seconds=0.2)
    seen = logging.getLogger("tgm.ai.telemetry-test")

    @rt.handler(f"test.{rt.settings.replica_id}.echo", "echo", EchoRequest, EchoResponse)
    async def echo(req: EchoRequest, ctx: Any) -> EchoResponse:
        if req.text == "boom":
            raise RuntimeError("broken")
        seen.warning("echoing %s with password=%s", req.text, "sw0rdfish")
        return EchoResponse(text=req.text)

    await rt.start()
    nc = await nats.connect(nats_server.url)
    try:
        for text in ("a", "b", "boom"):
            await nc.request(f"test.{rt.settings.replica_id}.echo", json.dumps({"text": text}).encode(), 5)
        js = nc.jetstream()
        info = await js.stream_info(streams.TELEMETRY_STREAM.name)
        assert info.config.subjects == [subjects.TELEMETRY_FILTER]
        sub = await js.subscribe("tgm.ai.telemetry.>", ordered_consumer=True)
        messages: list[str] = []
        echoed = 0
        ops: dict[str, Any] = {}

        async def collect() -> None:
            nonlocal echoed
            while echoed < 2 or ops.get("echo", {}).get("count", 0) < 3:
                msg = await sub.next_msg(timeout=5)
                body = json.loads(msg.data)
                if msg.subject.endswith(".logs.v1"):
                    batch = LogBatch.model_validate(body)
                    for r in batch.records:
                        messages.append(r.message)
                        echoed += r.message.startswith("echoing")
                else:
                    sample = PerfSample.model_validate(body)
                    if sample.replica_id == rt.settings.replica_id:
                        for op in sample.operations:
                            agg = ops.setdefault(op.name, {"count": 0, "errors": 0, "kind": op.kind})
                            agg["count"] += op.count
                            agg["errors"] += op.errors

        await asyncio.wait_for(collect(), 20)
        assert ops["echo"] == {"count": 3, "errors": 1, "kind": "rpc"}
        assert any(m.startswith("handler echo failed: broken") for m in messages)
        assert not any("sw0rdfish" in m for m in messages)
    finally:
        await nc.close()
        await rt.stop()
        assert rt.telemetry.shipper is None
        assert not any(isinstance(h, LogShipper) for h in logging.getLogger().handlers)
