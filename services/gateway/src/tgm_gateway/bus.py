"""The gateway's side of NATS: one command to its owner, and scatter-gather of `sys` ops."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from nats.aio.client import Client
from nats.errors import MaxPayloadError, NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from opentelemetry import propagate
from tgm_contracts import BACKEND_SERVICES, ErrorCode, Headers, Service
from tgm_contracts import envelope as env
from tgm_contracts.sys import SysOp
from tgm_runtime import DomainError, tracing

#: Every service, the gateway first: the order in which fan-outs ask and report.
ALL_SERVICES: tuple[Service, ...] = (Service.GATEWAY, *BACKEND_SERVICES)


def trace_headers(
    request_id: str | None, principal: str | None = None, role: str | None = None
) -> dict[str, str]:
    headers: dict[str, str] = {Headers.REQUEST_ID: request_id or uuid.uuid4().hex}
    if principal:
        headers[Headers.PRINCIPAL] = principal
    if role:
        headers[Headers.ROLE] = role
    if tracing.active():
        propagate.inject(headers)
    return headers


#: Bytes NATS adds around the headers of a message (`NATS/1.0\r\n` … `\r\n`).
_HEADER_FRAME = 12


def message_size(data: bytes, headers: dict[str, str]) -> int:
    """Bytes a message counts against the server's `max_payload`: its payload and its headers."""
    return len(data) + _HEADER_FRAME + sum(len(k) + len(v) + 4 for k, v in headers.items())


def too_large(nc: Client, size: int) -> dict[str, Any]:
    """The VALIDATION_ERROR for a message the server would refuse (a refused publish would also
    cost the gateway its connection, so it is never sent)."""
    limit = nc.max_payload
    return env.error(
        ErrorCode.VALIDATION_ERROR,
        f"the message is {size} bytes; the message bus carries at most {limit} bytes per message "
        "(NATS max_payload)",
        {"sizeBytes": size, "limitBytes": limit},
    )


async def request(
    nc: Client, subject: str, body: Any, headers: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Send one request; always returns an envelope (UNAVAILABLE / TIMEOUT included, and
    VALIDATION_ERROR for a message larger than the bus carries)."""
    reply, _raw = await request_bytes(
        nc, subject, orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), headers, timeout
    )
    return reply


async def request_bytes(
    nc: Client, subject: str, data: bytes, headers: dict[str, str], timeout: float
) -> tuple[dict[str, Any], bytes | None]:
    """`request` of an already encoded payload: the envelope, and the reply's own bytes when the owner
    answered with a well-formed envelope (None for the gateway's own errors), so an edge can send
    them on as they are."""
    if not nc.is_connected:
        return env.error(ErrorCode.UNAVAILABLE, "the message bus is not connected; try again shortly"), None
    size = message_size(data, headers)
    if size > nc.max_payload:
        return too_large(nc, size), None
    try:
        msg = await nc.request(subject, data, timeout=timeout, headers=headers)
    except MaxPayloadError:
        return too_large(nc, size), None
    except NoRespondersError:
        return env.error(ErrorCode.UNAVAILABLE, "no service is serving this command right now"), None
    except (NatsTimeout, TimeoutError):
        return env.error(ErrorCode.TIMEOUT, f"no answer within {timeout:g} s"), None
    try:
        reply = orjson.loads(msg.data)
        if isinstance(reply, dict) and isinstance(reply.get("ok"), bool):
            return reply, msg.data
    except (ValueError, RecursionError):
        pass
    return env.error(ErrorCode.INTERNAL, "the service answered with a malformed reply"), None


def raise_error(reply: dict[str, Any], service: Service) -> None:
    """A service's error envelope, raised as the same error of the gateway's own command."""
    err = reply.get("error") or {}
    code = ErrorCode(err.get("code", "INTERNAL"))
    raise DomainError(code, f"{service.value}: {err.get('message', 'failed')}", err.get("details"))


@dataclass
class Gathered:
    """Replies of a fan-out: per service, the data of each replica that answered, and errors."""

    replies: dict[Service, list[Any]] = field(default_factory=dict)
    errors: dict[Service, dict[str, Any]] = field(default_factory=dict)

    def answered(self, service: Service) -> bool:
        return bool(self.replies.get(service))


async def broadcast(
    nc: Client,
    op: type[SysOp],
    services: Iterable[Service],
    payload: dict[str, Any],
    window: float,
    request_id: str | None = None,
) -> Gathered:
    """Every replica of every service answers; gather for `window` seconds (less when all spoke and
    the replies stopped coming)."""
    services = list(services)
    out = Gathered(replies={s: [] for s in services})
    if not nc.is_connected:
        for s in services:
            out.errors[s] = {"code": "UNAVAILABLE", "message": "bus not connected"}
        return out
    inbox = nc.new_inbox()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    sub = await nc.subscribe(inbox, cb=queue.put)
    headers = trace_headers(request_id)
    try:
        body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
        for s in services:
            await nc.publish(op.subject(s), body, reply=inbox, headers=headers)
        deadline = time.monotonic() + window
        quiet = 0.15
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            all_spoke = all(out.replies[s] for s in services)
            try:
                msg = await asyncio.wait_for(queue.get(), min(remaining, quiet) if all_spoke else remaining)
            except TimeoutError:
                if all_spoke:
                    break
                continue
            if not msg.data:  # a no-responders status message
                continue
            try:
                reply = orjson.loads(msg.data)
            except ValueError:
                continue
            svc = Service((reply.get("data") or {}).get("service", "")) if reply.get("ok") else None
            if svc in out.replies:
                out.replies[svc].append(reply["data"])
    finally:
        await sub.unsubscribe()
    return out


async def each(
    nc: Client,
    op: type[SysOp],
    services: Iterable[Service],
    payload: dict[str, Any],
    timeout: float,
    request_id: str | None = None,
) -> dict[Service, dict[str, Any]]:
    """One replica of each service answers; all asked at once. Values are envelopes."""
    services = list(services)
    headers = trace_headers(request_id)
    results = await asyncio.gather(*(request(nc, op.subject(s), payload, headers, timeout) for s in services))
    return dict(zip(services, results, strict=True))
