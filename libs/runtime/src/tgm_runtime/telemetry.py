"""Shipping logs and performance samples to analytics over the TGM_TELEMETRY stream.

- `LogShipper` is a logging handler on the root logger. `emit` only formats the record (with the same
  context and secret redaction as the JSON formatter of logs.py) and appends it to a bounded deque:
  no I/O, no lock held across anything slow, safe from any thread. When the deque is full the oldest
  record goes and `tgm_telemetry_dropped_total{kind="log"}` counts it. A task publishes the queue in
  batches every `TGM_LOG_SHIP_INTERVAL` seconds (1) or as soon as `TGM_LOG_SHIP_BATCH` (200) records
  wait. Records of the shipper's own logger, records logged while it publishes, and nats/faststream
  internals below WARNING are never shipped, so shipping cannot feed itself.
- `PerfSampler` is fed by the runtime's dispatch (commands, rpcs, account calls, sys ops) and event
  consumers: per operation a count, server-side errors, and a latency histogram over the fixed bounds of
  `tgm_contracts.telemetry.LATENCY_BOUNDS_MS`. Every `TGM_PERF_SAMPLE_SECONDS` (15; 0 turns sampling
  off) the period's figures and the service's own gauges (`runtime.perf.gauge(name, fn)`) are published
  as one `PerfSample` per replica.

Log shipping is on for the process whose logging `setup_logging` configured for this service (what
`runtime.run()` and the gateway's main do), or wherever `TGM_LOG_SHIP=true`; `TGM_LOG_SHIP=false`
turns it off. Several runtimes in one test process therefore do not each ship every record.
"""

from __future__ import annotations

import asyncio
import bisect
import contextvars
import inspect
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from tgm_contracts import Headers, Service, subjects
from tgm_contracts.telemetry import HISTOGRAM_SIZE, LATENCY_BOUNDS_MS, MAX_MESSAGE_CHARS, record_id

from .logs import ContextFilter, configured_service, redact, redact_value

log = logging.getLogger("tgm.telemetry")

Publish = Callable[[str, bytes, str], Awaitable[None]]

#: Loggers whose records below WARNING are transport chatter: shipping them would ship the shipping.
_INTERNAL = ("nats", "faststream", "tgm.telemetry", "asyncio", "pymongo")
#: Set while the shipper publishes: whatever the publish path logs from this task is not shipped.
_shipping: contextvars.ContextVar[bool] = contextvars.ContextVar("tgm_telemetry_shipping", default=False)

_LEVELS = ((logging.CRITICAL, "critical"), (logging.ERROR, "error"), (logging.WARNING, "warning"))
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {
        "message",
        "asctime",
        "taskName",
        "service",
        "replica",
        "request_id",
        "account_id",
        "trace_id",
        "_tgm_redacted",
    }
)
#: Bytes of records per published batch; stays well under the 1 MB default max_payload of nats-server.
_MAX_BATCH_BYTES = 512 * 1024


class TelemetrySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TGM_", extra="ignore")

    #: None: ship when setup_logging configured this process for this service.
    log_ship: bool | None = None
    log_ship_level: str = "INFO"
    log_ship_interval: float = Field(1.0, gt=0, le=60)
    log_ship_batch: int = Field(200, ge=1, le=1000)
    log_ship_queue: int = Field(10_000, ge=10, le=1_000_000)
    #: Seconds between performance samples; 0 turns sampling off.
    perf_sample_seconds: float = Field(15.0, ge=0, le=3600)


def level_name(levelno: int) -> str:
    for bound, name in _LEVELS:
        if levelno >= bound:
            return name
    return "info" if levelno >= logging.INFO else "debug"


