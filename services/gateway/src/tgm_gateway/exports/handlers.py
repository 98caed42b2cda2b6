"""`GET /api/v1/exports/<objectName>`: an export a service put in the `tgm_exports` object store
(`ExportFile.objectName`), streamed to a caller whose key has at least the export's role
(service.py decides; store.py reads the object into a spooled file, so a large export costs the
gateway disk, not memory, and is sent in 1 MB chunks). Bigger than `TGM_GATEWAY_EXPORT_MAX_BYTES`
(1 GiB) is refused with 422 before it is read. Answers: 401/429 as every route, 403 for a key below
the export's role (audited), 404 for a name that is not an export or is gone (exports are kept a
day), 503 when NATS is away.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import IO
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool
from tgm_contracts import ErrorCode
from tgm_contracts.models.analytics import MIME_TYPES
from tgm_runtime import DomainError

from ..api.edge import caller, json_reply
from ..api.http import API
from ..app import Runtime
from ..dispatch import Outcome, failure
from ..keys.handlers import NO_REQUEST_ID, audit

log = logging.getLogger("tgm.gateway.exports")

CHUNK = 1024 * 1024


def _chunks(body: IO[bytes]) -> Iterator[bytes]:
    try:
        while block := body.read(CHUNK):
            yield block
    finally:
        body.close()


def register(api: FastAPI, runtime: Runtime) -> None:
    @api.get(f"{API}/exports/{{object_name:path}}", tags=["exports"])
    async def download_export(object_name: str, request: Request) -> Response:
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return json_reply(principal, NO_REQUEST_ID)
        try:
            download = await runtime.app.exports.open(principal, object_name)
        except DomainError as exc:
            if exc.code is ErrorCode.FORBIDDEN:
                audit(runtime, principal, f"GET {API}/exports", exc.code.value, target=object_name[:200])
            return json_reply(failure(exc.code, exc.message, exc.details), NO_REQUEST_ID)
        except (OSError, TimeoutError) as exc:
            log.warning("export %s not read: %s", object_name[:200], exc)
            return json_reply(
                failure(ErrorCode.UNAVAILABLE, "the export store did not answer; try again"), NO_REQUEST_ID
            )
        fmt = download.filename.rsplit(".", 1)[-1]
        return StreamingResponse(
            iterate_in_threadpool(_chunks(download.body)),
            media_type=MIME_TYPES.get(fmt, "application/octet-stream"),
            headers={
                "content-disposition": f"attachment; filename*=UTF-8''{quote(download.filename)}",
                "content-length": str(download.size),
            },
        )
