"""What every edge shares: who is calling (the bearer key, checked before any body is read), and the
reply each edge writes for an `Outcome` (the HTTP envelope or the seed's IPC envelope). Bodies are
read by body.py; `posted_command` is the start every POSTed command shares (plain HTTP and SSE)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.requests import HTTPConnection, Request
from tgm_contracts import ErrorCode, validation_details
from tgm_contracts import envelope as env
from tgm_contracts.envelope import IpcRequest
from tgm_runtime import DomainError

from ..app import Runtime
from ..dispatch import Dispatcher, Outcome, failure
from ..keys.service import Principal
from .body import BodyLimits, read_object


def bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_address(conn: HTTPConnection) -> str:
    """The caller's address as uvicorn saw it (behind a trusted proxy: X-Forwarded-For, uvicorn's rule)."""
    return conn.client.host if conn.client else "unknown"


async def caller(runtime: Runtime, conn: HTTPConnection, key: str | None = None) -> Principal | Outcome:
    """The principal of the key sent (`key`, else the Authorization header), or the refusal:
    401 without a valid key, 429 once this address has failed too often (ApiKeys.admit)."""
    presented = key if key is not None else bearer(conn.headers.get("authorization"))
    try:
        return await runtime.app.keys.admit(presented, client_address(conn))
    except DomainError as exc:
        return failure(exc.code, exc.message, exc.details, exc.retry_after)


def json_reply(outcome: Outcome, request_id: str) -> Response:
    """The HTTP envelope: the owner's reply bytes as they came when there are any (dispatch.py)."""
    headers = {"x-request-id": request_id}
    if outcome.raw is not None:
        return Response(
            outcome.raw, status_code=outcome.status, headers=headers, media_type="application/json"
        )
    return JSONResponse(outcome.reply, status_code=outcome.status, headers=headers)


@dataclass(frozen=True)
class PostedCommand:
    request_id: str
    principal: Principal
    payload: dict[str, Any]


async def posted_command(runtime: Runtime, request: Request, limits: BodyLimits) -> PostedCommand | Response:
    """A POSTed command's request id (`X-Request-Id`, else a new one), caller and JSON object body; or
    the HTTP envelope that refuses it (the key is checked before the body is read)."""
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    principal = await caller(runtime, request)
    if isinstance(principal, Outcome):
        return json_reply(principal, request_id)
    payload = await read_object(request, limits)
    if isinstance(payload, Outcome):
        return json_reply(payload, request_id)
    return PostedCommand(request_id, principal, payload)


def ipc_reply(outcome: Outcome, command: str | None, request_id: str | None) -> tuple[int, dict[str, Any]]:
    if outcome.ok and command is not None:
        return 200, env.ipc_result(command, outcome.reply.get("data"), request_id)
    err = outcome.reply["error"]
    return outcome.status, env.ipc_error(
        ErrorCode(err["code"]), err["message"], request_id, err.get("details"), err.get("retry_after")
    )


async def run_ipc(
    dispatcher: Dispatcher, body: dict[str, Any], principal: Principal
) -> tuple[int, dict[str, Any]]:
    """One IPC envelope `{command, payload, requestId}` (HTTP or WebSocket): status and reply.
    All three fields are required: a reply without its requestId cannot be matched by the client."""
    request_id = body.get("requestId") if isinstance(body.get("requestId"), str) else None
    try:
        ipc = IpcRequest.model_validate(body)
    except ValidationError as exc:
        return 422, env.ipc_error(
            ErrorCode.VALIDATION_ERROR,
            "not an IPC envelope: {command, payload, requestId} are all required",
            request_id,
            validation_details(exc),
        )
    outcome = await dispatcher.run(ipc.command, ipc.payload, principal, ipc.request_id)
    return ipc_reply(outcome, ipc.command, ipc.request_id)
