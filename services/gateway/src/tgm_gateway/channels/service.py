"""Callbacks of chat channels (Tailchat today) arriving at the gateway, the one public HTTP edge, and
handed to the channel's service, which owns the apps, their tokens and the events.

The gateway holds no token or app of its own: whether `{token}` is an app's callback token only the
tailchat service can say (it keeps the SHA-256 and compares it in constant time), so the call
`receive-tailchat-callback` carries the token with the body, and the service checks it before it
parses, stores or publishes anything. What the gateway decides itself is cheap and says nothing about
apps: the path's shape (an id or token that could never be one is 404 at once, without a call) and
the body (the edges' one body reader, `api/body.py`, with `TGM_GATEWAY_CALLBACK_MAX_BODY_BYTES`,
64 KiB: 413, 400, 422).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from tgm_contracts import ErrorCode, validation_details
from tgm_contracts.rpc_channels import ReceiveTailchatCallback, TailchatCallbackRequest
from tgm_runtime import DomainError, NotFound

#: What an app id and a token of the tailchat service can look like (`TailchatAppId`; tokens are
#: `secrets.token_urlsafe(32)`, 43 characters).
_APP_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,128}")

Call = Callable[..., Awaitable[Any]]

#: The one answer to an unknown app, a wrong token and a path that could be neither.
NO_SUCH_CALLBACK = "no such callback"


class TailchatCallbacks:
    def __init__(self, call: Call, timeout: float = 10.0) -> None:
        self.call, self.timeout = call, timeout

    @staticmethod
    def plausible(app_id: str, token: str) -> bool:
        """Whether the path could name an app's callback at all (else 404 without asking)."""
        return bool(_APP_ID.fullmatch(app_id) and _TOKEN.fullmatch(token))

    async def receive(
        self, app_id: str, token: str, payload_type: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """The tailchat service's answer (`TailchatCallbackReceived` as JSON); a `DomainError` for a
        refusal: NOT_FOUND (no such app or token), VALIDATION_ERROR, UNAVAILABLE, TIMEOUT."""
        if not self.plausible(app_id, token):
            raise NotFound(NO_SUCH_CALLBACK)
        try:
            req = TailchatCallbackRequest(
                app_id=app_id, token=token, payload_type=payload_type[:64], body=body
            )
        except ValidationError as exc:
            raise DomainError(
                ErrorCode.VALIDATION_ERROR, "the callback body cannot be carried", validation_details(exc)
            ) from None
        answer = await self.call(ReceiveTailchatCallback, req, self.timeout)
        data: dict[str, Any] = answer.model_dump(mode="json", by_alias=True)
        return data
