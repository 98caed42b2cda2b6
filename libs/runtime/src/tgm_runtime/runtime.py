"""ServiceRuntime: what every service is made of.

It owns the FastStream NATS broker (with Prometheus and OpenTelemetry middleware), the service's own
MongoDB database, numbered migrations, the `sys` protocol the gateway fans out to, the owned settings
sections, secrets, event publishing, and the health/metrics HTTP side.

How a service is put together (docs/CONVENTIONS.md): its `bootstrap.build()` makes a
`ServiceRuntime[XApp]`, hands it the factory of its frozen `XApp` dataclass of use cases
(`runtime.provide`), and each domain's `handlers.register(runtime)` declares handlers with
`@runtime.command(Cmd)`; a handler reaches its use cases typed, as `ctx.app.<use case>`. The app is built
at start, once the database is there. Background work goes through `runtime.every` / `runtime.spawn`
and best-effort events through `runtime.emit`, so every service stops and fails the same way.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
import logging
import os
import signal
import time
import traceback
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Hashable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson
from faststream.nats import NatsBroker, NatsMessage
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel, ValidationError
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts import (
    HTTP_STATUS,
    REGISTRY,
    AccountRpc,
    Command,
    ErrorCode,
    Event,
    Headers,
    Role,
    Rpc,
    Service,
    bus,
    invalid_payload_message,
    streams,
    subjects,
    validation_details,
)
from tgm_contracts import envelope as env
from tgm_contracts import sys as sysops

from . import backup, compat
from .busauth import BusAuth, decode_bus_key, derive_bus_key
from .config import RuntimeSettings
from .consumer_lag import SAMPLE_SECONDS as LAG_SAMPLE_SECONDS
from .consumer_lag import ConsumerLag
from .counts import WriteWatch
from .errors import DomainError, Invalid
from .logs import request_id_var, setup_logging
from .migrations import Migration, MigrationRunner
from .replicas import ReplicatedBroker, ensure_replicas
from .secrets import SecretBox, decode_key, load_or_create_key_file, new_key_text
from .settings_store import SettingsStore
from .single_flight import SingleFlight
from .tasks import BackgroundTasks, Periodic, Seconds
from .telemetry import Telemetry, jetstream_publisher

log = logging.getLogger("tgm.runtime")
compat.patch()

#: The longest wait before an event whose handler failed is delivered again.
EVENT_RETRY_MAX_SECONDS = 60.0


def _current(broker: NatsBroker) -> NatsMessage:
    """The message FastStream is delivering to the endpoint that runs now.

    Endpoints take no parameters and read it here: a parameter `msg: NatsMessage` is FastStream's
    `Context("message")`, a custom field fast_depends resolves by running its sync `use` in anyio's
    worker thread — one thread hop per delivery of every command and event (bench/automation's
    profile of campaign at 200 events/s: 4.5 s of 72, the GIL handed back and forth). The
    context variable it would have read is this one."""
    msg: NatsMessage = broker.context.get_local("message")
    return msg


_COMMANDS_BY_SUBJECT: dict[str, type[Command]] = {}


def _command_at(subject: str) -> type[Command] | None:
    """The catalogue command served at `subject`, if it is one."""
    if not _COMMANDS_BY_SUBJECT:
        for name in REGISTRY.names():
            cmd = REGISTRY.get(name)
            if cmd is not None:
                _COMMANDS_BY_SUBJECT[cmd.SUBJECT] = cmd
    return _COMMANDS_BY_SUBJECT.get(subject)


def _deliveries(msg: NatsMessage) -> int:
    """How many times JetStream has delivered this message (0 when it cannot tell)."""
    try:
        return int(msg.raw_message.metadata.num_delivered)
    except Exception:
        return 0


H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")
#: The service's frozen dataclass of use cases (`CampaignApp`, …), built by the factory given to `provide`.
AppT = TypeVar("AppT")
ReqT = TypeVar("ReqT")
#: Outcomes the performance sample counts as errors: failures on the server side, not refused input.
_SERVER_ERRORS = frozenset(code.value for code, status in HTTP_STATUS.items() if status >= 500)
CountsFn = Callable[[AsyncDatabase[Any]], Awaitable[dict[str, int]]]
#: What `on_event` handlers take and what their `order_by` reads: any declared event.
EventHandler = Callable[[Any], Awaitable[None]]
OrderKey = Callable[[Any], Hashable | None]


def settle_heap() -> None:
    """Once a process has started: collect, then move everything alive (modules, contracts, the
    broker, the app and its caches as loaded) into the collector's permanent generation, so that a
    full collection during load scans only what was made since. Measured on campaign under
    bench/automation/decision.py (200 messages/s, 2 cores): without it, 4 full collections in 20 s
    of load took 23-146 ms each over ~197,000 objects, stalling the event loop and every message in
    flight; that was the p99. Processes only (`serve`): in-process tests start many runtimes."""
    gc.collect()
    gc.freeze()


class _KeyedLocks:
    """One FIFO lock per key, dropped when nobody holds or waits for it (so the table stays small)."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class _EventHandler:
    name: str
    fn: EventHandler
    op: str
    order_by: OrderKey | None
    locks: _KeyedLocks = field(default_factory=_KeyedLocks)


@dataclass
class _SharedConsumer:
    """The handlers of one event type that `on_event` collected, served by one durable consumer."""

    event: type[Event]
    handlers: list[_EventHandler] = field(default_factory=list)
    max_workers: int = 1
    declared: bool = False


