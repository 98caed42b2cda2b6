"""What every edge shares: who is calling (the bearer key), the JSON body they sent, and the reply
each edge writes for an `Outcome` (the HTTP envelope or the seed's IPC envelope)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from tgm_contracts import ErrorCode, validation_details
from tgm_contracts import envelope as env
from tgm_contracts.envelope import IpcRequest

from ..app import Runtime
from ..dispatch import Dispatcher, Outcome, failure
from ..keys.service import Principal


def bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def caller(runtime: Runtime, request: Request) -> Principal | None:
    return await runtime.app.keys.authenticate(bearer(request.headers.get("authorization")))


def json_reply(outcome: Outcome, request_id: str) -> JSONResponse:
    return JSONResponse(outcome.reply, status_code=outcome.status, headers={"x-request-id": request_id})


def ipc_reply(outcome: Outcome, command: str, request_id: str | None) -> tuple[int, dict[str, Any]]:
    if outcome.ok:
        return 200, env.ipc_result(command, outcome.reply.get("data"), request_id)
    err = outcome.reply["error"]
    return outcome.status, env.ipc_error(
        ErrorCode(err["code"]), err["message"], request_id, err.get("details"), err.get("retry_after")
    )


async def read_json(request: Request) -> tuple[Any, Outcome | None]:
    raw = await request.body()
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        out = failure(ErrorCode.VALIDATION_ERROR, f"body is not valid JSON: {exc}")
        out.status = 400
        return None, out


async def run_ipc(
    dispatcher: Dispatcher, body: Any, principal: Principal | None
) -> tuple[int, dict[str, Any]]:
    """One IPC envelope `{command, payload, requestId}` (HTTP or WebSocket): status and reply."""
    request_id = (
        body.get("requestId") if isinstance(body, dict) and isinstance(body.get("requestId"), str) else None
    )
    try:
        ipc = IpcRequest.model_validate(body)
    except ValidationError as exc:
        return 422, env.ipc_error(
            ErrorCode.VALIDATION_ERROR,
            "not an IPC envelope {command, payload, requestId}",
            request_id,
            validation_details(exc),
        )
    outcome = await dispatcher.run(ipc.command, ipc.payload, principal, ipc.request_id)
    return ipc_reply(outcome, ipc.command, ipc.request_id)
