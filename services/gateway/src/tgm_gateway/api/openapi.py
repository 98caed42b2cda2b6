"""`/openapi.json` as the API really is: one operation per catalogue command, generated from the
registry, beside FastAPI's own routes (ops, IPC, SSE, keys).

Each `POST /api/v1/commands/<name>` has its contract's request schema (validation mode) as the body,
`{ok: true, data: <its response schema>}` (serialization mode) as 200, the error envelope under every
status the gateway can answer, its least role and owner in the description, its domain as the tag and
the Bearer scheme as its security. The models' schemas are generated together into
`components/schemas` (pydantic names them apart when two modules share a class name); the spec is
built once per process, on first request.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from tgm_contracts import REGISTRY, Command
from tgm_contracts.envelope import ErrorReply, IpcError

SECURITY_SCHEME = "bearer"
SCHEMAS = "#/components/schemas/{model}"

#: Statuses every command may answer besides 200, and when.
ERRORS: dict[int, str] = {
    400: "The body is not UTF-8 JSON or nests too deep (VALIDATION_ERROR).",
    401: "No key, or a key that does not authenticate (UNAUTHORIZED).",
    403: "The key's role is below the command's least role (FORBIDDEN).",
    404: "Something the payload names does not exist (NOT_FOUND).",
    409: "The change conflicts with the current state (CONFLICT).",
    413: "The body is larger than the gateway accepts (VALIDATION_ERROR).",
    422: "The payload does not match the command's request schema, or is larger than the bus carries "
    "(VALIDATION_ERROR).",
    429: "Rate limited: this key, failed authentications from this address, or Telegram's flood wait "
    "(RATE_LIMITED / FLOOD_WAIT, with retry_after).",
    500: "A bug in a service (INTERNAL).",
    502: "An upstream refused: Telegram (TELEGRAM_ERROR) or an AI provider's own key (UPSTREAM_AUTH).",
    503: "No service serves the command right now, or the bus is down (UNAVAILABLE).",
    504: "No answer within the command's deadline (TIMEOUT).",
}


def request_body(media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` of a route that reads its body itself (keys, uploads): the body it takes."""
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}


def _description(cmd: type[Command]) -> str:
    doc = (cmd.__doc__ or "").strip()
    facts = f"Least role: **{cmd.ROLE.label}**. Owner: `{cmd.OWNER.value}`, NATS subject `{cmd.SUBJECT}`." + (
        f" Deadline: {cmd.TIMEOUT:g} s." if cmd.TIMEOUT else ""
    )
    return f"{doc}\n\n{facts}" if doc else facts


def _operation(cmd: type[Command], request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    required = bool(cmd.Request.model_json_schema(by_alias=True).get("required"))
    doc = (cmd.__doc__ or "").strip()
    return {
        "operationId": cmd.NAME,
        "summary": doc.splitlines()[0] if doc else cmd.NAME,
        "description": _description(cmd),
        "tags": [cmd.DOMAIN.value],
        "security": [{SECURITY_SCHEME: []}],
        "x-tgm-role": cmd.ROLE.label,
        "requestBody": {
            "required": required,
            "content": {
                "application/json": {
                    "schema": request,
                    **({"example": cmd.EXAMPLE} if cmd.EXAMPLE is not None else {}),
                }
            },
        },
        "responses": {
            "200": {
                "description": "The command's result.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["ok", "data"],
                            "properties": {"ok": {"const": True}, "data": response},
                        }
                    }
                },
            },
            **{str(status): {"$ref": f"#/components/responses/E{status}"} for status in ERRORS},
        },
    }


def _merge(into: dict[str, Any], schemas: dict[str, Any]) -> None:
    for name, schema in schemas.items():
        if name in into and into[name] != schema:
            raise RuntimeError(f"two different schemas are both named {name!r} in the OpenAPI components")
        into[name] = schema


def command_spec(prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(paths, components) of every catalogue command, under `prefix` (/api/v1)."""
    commands = REGISTRY.all()
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (ErrorReply, "serialization"),
        (IpcError, "serialization"),
    ]
    for cmd in commands:
        wanted += [(cmd.Request, "validation"), (cmd.Response, "serialization")]
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), by_alias=True, ref_template=SCHEMAS)
    paths = {
        f"{prefix}/commands/{cmd.NAME}": {
            "post": _operation(cmd, refs[(cmd.Request, "validation")], refs[(cmd.Response, "serialization")])
        }
        for cmd in commands
    }
    error = {"application/json": {"schema": refs[(ErrorReply, "serialization")]}}
    ipc_error = {"application/json": {"schema": refs[(IpcError, "serialization")]}}
    components = {
        "schemas": defs.get("$defs", {}),
        "responses": {
            **{f"E{status}": {"description": text, "content": error} for status, text in ERRORS.items()},
            # the IPC route answers errors in the seed's envelope, `{event: "error", data, requestId}`
            **{f"IE{s}": {"description": text, "content": ipc_error} for s, text in ERRORS.items()},
        },
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key `tgm_<id>_<secret>` (`POST /api/v1/keys`; the first admin key "
                "is written to <data dir>/admin.key).",
            }
        },
    }
    return paths, components


def install(api: FastAPI, prefix: str) -> None:
    """Serve the generated spec at /openapi.json (and so /docs)."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            spec = get_openapi(
                title=api.title, version=api.version, description=api.description, routes=api.routes
            )
            paths, components = command_spec(prefix)
            spec["paths"] = {**spec.get("paths", {}), **paths}
            merged = spec.setdefault("components", {})
            for section, values in components.items():
                _merge(merged.setdefault(section, {}), values)
            for path, item in spec["paths"].items():
                if path.startswith(f"{prefix}/") and path not in paths:  # IPC, SSE, keys, exports, ...
                    for op in item.values():
                        # the catalogue is public like this spec; a Tailchat callback carries its
                        # app's token in the URL (Tailchat does not sign callbacks); the rest: the key
                        public = path == f"{prefix}/commands" or path.startswith(f"{prefix}/channels/")
                        op.setdefault("security", [] if public else [{SECURITY_SCHEME: []}])
                        # the same edge answers them: body limits, auth, rate limits, the bus
                        responses = op.setdefault("responses", {})
                        kind = "IE" if path == f"{prefix}/ipc" else "E"
                        for status in ERRORS:
                            responses.setdefault(
                                str(status), {"$ref": f"#/components/responses/{kind}{status}"}
                            )
            api.openapi_schema = spec
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