class CallContext(Generic[AppT]):
    """What a handler knows about the call besides its payload; `app` is the service's use cases."""

    __slots__ = ("principal", "request_id", "role", "runtime", "subject")

    def __init__(
        self, runtime: ServiceRuntime[AppT], headers: Mapping[str, str] | None, subject: str = ""
    ) -> None:
        headers = headers or {}
        self.runtime = runtime
        self.subject = subject
        self.request_id: str | None = headers.get(Headers.REQUEST_ID)
        self.principal: str | None = headers.get(Headers.PRINCIPAL)
        self.role: str | None = headers.get(Headers.ROLE)

    @property
    def app(self) -> AppT:
        return self.runtime.app


def _decode(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"payload is not valid JSON: {exc}") from None


def _model(result: Any, response: type[BaseModel]) -> BaseModel:
    """The handler's result as the contract's response model (validated once: a model of the
    response type is taken as it is)."""
    if isinstance(result, response):
        return result
    if isinstance(result, BaseModel):
        return response.model_validate(result.model_dump())
    return response.model_validate(result)


def _ok_bytes(model: BaseModel) -> bytes:
    """`{"ok":true,"data":…}` written straight from the model (no dict in between)."""
    return b'{"ok":true,"data":' + model.__pydantic_serializer__.to_json(model, by_alias=True) + b"}"


def fit_reply(name: str, reply: bytes, limit: int | None) -> bytes:
    """`reply`, or, when it is larger than the bus carries (`limit`: the connection's NATS
    max_payload), an error envelope naming the limit: NATS refuses to send an oversized message,
    and the caller would otherwise wait for an answer that never comes until its deadline."""
    if not limit or len(reply) <= limit:
        return reply
    log.warning("answer of %s is %d bytes, over the bus limit of %d bytes", name, len(reply), limit)
    return orjson.dumps(
        env.error(
            ErrorCode.VALIDATION_ERROR,
            f"the answer of {name} is {len(reply)} bytes, over the bus limit of {limit} bytes "
            "(NATS max_payload): ask for less (a smaller page, range or limit)",
            {"size": len(reply), "limit": limit},
        )
    )


#: How old the `counts` in a `sys.info` answer (get-service-info, get-system-info) may be, in seconds.
#: analytics' service probe asks every service for its info every few seconds, and a count on the
#: embedded database scans its collection: with 10,000 accounts tg-session's four counts took 250-325
#: ms of the database's time every 5 s (measured with its profiler, 2026-12-07), and the account
#: pages read meanwhile waited behind them. The figures are for a status screen, so a minute is fine.
COUNTS_MAX_AGE = 60.0


