"""`POST /api/v1/uploads?filename=<name>`: the raw bytes of a file (any content type; no JSON, no
base64) streamed into the `tgm_uploads` object store, answered `{"ok": true, "data": {"objectName",
"filename", "size", "sha256"}}` (201). The caller then names `objectName` in the command that takes the
file (`rag-add-document {"upload": objectName}`), within the hour the store keeps it.

Answers: 401/429 as every route, 403 below the operator role, 413 for a `Content-Length` or a body over
`TGM_GATEWAY_UPLOAD_MAX_BYTES` (30 MiB by default, the largest document ai reads; refused before or while
reading, nothing stored), 422 for an empty body, 503 when NATS is away. This is the way past the NATS
message limit (8 MB in deploy/, 1 MB by nats-server's default) for files; small ones may still travel
inline as `contentBase64`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import Response
from nats.errors import Error as NatsError
from starlette.requests import ClientDisconnect
from tgm_contracts import ErrorCode
from tgm_runtime import DomainError

from ..api.edge import caller, json_reply
from ..api.http import API
from ..api.openapi import request_body
from ..app import Runtime
from ..dispatch import Outcome, failure
from ..keys.handlers import NO_REQUEST_ID
from .service import TooLarge

log = logging.getLogger("tgm.gateway.uploads")


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def _refusal(exc: DomainError) -> Outcome:
    out = failure(exc.code, exc.message, exc.details, exc.retry_after)
    if isinstance(exc, TooLarge):
        out.status = 413
    return out


def register(api: FastAPI, runtime: Runtime) -> None:
    @api.post(
        f"{API}/uploads",
        tags=["uploads"],
        status_code=201,
        openapi_extra=request_body("application/octet-stream", {"type": "string", "format": "binary"}),
    )
    async def upload(request: Request, filename: str | None = None) -> Response:
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return json_reply(principal, NO_REQUEST_ID)
        uploads = runtime.app.uploads
        try:
            uploads.admit(principal, _declared(request))
            done = await uploads.take(filename, request.stream())
        except DomainError as exc:
            return json_reply(_refusal(exc), NO_REQUEST_ID)
        except ClientDisconnect:
            return json_reply(failure(ErrorCode.VALIDATION_ERROR, "the upload was cut off"), NO_REQUEST_ID)
        except (OSError, TimeoutError, NatsError) as exc:
            log.warning("upload not stored: %s", exc)
            return json_reply(
                failure(ErrorCode.UNAVAILABLE, "the upload store did not answer; try again"), NO_REQUEST_ID
            )
        data = {
            "objectName": done.object_name,
            "filename": done.filename,
            "size": done.size,
            "sha256": done.sha256,
        }
        return json_reply(Outcome(201, {"ok": True, "data": data}), NO_REQUEST_ID)
