"""`GET /api/v1/audit`: the audit trail for admins, newest first (`limit` 1–500, `cursor`, and the
filters `command` and `keyId`). An HTTP endpoint of the gateway like the key routes, not a catalogue
command: the trail is the gateway's own record of what passed through it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from tgm_contracts import ErrorCode, validation_details
from tgm_contracts import envelope as env
from tgm_runtime import DomainError

from ..api.edge import json_reply
from ..api.http import API
from ..app import Runtime
from ..dispatch import failure
from ..keys.handlers import NO_REQUEST_ID, admin


class AuditQuery(BaseModel):
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=1000)
    command: str | None = Field(None, min_length=1, max_length=200)
    key_id: str | None = Field(None, alias="keyId", min_length=1, max_length=100)


def register(api: FastAPI, runtime: Runtime) -> None:
    @api.get(f"{API}/audit", tags=["audit"])
    async def audit_trail(request: Request) -> Response:
        principal = await admin(runtime, request, "reading the audit trail")
        if isinstance(principal, Response):
            return principal
        try:
            query = AuditQuery.model_validate(dict(request.query_params))
        except ValidationError as exc:
            return json_reply(
                failure(ErrorCode.VALIDATION_ERROR, "invalid audit query", validation_details(exc)),
                NO_REQUEST_ID,
            )
        try:
            page = await runtime.app.dispatcher.audit.page(
                query.limit, query.cursor, query.command, query.key_id
            )
        except DomainError as exc:
            return json_reply(failure(exc.code, exc.message, exc.details), NO_REQUEST_ID)
        return JSONResponse(env.ok(page))