def _field(key: str, value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact_value(key, value if isinstance(value, str) else str(value))[:2000]


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dropped = Counter(
            "tgm_telemetry_dropped_total",
            "Log records or perf samples dropped before shipping (queue full, unsendable)",
            ["kind"],
            registry=registry,
        )
        self.shipped = Counter(
            "tgm_telemetry_shipped_total", "Log records and perf samples shipped", ["kind"], registry=registry
        )
        self.failures = Counter(
            "tgm_telemetry_publish_failures_total",
            "Failed publishes to TGM_TELEMETRY (retried)",
            ["kind"],
            registry=registry,
        )


# --- logs ----------------------------------------------------------------------------------------


class LogShipper(logging.Handler):
    """Queues log records (as wire dicts) and publishes them in batches from a background task."""

    def __init__(
        self,
        service: Service,
        replica_id: str,
        boot_id: str,
        publish: Publish,
        metrics: Metrics,
        *,
        level: str | int = "INFO",
        batch: int = 200,
        interval: float = 1.0,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(level if isinstance(level, int) else logging.getLevelName(level.upper()))
        self.service, self.replica_id, self.boot_id = service, replica_id, boot_id
        self.subject = subjects.telemetry(service, "logs")
        self._publish = publish
        self.metrics = metrics
        self.batch, self.interval = batch, interval
        self.queue: deque[dict[str, Any]] = deque(maxlen=queue_size)
        self._context = ContextFilter(service.value, replica_id)
        self._seq = 0
        self._seq_lock = threading.Lock()
        self._dropped = 0  # since the last published batch
        self._pending: tuple[list[dict[str, Any]], int] | None = None  # a batch whose publish failed
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    # emit runs on the logging caller's thread: format, enqueue, maybe wake the task; nothing else.
    def emit(self, record: logging.LogRecord) -> None:
        if _shipping.get() or record.name.startswith("tgm.telemetry"):
            return
        if record.levelno < logging.WARNING and record.name.startswith(_INTERNAL):
            return
        try:
            item = self._item(record)
        except Exception:
            return  # a record that cannot be formatted is not worth a logging error here
        with self._seq_lock:
            item["seq"] = self._seq
            self._seq += 1
            if len(self.queue) == self.queue.maxlen:
                self._dropped += 1
                self.metrics.dropped.labels("log").inc()
            self.queue.append(item)
            full = len(self.queue) >= self.batch
        if full and self._loop is not None:
            if threading.get_ident() == self._loop_thread:
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)

    def _item(self, record: logging.LogRecord) -> dict[str, Any]:
        self._context.filter(record)  # request/account/trace ids from the context; redacts msg
        message = record.getMessage()  # the filter formatted and redacted it (args are None)
        if record.exc_info and record.exc_info[0] is not None:
            exc = record.exc_text or logging.Formatter().formatException(record.exc_info)
            message += "\n" + redact(exc)
        if record.stack_info:
            message += "\n" + redact(record.stack_info)
        extra = {k: _field(k, v) for k, v in record.__dict__.items() if k not in _STANDARD}
        return {
            "seq": 0,
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": level_name(record.levelno),
            "logger": record.name[:200],
            "message": message[:MAX_MESSAGE_CHARS],
            "accountId": getattr(record, "account_id", None),
            "requestId": getattr(record, "request_id", None),
            "traceId": getattr(record, "trace_id", None),
            "fields": extra,
        }

    # --- the publishing task --------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"tgm-log-shipper-{self.service.value}")

    async def _run(self) -> None:
        _shipping.set(True)  # this task's own context: what publishing logs is never shipped
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.ship()

    async def stop(self, timeout: float = 2.0) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        token = _shipping.set(True)
        try:
            await asyncio.wait_for(self.ship(), timeout)
        except (TimeoutError, Exception):
            pass
        finally:
            _shipping.reset(token)

    def _take(self) -> tuple[list[dict[str, Any]], int] | None:
        if self._pending is not None:
            return self._pending
        records: list[dict[str, Any]] = []
        size = 0
        with self._seq_lock:
            while self.queue and len(records) < self.batch and size < _MAX_BATCH_BYTES:
                item = self.queue.popleft()
                size += len(item["message"]) + 200
                records.append(item)
            dropped, self._dropped = self._dropped, 0
        return (records, dropped) if records or dropped else None

    async def ship(self) -> int:
        """Publish everything queued now; returns the records shipped. A failed batch is kept and
        re-sent first next time under the same Nats-Msg-Id (JetStream drops it if it had landed)."""
        shipped = 0
        while (taken := self._take()) is not None:
            records, dropped = taken
            batch = {
                "service": self.service.value,
                "replicaId": self.replica_id,
                "bootId": self.boot_id,
                "dropped": dropped,
                "records": records,
            }
            first = records[0]["seq"] if records else self._seq
            msg_id = f"logs{'' if records else '-dropped'}:" + record_id(self.replica_id, self.boot_id, first)
            token = _shipping.set(True)  # what the publish path logs is not queued (no feedback loop)
            try:
                await self._publish(self.subject, json.dumps(batch, default=str).encode(), msg_id)
            except Exception as exc:
                self._pending = taken
                self.metrics.failures.labels("log").inc()
                if not self._failing:
                    self._failing = True
                    log.warning("shipping logs failed (kept, will retry): %s", exc)
                return shipped
            finally:
                _shipping.reset(token)
            self._pending = None
            self._failing = False
            shipped += len(records)
            self.metrics.shipped.labels("log").inc(len(records))
        return shipped


# --- performance -------------------------------------------------------------------------------


class _Op:
    __slots__ = ("count", "errors", "hist", "max_ms", "sum_ms")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.sum_ms = 0.0
        self.max_ms = 0.0
        self.hist = [0] * HISTOGRAM_SIZE


Gauge = Callable[[], Any]


class PerfSampler:
    """Per-operation counts and latency histograms for the current period, plus service gauges."""

    def __init__(self, service: Service, replica_id: str, boot_id: str, interval: float) -> None:
        self.service, self.replica_id, self.boot_id = service, replica_id, boot_id
        self.interval = interval
        self._ops: dict[tuple[str, str], _Op] = {}
        self._gauges: dict[str, Gauge] = {}
        self._merge: dict[str, str] = {}
        self._seq = 0
        self._period_start = datetime.now(UTC)

    def observe(self, name: str, kind: str, seconds: float, error: bool = False) -> None:
        """Count one operation. Cheap: a dict lookup, a bisect over 28 bounds, a few additions."""
        op = self._ops.get((name, kind))
        if op is None:
            op = self._ops[(name, kind)] = _Op()
        ms = seconds * 1000.0
        op.count += 1
        op.errors += error
        op.sum_ms += ms
        if ms > op.max_ms:
            op.max_ms = ms
        op.hist[bisect.bisect_left(LATENCY_BOUNDS_MS, ms)] += 1

    def gauge(self, name: str, fn: Gauge, merge: str = "sum") -> None:
        """Report `fn()` (a number, None to skip; may be async) in every sample's figures as `name`.

        `merge` says how analytics combines replicas: "sum" for each replica's own part (accounts it
        holds), "max" for a fleet-wide value every replica reports alike (a shared queue's depth)."""
        if not name or len(name) > 100:
            raise ValueError("a gauge name has 1 to 100 characters")
        if merge not in ("sum", "max"):
            raise ValueError("merge is sum or max")
        self._gauges[name] = fn
        if merge != "sum":
            self._merge[name] = merge

    async def figures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, fn in self._gauges.items():
            try:
                value = fn()
                if inspect.isawaitable(value):
                    value = await asyncio.wait_for(value, 2.0)
                if value is not None:
                    out[name] = float(value)
            except Exception as exc:  # a broken gauge must not cost the sample
                log.debug("gauge %s failed: %s", name, exc)
        return out

    async def take(self, now: datetime | None = None) -> dict[str, Any]:
        """Close the current period and return it as a PerfSample wire dict."""
        now = now or datetime.now(UTC)
        ops, self._ops = self._ops, {}
        start, self._period_start = self._period_start, now
        seq, self._seq = self._seq, self._seq + 1
        return {
            "service": self.service.value,
            "replicaId": self.replica_id,
            "bootId": self.boot_id,
            "seq": seq,
            "periodStart": start.isoformat(),
            "periodEnd": now.isoformat(),
            "intervalSeconds": self.interval or 1.0,
            "operations": [
                {
                    "name": name[:200],
                    "kind": kind,
                    "count": op.count,
                    "errors": op.errors,
                    "sumMs": round(op.sum_ms, 3),
                    "maxMs": round(op.max_ms, 3),
                    "histogram": op.hist,
                }
                for (name, kind), op in ops.items()
            ][:2000],
            "figures": await self.figures(),
            "figureMerge": dict(self._merge),
        }


# --- the pair, as the runtime holds it ----------------------------------------------------------


class Telemetry:
    """The shipper and sampler of one runtime, started and stopped with it."""

    def __init__(
        self,
        service: Service,
        replica_id: str,
        registry: CollectorRegistry,
        settings: TelemetrySettings | None = None,
    ) -> None:
        self.service, self.replica_id = service, replica_id
        self.settings = settings or TelemetrySettings()
        self.boot_id = uuid.uuid4().hex[:12]
        self.metrics = Metrics(registry)
        self.perf = PerfSampler(service, replica_id, self.boot_id, self.settings.perf_sample_seconds)
        self.shipper: LogShipper | None = None
        self._publish: Publish | None = None
        self._perf_task: asyncio.Task[None] | None = None
        self._unsent: deque[tuple[str, bytes, str]] = deque(maxlen=40)  # samples a failed publish kept

    def ships_logs(self) -> bool:
        if self.settings.log_ship is not None:
            return self.settings.log_ship
        return configured_service() == self.service.value

    async def start(self, publish: Publish) -> None:
        self._publish = publish
        self.perf.interval = self.settings.perf_sample_seconds
        self.perf._period_start = datetime.now(UTC)
        if self.ships_logs() and self.shipper is None:
            s = self.settings
            self.shipper = LogShipper(
                self.service,
                self.replica_id,
                self.boot_id,
                publish,
                self.metrics,
                level=s.log_ship_level,
                batch=s.log_ship_batch,
                interval=s.log_ship_interval,
                queue_size=s.log_ship_queue,
            )
            self.shipper.start()
            logging.getLogger().addHandler(self.shipper)
        if self.settings.perf_sample_seconds > 0 and self._perf_task is None:
            self._perf_task = asyncio.create_task(self._sample_loop(), name="tgm-perf-sampler")

    async def _sample_loop(self) -> None:
        _shipping.set(True)
        while True:
            await asyncio.sleep(self.settings.perf_sample_seconds)  # the period itself, not a wait on I/O
            await self.publish_sample()

    async def publish_sample(self) -> bool:
        """Close the period and publish it (with any samples a failed publish kept); True if all went."""
        assert self._publish is not None
        sample = await self.perf.take()
        msg_id = "perf:" + record_id(self.replica_id, self.boot_id, sample["seq"])
        if len(self._unsent) == self._unsent.maxlen:
            self.metrics.dropped.labels("perf").inc()
        self._unsent.append((subjects.telemetry(self.service, "perf"), json.dumps(sample).encode(), msg_id))
        while self._unsent:
            subject, data, mid = self._unsent[0]
            try:
                await self._publish(subject, data, mid)
            except Exception as exc:
                self.metrics.failures.labels("perf").inc()
                log.debug("perf sample not published (kept): %s", exc)
                return False
            self._unsent.popleft()
            self.metrics.shipped.labels("perf").inc()
        return True

    async def stop(self) -> None:
        if self._perf_task is not None:
            self._perf_task.cancel()
            try:
                await self._perf_task
            except (asyncio.CancelledError, Exception):
                pass
            self._perf_task = None
            token = _shipping.set(True)
            try:  # the last partial period, so a stopping replica's work is not lost
                await asyncio.wait_for(self.publish_sample(), 2.0)
            except (TimeoutError, Exception):
                pass
            finally:
                _shipping.reset(token)
        if self.shipper is not None:
            logging.getLogger().removeHandler(self.shipper)
            await self.shipper.stop()
            self.shipper = None


def jetstream_publisher(js: Callable[[], Any], timeout: float = 5.0) -> Publish:
    """Publish with a JetStream ack (the stream stores it) and the dedupe id."""

    async def publish(subject: str, data: bytes, msg_id: str) -> None:
        await js().publish(subject, data, timeout=timeout, headers={Headers.MSG_ID: msg_id})

    return publish
