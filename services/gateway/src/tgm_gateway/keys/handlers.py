"""The API-key routes: HTTP endpoints of the gateway itself, not catalogue commands. Managing keys
(list, create, revoke) is for admins; `GET /keys/me` ("who am I": the calling key's id, name and
role, never its secret) answers any valid key, so a client learns its role without side effects."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from tgm_contracts import ErrorCode, Role, validation_details
from tgm_contracts import envelope as env

from ..api.body import BodyLimits, read_object
from ..api.edge import caller, json_reply
from ..api.http import API
from ..api.openapi import request_body
from ..app import Runtime
from ..dispatch import Outcome, failure
from .service import Principal

#: These routes carry no request id of their own; their replies say so.
NO_REQUEST_ID = "-"


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(viewer|operator|admin)$")


async def admin(runtime: Runtime, request: Request, what: str) -> Principal | Response:
    """The calling admin, or the refusal to answer (no key, a bad key, a role below admin; the
    refusal of a valid key is audited)."""
    principal = await caller(runtime, request)
    if isinstance(principal, Outcome):
        return json_reply(principal, NO_REQUEST_ID)
    if principal.role < Role.ADMIN:
        audit(runtime, principal, f"{request.method} {request.url.path}", ErrorCode.FORBIDDEN.value)
        return json_reply(failure(ErrorCode.FORBIDDEN, f"{what} needs the admin role"), NO_REQUEST_ID)
    return principal


def audit(runtime: Runtime, principal: Principal, what: str, code: str, target: str | None = None) -> None:
    runtime.app.dispatcher.audit.record(principal, what, code, target=target)


def register(api: FastAPI, runtime: Runtime, limits: BodyLimits) -> None:

    @api.get(f"{API}/keys/me", tags=["keys"])
    async def who_am_i(request: Request) -> Response:
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return json_reply(principal, NO_REQUEST_ID)
        return JSONResponse(env.ok(principal.view()))

    @api.get(f"{API}/keys", tags=["keys"])
    async def list_keys(request: Request) -> Response:
        principal = await admin(runtime, request, "managing API keys")
        if isinstance(principal, Response):
            return principal
        return JSONResponse(env.ok({"items": await runtime.app.keys.list()}))

    @api.post(
        f"{API}/keys",
        tags=["keys"],
        status_code=201,
        openapi_extra=request_body("application/json", NewKey.model_json_schema()),
    )
    async def create_key(request: Request) -> Response:
        principal = await admin(runtime, request, "managing API keys")
        if isinstance(principal, Response):
            return principal
        body = await read_object(request, limits)
        if isinstance(body, Outcome):
            return json_reply(body, NO_REQUEST_ID)
        try:
            spec = NewKey.model_validate(body)
        except ValidationError as exc:
            return json_reply(
                failure(ErrorCode.VALIDATION_ERROR, "invalid key request", validation_details(exc)),
                NO_REQUEST_ID,
            )
        key, view = await runtime.app.keys.create(spec.name, Role.parse(spec.role))
        audit(runtime, principal, "create-api-key", "OK", target=f"{view['id']} ({spec.role})")
        return JSONResponse(env.ok({**view, "key": key}), status_code=201)

    @api.delete(f"{API}/keys/{{key_id}}", tags=["keys"])
    async def revoke_key(key_id: str, request: Request) -> Response:
        principal = await admin(runtime, request, "managing API keys")
        if isinstance(principal, Response):
            return principal
        if not await runtime.app.keys.revoke(key_id):
            audit(runtime, principal, "revoke-api-key", ErrorCode.NOT_FOUND.value, target=key_id[:100])
            return json_reply(failure(ErrorCode.NOT_FOUND, f"no key {key_id!r}"), NO_REQUEST_ID)
        audit(runtime, principal, "revoke-api-key", "OK", target=key_id)
        return JSONResponse(env.ok({"id": key_id, "revoked": True}))
