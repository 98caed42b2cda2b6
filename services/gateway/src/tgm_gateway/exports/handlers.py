"""`GET /api/v1/exports/<objectName>`: an export a service put in the `tgm_exports` object store
(`ExportFile.objectName`), streamed to a caller whose key has at least the role the name starts with
(the least role of the command that made it).

The object is read from the store into a spooled temporary file (memory up to 8 MB, then disk) and sent
from there in 1 MB chunks, so a large export costs the gateway disk, not memory. Bigger than
`TGM_GATEWAY_EXPORT_MAX_BYTES` (1 GiB) is refused with 422 before it is read. Answers: 401/429 as
every route, 403 for a key below the export's role (audited), 404 for a name that is not an export or
is gone (exports are kept a day), 503 when NATS is away.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from nats.js.errors import ObjectNotFoundError
from starlette.concurrency import iterate_in_threadpool
from tgm_contracts import ErrorCode, streams
from tgm_contracts.models.analytics import MIME_TYPES
from tgm_runtime.exports import export_role

from ..api.edge import caller, json_reply
from ..api.http import API
from ..app import Runtime
from ..dispatch import Outcome, failure
from ..keys.handlers import NO_REQUEST_ID, audit

log = logging.getLogger("tgm.gateway.exports")

CHUNK = 1024 * 1024


def _chunks(spool: Any) -> Iterator[bytes]:
    try:
        spool.seek(0)
        while block := spool.read(CHUNK):
            yield block
    finally:
        spool.close()


def register(api: FastAPI, runtime: Runtime, max_bytes: int) -> None:
    @api.get(f"{API}/exports/{{object_name:path}}", tags=["exports"])
    async def download_export(object_name: str, request: Request) -> Response:
        principal = await caller(runtime, request)
        if isinstance(principal, Outcome):
            return json_reply(principal, NO_REQUEST_ID)
        role = export_role(object_name) if len(object_name) <= 512 else None
        if role is None:
            return json_reply(failure(ErrorCode.NOT_FOUND, "no such export"), NO_REQUEST_ID)
        if principal.role < role:
            audit(runtime, principal, f"GET {API}/exports", ErrorCode.FORBIDDEN.value, target=object_name)
            return json_reply(
                failure(ErrorCode.FORBIDDEN, f"this export needs the {role.label} role"), NO_REQUEST_ID
            )
        try:
            store = await runtime.object_store(streams.EXPORTS)
            try:
                info = await store.get_info(object_name)
            except ObjectNotFoundError:
                return json_reply(
                    failure(ErrorCode.NOT_FOUND, "no such export (exports are kept for a day)"),
                    NO_REQUEST_ID,
                )
            if info.size is not None and info.size > max_bytes:
                return json_reply(
                    failure(
                        ErrorCode.VALIDATION_ERROR,
                        f"this export is {info.size} bytes, over this gateway's download limit of {max_bytes}",
                        {"size": info.size, "limit": max_bytes},
                    ),
                    NO_REQUEST_ID,
                )
            # closed by _chunks once sent, or below when the read fails
            spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
            try:
                await store.get(object_name, writeinto=spool)
            except BaseException:
                spool.close()
                raise
        except ObjectNotFoundError:
            return json_reply(failure(ErrorCode.NOT_FOUND, "no such export"), NO_REQUEST_ID)
        except (OSError, TimeoutError) as exc:
            log.warning("export %s not read: %s", object_name, exc)
            return json_reply(
                failure(ErrorCode.UNAVAILABLE, "the export store did not answer; try again"), NO_REQUEST_ID
            )
        filename = object_name.rsplit("/", 1)[-1]
        fmt = filename.rsplit(".", 1)[-1]
        headers = {
            "content-disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "content-length": str(info.size),
        }
        return StreamingResponse(
            iterate_in_threadpool(_chunks(spool)),
            media_type=MIME_TYPES.get(fmt, "application/octet-stream"),
            headers=headers,
        )
