"""Callbacks from Tailchat, handed over by the gateway (`receive-tailchat-callback`, contracts
`rpc_channels.py`), published as channel-neutral events (`events_channels.py`).

In order: the token is checked (`AppService.callback_app`: constant time, NOT_FOUND for an unknown
app and a wrong token alike) before anything is parsed, stored or published; the body is parsed by
its kind (parse.py: `Invalid` when it is not what the kind says); the delivery is claimed in the
store (a duplicate is answered `duplicate` and not published); the event is published with its
derived id as `Nats-Msg-Id`. A publish that fails releases the claim and answers UNAVAILABLE, so a
repeat is not lost as a "duplicate".

*Decision:* the work is done inside the call rather than after answering: it is one lookup by id,
one insert and one publish (a few milliseconds), Tailchat waits for nothing in the answer anyway (it
ignores it, with no timeout), and answering after the publish means the gateway's answer says what
happened and a crash between answer and work cannot lose a delivery silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from tgm_contracts import Event
from tgm_contracts.rpc_channels import (
    ReceiveTailchatCallback,
    TailchatCallbackReceived,
    TailchatCallbackRequest,
)
from tgm_runtime import DomainError, Unavailable
from tgm_runtime.routes import answers

from ..apps.service import AppService
from .parse import Ignored, parse, press_key
from .store import DeliveryStore

log = logging.getLogger("tgm.tailchat.inbound")

Publish = Callable[[Event], Awaitable[None]]


class Callbacks:
    def __init__(self, store: DeliveryStore, apps: AppService, publish: Publish) -> None:
        self.store, self.apps, self.publish = store, apps, publish

    @answers(ReceiveTailchatCallback)
    async def receive(self, req: TailchatCallbackRequest) -> TailchatCallbackReceived:
        doc = await self.apps.callback_app(req.app_id, req.token)
        kind = req.payload_type
        bot_user_id = doc.get("bot_user_id") or await self.apps.bot_user_id(req.app_id)
        parsed = parse(kind, req.body, req.app_id, str(bot_user_id))
        if isinstance(parsed, Ignored):
            log.info("tailchat app %s: %s callback ignored: %s", req.app_id, kind[:64], parsed.reason)
            return TailchatCallbackReceived(kind=kind, outcome="ignored", reason=parsed.reason)
        event = parsed.event
        fields = {"kind": kind, "event_id": event.event_id, "trace_id": parsed.trace_id}
        claimed = await self.store.claim(req.app_id, parsed.key, fields, datetime.now(UTC))
        if claimed:
            try:
                await self.publish(event)
            except DomainError:
                await self.store.release(req.app_id, parsed.key)
                raise
            except Exception as exc:
                await self.store.release(req.app_id, parsed.key)
                raise Unavailable(f"the {event.NAME} event was not published: {exc}") from exc
        return TailchatCallbackReceived(
            kind=kind,
            outcome="published" if claimed else "duplicate",
            event=event.NAME,
            event_id=event.event_id,
        )

    async def forget_app(self, app_id: str) -> int:
        """A removed app's deliveries (its token is gone with it: nothing more can arrive)."""
        return await self.store.forget_app(app_id)

    async def press_arrived(self, app_id: str, trace_id: str) -> datetime | None:
        """When the press with this trace id reached us (answer-callback refuses it 30 s later)."""
        return await self.store.received_at(app_id, press_key(trace_id))
