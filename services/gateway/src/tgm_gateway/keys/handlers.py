"""The API-key routes: admin-only HTTP endpoints of the gateway itself, not catalogue commands."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from tgm_contracts import ErrorCode, Role, validation_details
from tgm_contracts import envelope as env

from ..api.edge import caller, json_reply, read_json
from ..api.http import API
from ..app import Runtime
from ..dispatch import failure

#: These routes carry no request id of their own; their replies say so.
NO_REQUEST_ID = "-"


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: str = Field(pattern="^(viewer|operator|admin)$")


def register(api: FastAPI, runtime: Runtime) -> None:
    async def refused(request: Request) -> JSONResponse | None:
        """The refusal when the caller is not an admin, else None."""
        principal = await caller(runtime, request)
        if principal is None:
            return json_reply(failure(ErrorCode.UNAUTHORIZED, "missing or invalid API key"), NO_REQUEST_ID)
        if principal.role < Role.ADMIN:
            return json_reply(
                failure(ErrorCode.FORBIDDEN, "managing API keys needs the admin role"), NO_REQUEST_ID
            )
        return None

    @api.get(f"{API}/keys", tags=["keys"])
    async def list_keys(request: Request) -> JSONResponse:
        denied = await refused(request)
        if denied is not None:
            return denied
        return JSONResponse(env.ok({"items": await runtime.app.keys.list()}))

    @api.post(f"{API}/keys", tags=["keys"])
    async def create_key(request: Request) -> JSONResponse:
        denied = await refused(request)
        if denied is not None:
            return denied
        body, bad = await read_json(request)
        if bad is not None:
            return json_reply(bad, NO_REQUEST_ID)
        try:
            spec = NewKey.model_validate(body)
        except ValidationError as exc:
            return json_reply(
                failure(ErrorCode.VALIDATION_ERROR, "invalid key request", validation_details(exc)),
                NO_REQUEST_ID,
            )
        key, view = await runtime.app.keys.create(spec.name, Role.parse(spec.role))
        return JSONResponse(env.ok({**view, "key": key}), status_code=201)

    @api.delete(f"{API}/keys/{{key_id}}", tags=["keys"])
    async def revoke_key(key_id: str, request: Request) -> JSONResponse:
        denied = await refused(request)
        if denied is not None:
            return denied
        if not await runtime.app.keys.revoke(key_id):
            return json_reply(failure(ErrorCode.NOT_FOUND, f"no key {key_id!r}"), NO_REQUEST_ID)
        return JSONResponse(env.ok({"id": key_id, "revoked": True}))
