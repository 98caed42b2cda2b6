"""Reply envelopes on NATS and the seed's IPC envelope at the gateway."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .enums import ErrorCode


class Headers:
    """NATS header names carried on every command and event."""

    REQUEST_ID = "tgm-request-id"
    TRACEPARENT = "traceparent"
    TRACESTATE = "tracestate"
    PRINCIPAL = "tgm-principal"
    ROLE = "tgm-role"
    DEADLINE = "tgm-deadline"
    MSG_ID = "Nats-Msg-Id"


class FieldError(BaseModel):
    """One invalid field: where, why, and the validator's type tag."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: ErrorCode
    message: str
    details: Any | None = None
    retry_after: float | None = Field(
        None, description="Seconds to wait before retrying (FLOOD_WAIT, RATE_LIMITED)."
    )


class OkReply(BaseModel):
    ok: Literal[True] = True
    data: Any = None


class ErrorReply(BaseModel):
    ok: Literal[False] = False
    error: ErrorBody


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def error(
    code: ErrorCode,
    message: str,
    details: Any | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code.value, "message": message}
    if details is not None:
        body["details"] = details
    if retry_after is not None:
        body["retry_after"] = retry_after
    return {"ok": False, "error": body}


def parse_reply(raw: dict[str, Any]) -> OkReply | ErrorReply:
    if raw.get("ok") is True:
        return OkReply.model_validate(raw)
    return ErrorReply.model_validate(raw)


# --- the seed's IPC envelope -------------------------------------------------


class IpcRequest(BaseModel):
    """`{command, payload, requestId}` as the seed sends it; all three are required (a reply is matched
    to its request by `requestId`, so an envelope without one is refused, not answered anonymously)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    command: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any]
    request_id: str = Field(alias="requestId", min_length=1, max_length=200)


class IpcResult(BaseModel):
    """`{event: "<command>-result", data, requestId}`."""

    model_config = ConfigDict(populate_by_name=True)

    event: str
    data: Any
    request_id: str | None = Field(None, alias="requestId")


class IpcErrorData(BaseModel):
    message: str
    code: ErrorCode
    details: Any | None = None
    retry_after: float | None = Field(None, alias="retryAfter")

    model_config = ConfigDict(populate_by_name=True)


class IpcError(BaseModel):
    """`{event: "error", data: {message, code}, requestId}`."""

    model_config = ConfigDict(populate_by_name=True)

    event: Literal["error"] = "error"
    data: IpcErrorData
    request_id: str | None = Field(None, alias="requestId")


def ipc_result(command: str, data: Any, request_id: str | None) -> dict[str, Any]:
    return {"event": f"{command}-result", "data": data, "requestId": request_id}


def ipc_error(
    code: ErrorCode,
    message: str,
    request_id: str | None,
    details: Any | None = None,
    retry_after: float | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"message": message, "code": code.value}
    if details is not None:
        data["details"] = details
    if retry_after is not None:
        data["retryAfter"] = retry_after
    return {"event": "error", "data": data, "requestId": request_id}
