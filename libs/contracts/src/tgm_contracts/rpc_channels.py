"""Internal calls the tailchat service offers to other services (issue 15).

- `receive-tailchat-callback` (`tgm.tailchat.rpc.receive-tailchat-callback.v1`): the gateway hands over
  one callback Tailchat POSTed to `/api/v1/channels/tailchat/{appId}/callback/{token}` — the app id and
  token from the path, the `X-TC-Payload-Type` header and the JSON body. The service checks the token
  first (the SHA-256 of the app's token, compared in constant time): an unknown app or a wrong token
  is NOT_FOUND, with nothing stored or published. Then it parses the body by kind, drops a duplicate
  delivery and publishes one channel-neutral event (`tgm_contracts.events_channels`). A body that is
  not what the kind says is VALIDATION_ERROR; a kind it does not know is accepted and ignored.

- `send-channel-reply` (`tgm.tailchat.rpc.send-channel-reply.v1`): `send-channel-message` for another
  service (campaign's trigger replies, analytics' reports), exactly once per `key`: the service keeps
  the message it sent under the key and answers a repeat with it, without sending again. A repeat
  while the first is under way is UNAVAILABLE with `retry_after`; a first attempt whose outcome the
  service cannot know (the server did not answer in time, the service stopped mid-call) is CONFLICT
  "outcome unknown" and is never sent again.

The token travels on the bus (the gateway has no way to check it: only the service holds the hash);
it is never logged or stored, and the request's repr hides it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import IdempotencyKey, Request, Response
from .command import Rpc
from .commands.channels import SendChannelMessageRequest
from .enums import Service
from .models.channels import ChannelMessageView, TailchatAppId


class TailchatCallbackRequest(Request):
    app_id: TailchatAppId
    token: str = Field(min_length=1, max_length=128, repr=False, description="The token of the URL path.")
    payload_type: str = Field(
        max_length=64, description="The `X-TC-Payload-Type` header (inbox, dm.start, buttonCallback)."
    )
    body: dict[str, Any] = Field(description="The callback's JSON body as Tailchat sent it.")


class TailchatCallbackReceived(Response):
    kind: str
    outcome: Literal["published", "duplicate", "ignored"] = Field(
        description="`published`: one event; `duplicate`: this delivery was seen before (nothing "
        "published); `ignored`: nothing to publish (a kind we do not handle, the bot's own message)."
    )
    event: str | None = Field(None, description="The event's name (published or duplicate).")
    event_id: str | None = None
    reason: str | None = Field(None, description="Why it was ignored.")


class ReceiveTailchatCallback(
    Rpc,
    name="receive-tailchat-callback",
    owner=Service.TAILCHAT,
    request=TailchatCallbackRequest,
    response=TailchatCallbackReceived,
):
    """One Tailchat callback, checked against the app's callback token, as channel-neutral events."""


class SendChannelReplyRequest(SendChannelMessageRequest):
    key: IdempotencyKey


class SendChannelReply(
    Rpc,
    name="send-channel-reply",
    owner=Service.TAILCHAT,
    request=SendChannelReplyRequest,
    response=ChannelMessageView,
):
    """Send as the app's bot once per key (a repeat answers the stored message)."""
