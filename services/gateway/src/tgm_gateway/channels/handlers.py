"""`POST /api/v1/channels/tailchat/{appId}/callback/{token}`: where a Tailchat server sends its bot's
callbacks (`X-TC-Payload-Type` inbox, dm.start, buttonCallback; the bot's `callbackUrl`).

No API key: Tailchat does not sign callbacks, so the token in the path is the app's secret for them
(made by register-tailchat-app / rotate-tailchat-callback-token; only its hash is kept, by the tailchat
service). Answers, all in the error envelope of every route:

- 200 `{"ok": true, "data": {kind, outcome: published|duplicate|ignored, event, eventId, reason}}`;
- 404 NOT_FOUND "no such callback" for an unknown app, a wrong token or a path that could be neither
  (the same answer for all three; nothing stored or published);
- 413 / 400 / 422 for a body over `TGM_GATEWAY_CALLBACK_MAX_BODY_BYTES` (64 KiB), not UTF-8 JSON, or
  not what its kind says (checked by the service after the token);
- 503 / 504 when the tailchat service is not there or does not answer.

Tailchat ignores the answer (and never retries); the statuses are for whoever reads the logs and for
tests.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from tgm_contracts import ErrorCode
from tgm_contracts import envelope as env
from tgm_runtime import DomainError

from ..api.body import BodyLimits, read_object
from ..api.edge import json_reply
from ..api.http import API
from ..app import Runtime
from ..dispatch import Outcome, failure
from ..keys.handlers import NO_REQUEST_ID
from .service import NO_SUCH_CALLBACK

log = logging.getLogger("tgm.gateway.channels")

#: The route's path; the token part is never logged (uvicorn's access log is off under tgm-stack).
CALLBACK_ROUTE = f"{API}/channels/tailchat/{{app_id}}/callback/{{token}}"


def register(api: FastAPI, runtime: Runtime, limits: BodyLimits) -> None:
    @api.post(CALLBACK_ROUTE, tags=["channels"])
    async def tailchat_callback(app_id: str, token: str, request: Request) -> Response:
        """A Tailchat callback for the app `app_id`, authenticated by its callback token."""
        callbacks = runtime.app.channels
        if not callbacks.plausible(app_id, token):  # before the body is read: no call, nothing read
            return json_reply(failure(ErrorCode.NOT_FOUND, NO_SUCH_CALLBACK), NO_REQUEST_ID)
        body = await read_object(request, limits)
        if isinstance(body, Outcome):
            return json_reply(body, NO_REQUEST_ID)
        kind = request.headers.get("x-tc-payload-type", "")
        try:
            data = await callbacks.receive(app_id, token, kind, body)
        except DomainError as exc:
            if exc.code not in (ErrorCode.NOT_FOUND, ErrorCode.VALIDATION_ERROR):
                log.warning(
                    "tailchat callback for app %s not handled: %s %s", app_id, exc.code.value, exc.message
                )
            return json_reply(failure(exc.code, exc.message, exc.details, exc.retry_after), NO_REQUEST_ID)
        return JSONResponse(env.ok(data))
