"""From a caller's command to its owner's subject: auth, lookup, role, validation, then NATS.

*Decisions (issue 16, the hot path):* every command's route (contract, subject, least role, deadline)
is read from the registry once, when the dispatcher is built; the payload is validated once and
serialised straight to bytes by its contract; the owner's reply is parsed once (orjson) to check it is
an envelope, and kept as the bytes it came in (`Outcome.raw`) so the HTTP edge answers with them
instead of encoding the same document again. A span is opened only when tracing is on
(`tgm_runtime.tracing.active()`); with tracing off there is no span and no `traceparent`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import ValidationError
from tgm_contracts import (
    HTTP_STATUS,
    REGISTRY,
    Command,
    ErrorCode,
    invalid_payload_message,
    validation_details,
)
from tgm_contracts import envelope as env
from tgm_runtime import tracing
from tgm_runtime.busauth import BusAuth
from tgm_runtime.settings_store import SettingsStore

from .audit.service import AuditLog
from .bus import request_bytes, trace_headers
from .keys.limiter import SharedKeyRate
from .keys.service import Principal
from .presence import Presence

_tracer = trace.get_tracer("tgm.gateway")


@dataclass
class Outcome:
    status: int
    reply: dict[str, Any]
    command: type[Command] | None = None
    #: The owner's reply exactly as it came (a well-formed envelope): the HTTP body, not re-encoded.
    raw: bytes | None = None

    @property
    def ok(self) -> bool:
        return bool(self.reply.get("ok"))


def failure(code: ErrorCode, message: str, details: Any = None, retry_after: float | None = None) -> Outcome:
    return Outcome(HTTP_STATUS[code], env.error(code, message, details, retry_after))


class CommandDeadline:
    """The deadline of a command whose contract names none: the `general` section's
    `commandTimeoutSeconds` once saved; until then the environment's default."""

    def __init__(self, default: float) -> None:
        self.default = default
        self.seconds = default

    async def refresh(self, store: SettingsStore | None) -> None:
        if store is None:
            return
        section = await store.get("general")
        self.seconds = section.values["commandTimeoutSeconds"] if section.version > 0 else self.default


class Dispatcher:
    def __init__(
        self,
        nc: Callable[[], Client],
        limiter: SharedKeyRate,
        default_timeout: Callable[[], float],
        registry: CollectorRegistry,
        audit: AuditLog | None = None,
        presence: Presence | None = None,
        *,
        bus_auth: BusAuth,
    ) -> None:
        self._nc = nc
        self._bus_auth = bus_auth
        #: Who ran what: every change and every refusal this dispatcher answered (audit/service.py).
        self.audit = audit or AuditLog(registry)
        #: Which owners answered the last presence round (refusing a bad payload of an unserved command).
        self.presence = presence or Presence(nc, 1.0)
        self._limiter = limiter
        self._default_timeout = default_timeout
        self.requests = Counter(
            "tgm_gateway_commands_total",
            "Commands through the gateway by command and code",
            ["command", "code"],
            registry=registry,
        )
        self.latency = Histogram(
            "tgm_gateway_command_seconds",
            "Gateway command latency, end to end",
            ["command"],
            registry=registry,
        )
        # Read once: the registry cannot change while the process runs.
        self._routes: dict[str, type[Command]] = {name: REGISTRY.get(name) for name in REGISTRY.names()}  # type: ignore[misc]
        self._counted: dict[tuple[str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def resolve(self, name: str) -> type[Command] | None:
        return self._routes.get(name)

    def _count(self, label: str, code: str, seconds: float) -> None:
        counter = self._counted.get((label, code))
        if counter is None:
            counter = self._counted[(label, code)] = self.requests.labels(label, code)
        timer = self._timed.get(label)
        if timer is None:
            timer = self._timed[label] = self.latency.labels(label)
        counter.inc()
        timer.observe(seconds)

    async def run(
        self,
        name: str,
        payload: Any,
        principal: Principal | None,
        request_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Outcome:
        started = time.perf_counter()
        if tracing.active():
            # One span per command; its context travels to the owner in the `traceparent` header.
            with _tracer.start_as_current_span(f"command {name[:100]}", kind=trace.SpanKind.CLIENT) as span:
                outcome = await self._run(name, payload, principal, request_id, extra)
                span.set_attribute("tgm.command", name[:100])
                span.set_attribute("tgm.status", outcome.status)
        else:
            outcome = await self._run(name, payload, principal, request_id, extra)
        label = outcome.command.NAME if outcome.command else "unknown"
        code = "OK" if outcome.ok else outcome.reply["error"]["code"]
        seconds = time.perf_counter() - started
        self._count(label, code, seconds)
        if (
            principal is not None
            and outcome.command is not None
            and self.audit.audited(outcome.command.ROLE, code)
        ):
            self.audit.record(principal, label, code, request_id=request_id, seconds=seconds)
        return outcome

    async def _refused(self, cmd: type[Command], message: str, details: Any = None) -> Outcome:
        """A payload the contract refuses. When no replica of the owner is up, that is said
        first: the caller could not be served even with a valid payload."""
        if await self.presence.down(cmd.OWNER):
            out = failure(
                ErrorCode.UNAVAILABLE,
                f"{cmd.NAME} is not served right now: no {cmd.OWNER.value} replica is up",
            )
        else:
            out = failure(ErrorCode.VALIDATION_ERROR, message, details)
        out.command = cmd
        return out

    async def _run(
        self,
        name: str,
        payload: Any,
        principal: Principal | None,
        request_id: str | None,
        extra: dict[str, Any] | None,
    ) -> Outcome:
        if principal is None:
            return failure(
                ErrorCode.UNAUTHORIZED, "missing or invalid API key: send 'Authorization: Bearer <key>'"
            )
        cmd = self.resolve(name)
        if cmd is None:
            return failure(
                ErrorCode.NOT_FOUND,
                f"unknown command {name[:100]!r}; GET /api/v1/commands lists the commands",
            )
        if principal.role < cmd.ROLE:
            out = failure(
                ErrorCode.FORBIDDEN,
                f"{cmd.NAME} needs the {cmd.ROLE.label} role; this key has {principal.role.label}",
            )
            out.command = cmd
            return out
        wait = await self._limiter.take(principal.key_id)
        if wait > 0:
            out = failure(
                ErrorCode.RATE_LIMITED, "too many requests for this key", retry_after=round(wait, 3)
            )
            out.command = cmd
            return out
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return await self._refused(cmd, "payload must be a JSON object")
        try:
            req = cmd.parse({**payload, **(extra or {})})
        except ValidationError as exc:
            return await self._refused(cmd, invalid_payload_message(cmd.NAME, exc), validation_details(exc))
        data = cmd.Request.__pydantic_serializer__.to_json(req, by_alias=True, exclude_unset=True)
        headers = trace_headers(request_id)
        # The principal travels signed (tgm_runtime.busauth): the owner checks it and the least role.
        headers.update(self._bus_auth.headers(cmd.SUBJECT, data, principal.key_id, principal.role))
        timeout = cmd.TIMEOUT or self._default_timeout()
        reply, raw = await request_bytes(self._nc(), cmd.SUBJECT, data, headers, timeout)
        if reply["ok"]:
            return Outcome(200, reply, cmd, raw)
        try:
            code = ErrorCode(reply["error"]["code"])
        except (KeyError, ValueError, TypeError):
            code = ErrorCode.INTERNAL
        return Outcome(HTTP_STATUS[code], reply, cmd, raw)