class ServiceRuntime(Generic[AppT]):
    def __init__(
        self,
        service: Service,
        version: str,
        *,
        migrations: list[Migration] | None = None,
        counts: CountsFn | None = None,
        settings: RuntimeSettings | None = None,
    ) -> None:
        self.service = service
        self.version = version
        self.settings = settings or RuntimeSettings()
        self.migrations = migrations or []
        self._counts = counts
        self._counts_kept: tuple[float, dict[str, int]] | None = None
        self._counts_flight = SingleFlight()
        self._app: AppT | None = None
        self._app_factory: Callable[[], Awaitable[AppT]] | None = None
        # (command, use case, whether it takes the principal too): checked against the app at start
        self._bindings: list[
            tuple[type[Command] | type[Rpc], Callable[[AppT], Callable[..., Any]], bool]
        ] = []
        self.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._start_hooks: list[Callable[[ServiceRuntime], Awaitable[None]]] = []
        self._stop_hooks: list[Callable[[ServiceRuntime], Awaitable[None]]] = []
        self._restore_hooks: list[Callable[[ServiceRuntime], Awaitable[None]]] = []
        self._stop = asyncio.Event()
        self._ready = False
        self._shared: dict[type[Event], _SharedConsumer] = {}
        self.registry = CollectorRegistry()
        self.handled = Counter(
            "tgm_commands_total",
            "Commands handled, by command and outcome",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tgm_command_seconds", "Command handling time", ["command"], registry=self.registry
        )
        # Logs and performance samples shipped to analytics (telemetry.py); services add gauges with
        # `runtime.perf.gauge(name, fn)` and time their own operations with `runtime.perf.observe`.
        self.telemetry = Telemetry(service, self.settings.replica_id, self.registry)
        self.perf = self.telemetry.perf
        self.tasks = BackgroundTasks(self.registry)
        self.emit_failures = Counter(
            "tgm_events_emit_failed_total",
            "Best-effort events (runtime.emit) that could not be published, by event",
            ["event"],
            registry=self.registry,
        )
        # FastStream's per-message middleware (measured in bench/gateway, issue 16): the OpenTelemetry
        # one only when spans go somewhere (an OTLP endpoint; it is what carries `traceparent` into
        # handlers and out of publishes), the Prometheus one always (faststream_* in deploy/METRICS.md).
        middlewares: list[Any] = []
        if self.settings.otlp_endpoint:
            middlewares.append(NatsTelemetryMiddleware())
        middlewares.append(NatsPrometheusMiddleware(registry=self.registry, app_name=service.value))
        # Every server of a cluster, so the connection fails over to another when its server goes.
        self.broker = ReplicatedBroker(
            self.settings.nats_servers,
            name=f"{service.value}:{self.settings.replica_id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            graceful_timeout=15.0,
            # Replies and push deliveries to this service arrive under its own inbox prefix: its NATS user
            # may read only `_INBOX.<service>.>` (tgm_contracts.bus), not every reply on the bus.
            inbox_prefix=bus.inbox_prefix(service),
            middlewares=middlewares,
            log_level=logging.DEBUG,
        )
        self.broker.js_replicas = self.settings.js_replicas
        #: The reply prefix of this service's pull consumers' fetches: FastStream's subscriber defaults to
        #: `_INBOX.`, which its NATS user may not read; pass it as `inbox_prefix=` to every pull subscriber.
        self.pull_inbox = (bus.inbox_prefix(service) + ".").encode()
        self.mongo: AsyncMongoClient[Any] | None = None
        self.db: AsyncDatabase[Any] = None  # type: ignore[assignment]  # set in start()
        self.secrets = self._secret_box()
        #: Signs the commands this service runs of others and checks the signature on those it serves.
        self.bus_auth = self._bus_auth()
        #: How far this service's durable consumers are behind their streams, sampled while started
        #: (consumer_lag.py: the dashboard's bus panels in every deployment, with or without an exporter).
        self.consumer_lag = ConsumerLag(
            self.registry,
            f"{service.value.replace('-', '_')}_",
            lambda: self.js if self._bus_connected else None,
            [s.name for s in streams.STREAMS],
        )
        self.every(LAG_SAMPLE_SECONDS, self.consumer_lag.sample, "consumer-lag", first_after=5.0)
        self.settings_store: SettingsStore | None = None
        #: False on the in-memory test broker (`start(connect_broker=False)`): no JetStream to sample.
        self._bus_connected = False
        self._register_sys()

    # --- declaration API -------------------------------------------------------------------------

    def provide(self, factory: Callable[[], Awaitable[AppT]]) -> None:
        """How to build the service's use cases; called at every start, once the database is there."""
        self._app_factory = factory

    @property
    def app(self) -> AppT:
        """The use cases built by the `provide` factory (only while started)."""
        if self._app is None:
            raise RuntimeError(f"{self.service.value}: the app is built at start; it is not started")
        return self._app

    def every(
        self, seconds: Seconds, fn: Callable[[], Awaitable[Any]], name: str, *, first_after: float = 0.0
    ) -> Periodic:
        """Run `fn` every `seconds` (or a function giving them) while started; see tasks.py."""
        return self.tasks.every(seconds, fn, name, first_after=first_after)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `coro` in the background, tracked, logged on failure and cancelled on stop."""
        return self.tasks.spawn(coro, name)

    async def emit(self, event: Event) -> bool:
        """Publish `event` if the bus takes it; never raises. A failure is logged and counted
        (`tgm_events_emit_failed_total`): for notifications whose loss must not fail the work that
        raised them. Use `publish` where the caller must know."""
        try:
            await self.publish(event)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.emit_failures.labels(event=event.NAME).inc()
            log.warning("could not publish %s event %s: %s", event.NAME, event.event_id, exc)
            return False

    def on_start(self, fn: Callable[[ServiceRuntime], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        self._start_hooks.append(fn)
        return fn

    def on_stop(self, fn: Callable[[ServiceRuntime], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        self._stop_hooks.append(fn)
        return fn

    def on_restore(self, fn: Callable[[ServiceRuntime], Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """Called after `restore-database` replaced this service's data (drop caches, reload state)."""
        self._restore_hooks.append(fn)
        return fn

    def command(self, cmd: type[Command]) -> Callable[[H], H]:
        """Serve a catalogue command owned by this service (one replica answers: a queue group)."""
        if cmd.OWNER is not self.service:
            raise ValueError(f"{cmd.NAME} is owned by {cmd.OWNER.value}, not {self.service.value}")
        return self._serve(
            cmd.SUBJECT, cmd.NAME, cmd.Request, cmd.Response, queue=self.service.value, least_role=cmd.ROLE
        )

    def route(
        self, cmd: type[Command] | type[Rpc], use_case: Callable[[AppT], Callable[[ReqT], Awaitable[Any]]]
    ) -> None:
        """Serve `cmd` by one use case method of the app: the whole of a thin handler, in one line.

            runtime.route(GetAlerts, lambda app: app.alerts.list)

        The lambda is typed (`app` is this runtime's AppT), so the checker and go-to-definition follow it to
        the use case. At start the method's request parameter is checked against the contract's `Request`
        (a mismatch fails the start, not a call). A use case that also takes who calls is served by
        `route_with_principal`; a handler that needs more (the request id) is written out with
        `@runtime.command`."""

        async def handler(req: Any, ctx: CallContext[AppT]) -> Any:
            return await use_case(ctx.app)(req)

        self._bind(cmd, use_case, handler, takes_principal=False)

    def route_with_principal(
        self,
        cmd: type[Command] | type[Rpc],
        use_case: Callable[[AppT], Callable[[ReqT, str | None], Awaitable[Any]]],
    ) -> None:
        """`route` for a use case that also takes the caller's principal (who did it: the audit trail,
        ownership): `runtime.route_with_principal(CreateAdCampaign, lambda app: app.ads.create)` calls
        `app.ads.create(req, ctx.principal)`. Checked at start like `route`."""

        async def handler(req: Any, ctx: CallContext[AppT]) -> Any:
            return await use_case(ctx.app)(req, ctx.principal)

        self._bind(cmd, use_case, handler, takes_principal=True)

    def _bind(
        self,
        cmd: type[Command] | type[Rpc],
        use_case: Callable[[AppT], Callable[..., Any]],
        handler: Callable[[Any, CallContext[AppT]], Awaitable[Any]],
        *,
        takes_principal: bool,
    ) -> None:
        handler.__name__ = cmd.NAME.replace("-", "_")
        self._bindings.append((cmd, use_case, takes_principal))
        if issubclass(cmd, Command):
            self.command(cmd)(handler)
        else:
            self.rpc(cmd)(handler)

    def _check_bindings(self, app: AppT) -> None:
        for cmd, use_case, takes_principal in self._bindings:
            method = use_case(app)
            params = [
                p
                for p in inspect.signature(method).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            if len(params) != (2 if takes_principal else 1):
                takes = "the request and the principal" if takes_principal else "the request"
                raise TypeError(f"{cmd.NAME}: {method.__qualname__} must take exactly {takes}")
            try:
                expected = typing.get_type_hints(method).get(params[0].name)
            except Exception:  # annotations only importable under TYPE_CHECKING: nothing to compare
                continue
            if isinstance(expected, type) and not issubclass(cmd.Request, expected):
                raise TypeError(
                    f"{cmd.NAME} sends {cmd.Request.__name__} but {method.__qualname__} takes {expected.__name__}"
                )

    def rpc(self, call: type[Rpc]) -> Callable[[H], H]:
        return self._serve(
            call.SUBJECT, call.NAME, call.Request, call.Response, queue=self.service.value, kind="rpc"
        )

    def handler(
        self,
        subject: str,
        name: str,
        request: type[BaseModel],
        response: type[BaseModel],
        queue: str | None = None,
    ) -> Callable[[H], H]:
        """Serve any subject with the envelope rules (used for account-addressed calls)."""
        return self._serve(subject, name, request, response, queue=queue or "", kind="rpc")

    def _serve(
        self,
        subject: str,
        name: str,
        request: type[BaseModel],
        response: type[BaseModel],
        queue: str,
        kind: str = "command",
        least_role: Role | None = None,
    ) -> Callable[[H], H]:
        def decorate(fn: H) -> H:
            async def endpoint() -> bytes | None:
                msg = _current(self.broker)
                reply = await self.dispatch(
                    name,
                    request,
                    response,
                    fn,
                    msg.body,
                    msg.headers,
                    subject,
                    kind=kind,
                    least_role=least_role,
                )
                # Answered here, in the bytes the dispatch wrote: FastStream's response publisher
                # (off: `no_reply`) would encode and publish the same envelope through its layers.
                if msg.reply_to:
                    await msg.raw_message.respond(fit_reply(name, reply, self.nc.max_payload))
                    return None
                return reply  # FastStream's in-memory test broker answers with what is returned

            endpoint.__name__ = f"handle_{name.replace('-', '_')}"
            self.broker.subscriber(subject, queue=queue, title=name, no_reply=True)(endpoint)
            return fn

        return decorate

    async def dispatch(
        self,
        name: str,
        request: type[BaseModel],
        response: type[BaseModel],
        fn: Callable[..., Awaitable[Any]],
        body: bytes,
        headers: Mapping[str, str] | None = None,
        subject: str = "",
        kind: str = "command",
        least_role: Role | None = None,
    ) -> bytes:
        """Validate once, call, and give the reply envelope's bytes — never raises. The result is
        serialised straight from the contract's response model (no dict or second encoder between).
        With `least_role` (a catalogue command) the message must carry a valid signature of a principal
        of at least that role (busauth.py), checked before anything else: else nothing runs."""
        ctx = CallContext(self, headers, subject)
        token = request_id_var.set(ctx.request_id)
        started = time.perf_counter()
        outcome = "ok"
        try:
            if least_role is not None:
                refusal = self.bus_auth.check(subject, body, headers, least_role)
                if refusal is not None:
                    log.warning("refused %s: %s", name, refusal.message)
                    raise DomainError(refusal.code, refusal.message)
            payload = _decode(body)
            try:
                req = request.model_validate(payload)
            except ValidationError as exc:
                raise Invalid(invalid_payload_message(name, exc), validation_details(exc)) from None
            return _ok_bytes(_model(await fn(req, ctx), response))
        except DomainError as exc:
            outcome = exc.code.value
            reply = env.error(exc.code, exc.message, exc.details, exc.retry_after)
        except Exception as exc:
            outcome = ErrorCode.INTERNAL.value
            log.error("handler %s failed: %s\n%s", name, exc, traceback.format_exc())
            reply = env.error(ErrorCode.INTERNAL, f"{name} failed inside {self.service.value}; see its logs")
        finally:
            elapsed = time.perf_counter() - started
            self.handled.labels(name, outcome).inc()
            self.latency.labels(name).observe(elapsed)
            self.perf.observe(name, kind, elapsed, outcome in _SERVER_ERRORS)
            request_id_var.reset(token)
        return orjson.dumps(reply, option=orjson.OPT_NON_STR_KEYS, default=str)

    async def serve_account(
        self,
        account_id: str,
        routes: Mapping[str, tuple[type[AccountRpc], Callable[..., Awaitable[Any]]]],
    ) -> Any:
        """Serve `tgm.acct.<id>.>` for one account this replica holds (no queue group: one holder).

        `routes` maps an AccountRpc name to (its class, handler `async (req, ctx) -> response`);
        `ctx.subject` tells the handler which account was addressed. Unsubscribe the returned
        subscription when the account's lease is released.
        """

        async def on_message(msg: Any) -> None:
            addressed = subjects.parse_account(msg.subject)
            route = routes.get(addressed.name) if addressed is not None else None
            if addressed is None or route is None or addressed.major != route[0].VERSION:
                reply = orjson.dumps(
                    env.error(ErrorCode.NOT_FOUND, f"account call {msg.subject!r} is not served")
                )
            else:
                call, fn = route
                reply = await self.dispatch(
                    f"acct.{addressed.name}",
                    call.Request,
                    call.Response,
                    fn,
                    msg.data,
                    msg.headers,
                    msg.subject,
                    kind="rpc",
                )
            if msg.reply:
                await msg.respond(
                    fit_reply(addressed.name if addressed else msg.subject, reply, self.nc.max_payload)
                )

        return await self.nc.subscribe(subjects.account_wildcard(account_id), cb=on_message)

    def pull_subscriber(
        self,
        subject: str,
        durable: str,
        *,
        stream: str = streams.EVENTS_STREAM.name,
        batch_size: int = 16,
        max_workers: int = 1,
    ) -> Callable[[Callable[..., Awaitable[None]]], Any]:
        """A durable pull consumer of `stream` (declared by its owner, not here) on `subject`: every
        replica of this service fetches from the same consumer, so each message is handled once per
        service and the work spreads across replicas. Its fetches' replies come under this service's
        own inbox (`pull_inbox`), the only one its NATS user may read."""
        from faststream.nats import JStream, PullSub

        return self.broker.subscriber(
            subject,
            stream=JStream(stream, declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=batch_size, timeout=1.0),
            inbox_prefix=self.pull_inbox,
            max_workers=max_workers,
        )

    def subscribe_events(
        self, event: type[Event], durable: str, *, max_workers: int = 1
    ) -> Callable[[Callable[[Any], Awaitable[None]]], Callable[[Any], Awaitable[None]]]:
        """Consume an event durably; replicas of this service share the work (deliver group).

        `max_workers` 1: each fetched batch (up to 16) is handled concurrently and the next batch is
        fetched once the whole batch is done (a slow event holds the ones behind it). Above 1:
        FastStream's concurrent pull subscriber: the fetch loop keeps up to `max_workers` events in
        flight, each acked (or nacked with backoff by `_consume_event`) on its own as it finishes;
        events are then handled in no particular order, so only for handlers that are idempotent and
        do not depend on the order of events (a redelivered or delayed one overtakes others anyway)."""

        name = self.durable_name(durable)
        op = f"{event.OWNER.value}.{event.NAME}@{durable}"

        def decorate(fn: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
            async def endpoint() -> None:
                await self._consume_event(event, _current(self.broker), fn, op)

            endpoint.__name__ = f"on_{event.NAME.replace('-', '_')}"
            self.pull_subscriber(event.SUBJECT, name, max_workers=max_workers)(endpoint)
            return fn

        return decorate

    def durable_name(self, durable: str) -> str:
        """The JetStream name of this service's durable consumer `durable` (`campaign_automation_joins`)."""
        return f"{self.service.value.replace('-', '_')}_{durable}"

    async def consumer_idle(self, durable: str) -> bool | None:
        """Whether the `subscribe_events` consumer `durable` has handled (acknowledged) every event of
        its stream published so far: nothing waiting for it, nothing in work. None when it cannot be
        told (no JetStream connection: the in-memory test broker; the consumer not declared yet).

        For a handler of one event that must see what a consumer of ANOTHER event type recorded
        from events published before its own (campaign's `newMemberOnly`: the join is published
        before the member's first message, but its consumer may write it after that message is
        decided): once this is True, every event of that type published before the call is
        recorded. One JetStream API call."""
        if not self._bus_connected:
            return None
        name = self.durable_name(durable)
        try:
            info = await self.js.consumer_info(streams.EVENTS_STREAM.name, name)
        except Exception as exc:  # not found, the bus briefly away: unknown, the caller decides
            log.debug("consumer %s: no state (%s)", name, exc)
            return None
        return not info.num_pending and not info.num_ack_pending

    def on_event(
        self,
        event: type[Event],
        name: str,
        *,
        max_workers: int = 1,
        order_by: OrderKey | None = None,
    ) -> Callable[[EventHandler], EventHandler]:
        """Handle `event` through the ONE durable consumer this service has for that event type.

        Several domains of a service that react to the same event (campaign's automation, crm,
        history, collaboration and swarms all hear `message-received`) each register a handler here
        instead of a durable consumer of their own: at start there is one subscriber per event type,
        durable `<service>_<event-name>` (replicas share it), and each delivery is parsed once and
        handed to every registered handler. Five consumers meant five deliveries of every message,
        each paying FastStream's per-message work (tracing, metrics, decode, ack); one pays it once.

        - `name`: the handler's name in the performance sample (op `<owner>.<event>@<name>`, one op
          per handler, timed on its own, as `subscribe_events` timed its durable) and in logs.
        - `max_workers`: the consumer keeps the largest any handler asked for (see `subscribe_events`
          for what 1 and above 1 mean); handlers of one event run concurrently with each other.
        - `order_by`: events for which it gives the same key (not None) reach THIS handler one at a
          time (a lock per key), while other keys and other handlers run concurrently: no two
          writes for one key interleave (crm's `last_replied_at`, history's `remember_user`: keyed
          by the private chat). It is mutual exclusion, NOT arrival order: the concurrent consumer's
          workers reach the lock in whatever order the event loop runs them (measured: 2 of 8 runs
          swapped two neighbours), and across replicas, and for a redelivered event, order was never
          guaranteed either — so such writes keep their own guards (newest wins by the event's time).

        Failure: when any handler raises, the event is nacked with the growing backoff of
        `_consume_event` and on redelivery EVERY handler runs again, those that succeeded included
        (nothing is remembered per handler: a redelivery may land on another replica anyway). So every
        handler must be idempotent by event id or message key, as all `subscribe_events` handlers
        already had to be. Register before `start` (handlers modules do, in `register`).

        Changing a domain from its own durable to this one leaves the old durable on the stream
        (`nats consumer rm` it), and the new durable starts from the stream's start like any new one:
        idempotent handlers make that replay harmless, only slower.
        """
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        shared = self._shared.get(event)
        if shared is None:
            shared = self._shared[event] = _SharedConsumer(event)
        if shared.declared:
            raise RuntimeError(f"{event.NAME}: on_event({name!r}) after start; register before start")
        if any(h.name == name for h in shared.handlers):
            raise ValueError(f"{event.NAME}: a handler named {name!r} is already registered")
        shared.max_workers = max(shared.max_workers, max_workers)

        def decorate(fn: EventHandler) -> EventHandler:
            op = f"{event.OWNER.value}.{event.NAME}@{name}"
            shared.handlers.append(_EventHandler(name, fn, op, order_by))
            return fn

        return decorate

    def _declare_shared_consumers(self) -> None:
        """One durable pull consumer per event type `on_event` collected handlers for (once)."""

        for shared in self._shared.values():
            if shared.declared or not shared.handlers:
                continue
            shared.declared = True
            event = shared.event
            durable = f"{self.service.value}_{event.NAME}".replace("-", "_")

            endpoint = self._shared_endpoint(shared)
            self.pull_subscriber(event.SUBJECT, durable, max_workers=shared.max_workers)(endpoint)

    def _shared_endpoint(self, shared: _SharedConsumer) -> Callable[[], Awaitable[None]]:
        async def endpoint() -> None:
            await self._consume_shared(shared, _current(self.broker))

        endpoint.__name__ = f"on_{shared.event.NAME.replace('-', '_')}"
        return endpoint

    async def _consume_shared(self, shared: _SharedConsumer, msg: NatsMessage) -> None:
        """Parse one event once and run every handler of it; nack with backoff if any failed."""
        cls = shared.event
        try:
            evt = cls.model_validate(json.loads(msg.body))
        except (ValueError, ValidationError) as exc:
            log.warning("dropping malformed %s event: %s", cls.NAME, exc)
            return
        handlers = shared.handlers
        if len(handlers) == 1:
            failed = [handlers[0]] if not await self._run_handler(handlers[0], evt) else []
        else:
            ok = await asyncio.gather(*(self._run_handler(h, evt) for h in handlers))
            failed = [h for h, good in zip(handlers, ok, strict=True) if not good]
        if failed:
            delivered = _deliveries(msg)
            delay = min(EVENT_RETRY_MAX_SECONDS, 2.0 ** max(0, delivered - 1))
            log.warning(
                "%s %s (delivery %s): %s failed; every handler runs again in %.0f s",
                cls.NAME,
                evt.event_id,
                delivered or "?",
                ", ".join(h.name for h in failed),
                delay,
            )
            await msg.nack(delay=delay)

    async def _run_handler(self, handler: _EventHandler, evt: Event) -> bool:
        """One handler on one event, in its key's turn, timed; False (logged) when it raised."""
        started, failed = time.perf_counter(), True
        try:
            key = handler.order_by(evt) if handler.order_by is not None else None
            if key is None:
                await handler.fn(evt)
            else:
                async with handler.locks.hold(key):
                    started = time.perf_counter()  # the handler's own time, not its wait for the key
                    await handler.fn(evt)
            failed = False
        except Exception:
            log.exception("handling %s %s failed", handler.op, evt.event_id)
        finally:
            self.perf.observe(handler.op, "event", time.perf_counter() - started, failed)
        return not failed

    def subscribe_all_events(
        self, durable: str, filter_subject: str = subjects.EVENTS_FILTER
    ) -> Callable[[Callable[[Event], Awaitable[None]]], Callable[[Event], Awaitable[None]]]:
        """Consume every declared event (of every service) durably, parsed into its contract class.

        For services that watch the whole system (analytics). Subjects with no declared event class and
        malformed bodies are dropped with a warning; replicas share one durable consumer.
        """
        from tgm_contracts.events import EVENTS

        name = self.durable_name(durable)

        def decorate(fn: Callable[[Event], Awaitable[None]]) -> Callable[[Event], Awaitable[None]]:
            async def endpoint() -> None:
                msg = _current(self.broker)
                cls = EVENTS.get(msg.raw_message.subject)
                if cls is None:
                    log.warning("dropping event on undeclared subject %s", msg.raw_message.subject)
                    return
                await self._consume_event(cls, msg, fn, f"{cls.OWNER.value}.{cls.NAME}@{durable}")

            endpoint.__name__ = f"on_all_events_{durable}"
            self.pull_subscriber(filter_subject, name, batch_size=64)(endpoint)
            return fn

        return decorate

    async def _consume_event(
        self, cls: type[Event], msg: NatsMessage, fn: Callable[[Any], Awaitable[None]], op: str
    ) -> None:
        """Parse one event and hand it to `fn`, timed for the performance sample.

        A malformed body is dropped with a warning (it would fail the same way again). When `fn` fails
        (the database briefly away, a bug) the event is *not* lost: it is negatively acknowledged with a
        growing delay (1 s, 2 s, 4 s … at most `EVENT_RETRY_MAX_SECONDS`) and comes back, where
        FastStream's default would terminate it; every handler is idempotent by event id, so a retry is
        safe. A message acknowledged by nobody (the process killed) comes back after the ack wait.
        """
        try:
            evt = cls.model_validate(json.loads(msg.body))
        except (ValueError, ValidationError) as exc:
            log.warning("dropping malformed %s event: %s", cls.NAME, exc)
            return
        started, failed = time.perf_counter(), True
        try:
            await fn(evt)
            failed = False
        except Exception:
            delivered = _deliveries(msg)
            delay = min(EVENT_RETRY_MAX_SECONDS, 2.0 ** max(0, delivered - 1))
            log.exception("handling %s (delivery %s) failed; retrying in %.0f s", op, delivered or "?", delay)
            await msg.nack(delay=delay)
        finally:
            self.perf.observe(op, "event", time.perf_counter() - started, failed)

    # --- calls out ---------------------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        await self.broker.publish(
            event.model_dump(mode="json", by_alias=True),
            subject=event.SUBJECT,
            stream=streams.EVENTS_STREAM.name,
            headers={Headers.MSG_ID: event.event_id},
        )

    async def call(
        self, target: type[Rpc] | type[Command], payload: BaseModel | dict[str, Any], timeout: float = 10.0
    ) -> Any:
        body = payload.model_dump(mode="json", by_alias=True) if isinstance(payload, BaseModel) else payload
        return await self.request(target.SUBJECT, body, target.Response, timeout)

    async def request(
        self, subject: str, body: dict[str, Any], response: type[BaseModel], timeout: float = 10.0
    ) -> Any:
        from nats.errors import NoRespondersError
        from nats.errors import TimeoutError as NatsTimeout

        data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
        cmd = _command_at(subject)
        # Another service's command (or one of its own) is signed as this service with its least role.
        headers = (
            self.bus_auth.headers(subject, data, f"service:{self.service.value}", cmd.ROLE) if cmd else None
        )
        try:
            reply = await self.broker.request(data, subject=subject, timeout=timeout, headers=headers)
        except NoRespondersError:
            raise DomainError(ErrorCode.UNAVAILABLE, f"nobody serves {subject}") from None
        except (NatsTimeout, TimeoutError):
            raise DomainError(ErrorCode.TIMEOUT, f"{subject} did not answer in {timeout}s") from None
        raw = json.loads(reply.body)
        if raw.get("ok"):
            return response.model_validate(raw.get("data"))
        err = raw.get("error") or {}
        raise DomainError(
            ErrorCode(err.get("code", "INTERNAL")),
            err.get("message", "error"),
            err.get("details"),
            err.get("retry_after"),
        )

    async def settings_section(self, section: str) -> Any:
        assert self.settings_store is not None
        return await self.settings_store.values(section)

    async def object_store(self, spec: streams.ObjectStoreSpec) -> Any:
        # With the configured replicas, an existing store raised to them (ReplicatedBroker).
        return await self.broker.object_storage(
            spec.bucket, description=spec.description, ttl=spec.ttl_seconds
        )

    async def key_value(self, spec: streams.KvSpec) -> Any:
        """A KV bucket declared in contracts, created on first use with its TTL and history."""
        # With the configured replicas, an existing bucket raised to them (ReplicatedBroker).
        return await self.broker.key_value(
            spec.bucket, description=spec.description, ttl=spec.ttl_seconds, history=spec.history
        )

    @property
    def nc(self) -> Any:
        return self.broker.connection

    @property
    def js(self) -> Any:
        return self.broker.connection.jetstream()

    # --- lifecycle ---------------------------------------------------------------------------------

    def _master_keys(self) -> tuple[bytes, list[bytes]]:
        """The master key and the previous ones still accepted."""
        s = self.settings
        if s.master_key:
            text = s.master_key
        elif s.master_key_file:
            text = load_or_create_key_file(s.master_key_file)
        else:
            text = load_or_create_key_file(s.data_dir / "master.key") if s.data_dir else new_key_text()
        previous = [decode_key(k) for k in (s.previous_master_keys or "").split(",") if k.strip()]
        return decode_key(text), previous

    def _secret_box(self) -> SecretBox:
        current, previous = self._master_keys()
        return SecretBox(current, previous)

    def _bus_auth(self) -> BusAuth:
        if self.settings.bus_key:
            return BusAuth([decode_bus_key(self.settings.bus_key)])
        current, previous = self._master_keys()
        return BusAuth(derive_bus_key(k) for k in (current, *previous))

    def database_name(self) -> str:
        return self.settings.database_prefix + self.service.database

    async def connect_database(self, uri: str | None = None) -> None:
        self.mongo = AsyncMongoClient(
            uri or self.settings.mongodb_uri,
            serverSelectionTimeoutMS=5000,
            tz_aware=True,
            appname=f"tgm-{self.service.value}",
            event_listeners=[WriteWatch()],  # this process's writes invalidate list totals (counts.py)
        )
        self.db = self.mongo[self.database_name()]
        self.settings_store = SettingsStore(self.db, self.service)

    async def start(self, *, connect_broker: bool = True) -> None:
        self.broker.replicas_checked.clear()
        self._declare_shared_consumers()
        if self.mongo is None:
            await self.connect_database()
        await MigrationRunner(self.db, self.migrations).run()
        self._bus_connected = connect_broker
        if connect_broker:
            await self.broker.connect()
            await self._ensure_streams()
        if self._app_factory is not None:
            self._app = await self._app_factory()
            self._check_bindings(self._app)
        for hook in self._start_hooks:
            await hook(self)
        if connect_broker:
            await self.broker.start()
            await self.telemetry.start(jetstream_publisher(lambda: self.js))
        self.tasks.start()
        self._ready = True
        log.info("%s %s started (replica %s)", self.service.value, self.version, self.settings.replica_id)

    async def _ensure_streams(self) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        js = self.js
        for spec in streams.STREAMS:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                max_age=spec.max_age_seconds,
                duplicate_window=spec.duplicate_window_seconds,
                description=spec.description,
                num_replicas=self.settings.js_replicas,
            )
            try:
                await ensure_replicas(js, spec.name, self.settings.js_replicas)
            except NotFoundError:
                try:
                    await js.add_stream(config)
                except Exception as exc:  # another service created it at the same moment
                    log.debug("stream %s: %s", spec.name, exc)

    async def stop(self) -> None:
        """Periodic jobs end their round, stop hooks run, spawned tasks left are cancelled, then the
        last telemetry leaves and the broker and database close; each wait bounded by the stop timeout."""
        self._ready = False
        timeout = self.settings.stop_timeout_seconds
        await self.tasks.stop_periodic(timeout)
        for hook in reversed(self._stop_hooks):
            try:
                await hook(self)
            except Exception:
                log.exception("stop hook failed")
        await self.tasks.stop_spawned(timeout)
        await self.telemetry.stop()  # the last logs and partial sample, while the broker is up
        try:
            await self.broker.stop()
        except Exception:
            log.exception("broker stop failed")
        if self.mongo is not None:
            await self.mongo.close()
            self.mongo = None
        self._app = None

    def request_stop(self) -> None:
        self._stop.set()

    async def stop_requested(self) -> None:
        """Returns once something (a signal, `graceful-shutdown`) asked this process to stop."""
        await self._stop.wait()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        settle_heap()
        server = None
        if self.settings.health_port:
            from .health import serve_health

            server = await serve_health(self, self.settings.health_host, self.settings.health_port)
        await self._stop.wait()
        log.info("%s draining and stopping", self.service.value)
        if server is not None:
            server.should_exit = True
        await self.stop()

    def run(self) -> None:
        setup_logging(self.service.value, self.settings.replica_id, self.settings.log_level)
        from .tracing import setup_tracing

        setup_tracing(self.service.value, self.settings.otlp_endpoint, self.settings.trace_sample_ratio)
        asyncio.run(self.serve())

    # --- sys protocol ------------------------------------------------------------------------------

    async def info(self) -> sysops.ServiceInfo:
        db_check = await self.check_database()
        nats_ok = bool(self.broker._connection is not None and self.broker.connection.is_connected)
        counts = {}
        if self._counts is not None and db_check.ok:
            try:
                counts = await self._recent_counts()
            except Exception as exc:
                log.warning("counts failed: %s", exc)
        status = await MigrationRunner(self.db, self.migrations).status() if db_check.ok else {"current": 0}
        return sysops.ServiceInfo(
            service=self.service,
            version=self.version,
            replica_id=self.settings.replica_id,
            pid=os.getpid(),
            started_at=self.started_at,
            uptime_seconds=round(time.monotonic() - self._t0, 3),
            health="ok" if db_check.ok and nats_ok and self._ready else "degraded",
            database=db_check,
            nats=sysops.Check(ok=nats_ok),
            counts=counts,
            migration=status["current"],
        )

    async def _recent_counts(self) -> dict[str, int]:
        """The service's `counts`, counted at most once per `COUNTS_MAX_AGE` (callers meanwhile share
        the last figures, and one count under way)."""
        kept = self._counts_kept
        if kept is not None and time.monotonic() - kept[0] < COUNTS_MAX_AGE:
            return kept[1]
        return await self._counts_flight.run("counts", self._count_now)

    async def _count_now(self) -> dict[str, int]:
        assert self._counts is not None
        at = time.monotonic()
        counts = dict(await self._counts(self.db))
        self._counts_kept = (at, counts)
        return counts

    async def check_database(self) -> sysops.Check:
        t = time.perf_counter()
        try:
            await self.db.command("ping")
            return sysops.Check(ok=True, latency_ms=round((time.perf_counter() - t) * 1000, 2))
        except Exception as exc:
            return sysops.Check(ok=False, error=type(exc).__name__)

    def _register_sys(self) -> None:
        def sys_handler(op: type[sysops.SysOp]) -> Callable[[H], H]:
            queue = "" if op.BROADCAST else self.service.value
            return self._serve(
                op.subject(self.service), f"sys.{op.OP}", op.Request, op.Response, queue, kind="rpc"
            )

        @sys_handler(sysops.Info)
        async def _info(req: Any, ctx: CallContext) -> sysops.ServiceInfo:
            return await self.info()

        @sys_handler(sysops.SettingsGet)
        async def _settings_get(req: sysops.SettingsGetRequest, ctx: CallContext) -> Any:
            assert self.settings_store
            return {"sections": await self.settings_store.all(req.sections)}

        @sys_handler(sysops.SettingsSave)
        async def _settings_save(req: sysops.SettingsSaveRequest, ctx: CallContext) -> Any:
            assert self.settings_store
            return await self.settings_store.save(req.section, req.values, req.expected_version)

        @sys_handler(sysops.SettingsReset)
        async def _settings_reset(req: sysops.SettingsResetRequest, ctx: CallContext) -> Any:
            assert self.settings_store
            names = [s for s in self.settings_store.models if req.sections is None or s in req.sections]
            return {"sections": [await self.settings_store.reset(s) for s in names]}

        @sys_handler(sysops.Backup)
        async def _backup(req: sysops.BackupRequest, ctx: CallContext) -> Any:
            data, counts = await backup.dump(self.db)
            name = f"{req.backup_id}/{self.service.value}.jsonl.gz"
            store = await self.object_store(streams.BACKUPS)
            await store.put(name, data)
            return sysops.BackupPart(
                service=self.service,
                object_name=name,
                collections=counts,
                documents=sum(counts.values()),
                bytes=len(data),
            )

        @sys_handler(sysops.Restore)
        async def _restore(req: sysops.BackupRequest, ctx: CallContext) -> Any:
            from nats.js.errors import ObjectNotFoundError

            store = await self.object_store(streams.BACKUPS)
            name = f"{req.backup_id}/{self.service.value}.jsonl.gz"
            try:
                obj = await store.get(name)
            except ObjectNotFoundError:
                raise DomainError(
                    ErrorCode.NOT_FOUND, f"backup {req.backup_id} has no part for {name}"
                ) from None
            counts = await backup.restore(self.db, obj.data or b"")
            for hook in self._restore_hooks:  # rebuild in-memory state from the restored data
                await hook(self)
            return sysops.RestorePart(
                service=self.service, collections=counts, documents=sum(counts.values())
            )

        @sys_handler(sysops.Migrate)
        async def _migrate(req: Any, ctx: CallContext) -> Any:
            runner = MigrationRunner(self.db, self.migrations)
            await runner.run()
            return {"service": self.service, **(await runner.status())}

        @sys_handler(sysops.Migrations)
        async def _migrations(req: Any, ctx: CallContext) -> Any:
            return {"service": self.service, **(await MigrationRunner(self.db, self.migrations).status())}

        @sys_handler(sysops.Shutdown)
        async def _shutdown(req: Any, ctx: CallContext) -> Any:
            # Answer first, then drain: the reply must leave before the connection closes.
            asyncio.get_running_loop().call_later(0.2, self.request_stop)
            return sysops.ShutdownAck(service=self.service, replica_id=self.settings.replica_id)
