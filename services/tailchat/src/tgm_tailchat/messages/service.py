"""Messages of an app's bot: send (group channel or DM), edit, delete, and answer button presses.

- Send: a DM by user id first asks `ensureDMWithUser` for the converse (it returns the existing DM or
  makes one). A group channel needs its `groupId` (without it the server looks for a DM and answers
  NOT_FOUND). A send is never retried: a repeat could post twice.
- Markup: rendered by `render.meta_of` (inline actions that call back carry the bot's user id, asked
  of the server once if the app was registered unchecked).
- Edit: Tailchat's `editMessage` replaces the message's whole `meta`, dropping whatever is not sent
  again — so the last meta we sent for each message is remembered (`MessageStore`) and sent again with
  the new text, keeping the inline actions (and reply keyboard) on the message. A `markup` replaces
  the parts it gives over that (`replyKeyboard: {remove: true}` alone keeps the inline actions: what
  seed 002's example D means to do); `clearMarkup` sends an empty meta. A message we did not send (or
  forgot, after `message_memory_days`) is edited with its text only, or with just the markup given.
- Reply (`send-channel-reply`, other services' sends): a send once per idempotency key. The key is
  claimed first (`SendStore`, a unique `_id`), then sent, then the message's view stored under it; a
  repeat answers that view without a call. A refusal by the server (or no connection) releases the
  claim: nothing was posted, a repeat may send. A timeout, or a claim left `sending` by a stopped
  service, is an unknown outcome: a repeat is CONFLICT "outcome unknown" rather than a possible
  second post (at most once where exactly once cannot be known). A repeat while the first is in
  flight is UNAVAILABLE with `retry_after` (its caller's redelivery then finds the stored view).
- Answer: `channel: telegram` (a Telegram bot account's press) is handed to tg-session
  (`answer-telegram-callback`): one public `answer-callback` for both channels. Otherwise
  `answerCallbackQuery` within 30 s of the press; a late or repeated answer is CONFLICT
  ("expired"). A press that came to us through the callback route (inbound/) is known with its arrival
  time: 30 s after it the answer is refused here, without a call (the server's trace started at the
  click, a little before, so it is surely gone). The server's per-bot answer budget is mirrored (`pacing.AnswerBudget`) so an answer
  past it is RATE_LIMITED at once, with `retry_after`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack
from tgm_contracts.commands import channels as cmd
from tgm_contracts.markup import MessageMarkup
from tgm_contracts.models.channels import ChannelMessageView
from tgm_contracts.rpc_channels import SendChannelReply, SendChannelReplyRequest
from tgm_runtime import Conflict, DomainError, Invalid
from tgm_runtime.routes import answers

from ..adapters.errors import TailchatError, malformed
from ..adapters.tailchat import (
    ANSWER_CALLBACK,
    DELETE_MESSAGE,
    EDIT_MESSAGE,
    ENSURE_DM,
    SEND_MESSAGE,
    AppCredentials,
    TailchatClient,
)
from ..pacing import AnswerBudget
from .render import meta_of, needs_bot
from .store import MessageStore, SendStore

log = logging.getLogger("tgm.tailchat.messages")

Credentials = Callable[[str], Awaitable[tuple[AppCredentials, dict[str, Any]]]]
BotUserId = Callable[[str], Awaitable[str]]
#: When a press (app id, trace id) reached us through the callback route; None when it did not.
PressArrived = Callable[[str, str], Awaitable[datetime | None]]
#: Hands an answer-callback of a Telegram press to tg-session (`answer-telegram-callback`).
TelegramAnswer = Callable[[cmd.AnswerCallbackRequest], Awaitable[cmd.CallbackAnswered]]
#: How long Tailchat keeps a press's traceId (its `callback:trace:` cache TTL).
PRESS_LIFETIME = timedelta(seconds=30)
#: A claimed send older than this, still not `sent`, was cut off (the service stopped mid-call).
SEND_UNDER_WAY = timedelta(seconds=120)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_view(app_id: str, msg: dict[str, Any], *, edited: bool = False) -> ChannelMessageView:
    meta = _object(msg.get("meta"))
    inline = _object(meta.get("inlineActions"))
    actions = inline["actions"] if isinstance(inline.get("actions"), list) else []
    keyboard = meta.get("replyKeyboard")
    return ChannelMessageView(
        app_id=app_id,
        message_id=str(msg["_id"]),
        converse_id=str(msg.get("converseId") or ""),
        group_id=str(msg["groupId"]) if msg.get("groupId") else None,
        content=str(msg.get("content") or ""),
        has_reply_keyboard=isinstance(keyboard, dict) and not keyboard.get("remove"),
        inline_action_ids=[str(a["id"]) for a in actions if isinstance(a, dict) and a.get("id")],
        edited=edited or bool(msg.get("isEdited")),
        created_at=_when(msg.get("createdAt")),
    )


class MessageService:
    def __init__(
        self,
        store: MessageStore,
        client: TailchatClient,
        credentials: Credentials,
        bot_user_id: BotUserId,
        budget: AnswerBudget,
        *,
        memory_days: int,
        press_arrived: PressArrived | None = None,
        sends: SendStore | None = None,
        telegram: TelegramAnswer | None = None,
    ) -> None:
        self.telegram = telegram
        self.store = store
        self.sends = sends
        self.client = client
        self.credentials = credentials
        self.bot_user_id = bot_user_id
        self.budget = budget
        self.memory = timedelta(days=memory_days)
        self.press_arrived = press_arrived

    @answers(cmd.SendChannelMessage)
    async def send(self, req: cmd.SendChannelMessageRequest) -> ChannelMessageView:
        creds, _ = await self.credentials(req.app_id)
        converse_id = req.converse_id
        if req.user_id is not None:
            dm = await self.client.call(creds, ENSURE_DM, {"userId": req.user_id})
            if not isinstance(dm, dict) or not dm.get("converseId"):
                raise malformed(ENSURE_DM.operation, "no converseId")
            converse_id = str(dm["converseId"])
        body: dict[str, Any] = {"converseId": converse_id, "content": req.text}
        if req.group_id:
            body["groupId"] = req.group_id
        meta: dict[str, Any] = {}
        if req.markup is not None:
            meta = meta_of(req.markup, await self._bot_for(req.app_id, req.markup))
            body["meta"] = meta
        msg = await self._message(creds, SEND_MESSAGE, body)
        await self._remember(req.app_id, msg, meta)
        return message_view(req.app_id, msg)

    @answers(SendChannelReply)
    async def reply(self, req: SendChannelReplyRequest) -> ChannelMessageView:
        assert self.sends is not None
        now = _now()
        prior = await self.sends.claim(req.app_id, req.key, now, now + self.memory)
        if prior is not None:
            return self._repeat(req, prior, now)
        try:
            view = await self.send(req)
        except DomainError as exc:
            if exc.code is not ErrorCode.TIMEOUT:  # refused or unreachable: nothing was posted
                await self.sends.release(req.app_id, req.key)
            raise
        await self.sends.sent(req.app_id, req.key, view.model_dump(mode="json", by_alias=True))
        return view

    def _repeat(
        self, req: SendChannelReplyRequest, prior: dict[str, Any], now: datetime
    ) -> ChannelMessageView:
        if prior.get("state") == "sent":
            return ChannelMessageView.model_validate(prior["view"])
        claimed = prior.get("claimed_at")
        if isinstance(claimed, datetime) and claimed.tzinfo is None:
            claimed = claimed.replace(tzinfo=UTC)
        if isinstance(claimed, datetime) and now - claimed < SEND_UNDER_WAY:
            raise DomainError(
                ErrorCode.UNAVAILABLE,
                f"send-channel-reply: the send of key {req.key!r} is under way",
                {"key": req.key},
                retry_after=5.0,
            )
        raise Conflict(
            f"send-channel-reply: the send of key {req.key!r} has an unknown outcome (no answer from the "
            "server, or the service stopped mid-call); it is not sent again",
            {"key": req.key},
        )

    @answers(cmd.EditChannelMessage)
    async def edit(self, req: cmd.EditChannelMessageRequest) -> ChannelMessageView:
        creds, _ = await self.credentials(req.app_id)
        known = await self.store.get(req.app_id, req.message_id)
        body: dict[str, Any] = {"messageId": req.message_id}
        if req.text is not None:
            body["content"] = req.text
        kept = dict(known.get("meta") or {}) if known is not None else None
        meta: dict[str, Any] | None = kept
        if req.clear_markup:
            meta = {}
        elif req.markup is not None:
            if req.text is None and known is not None:
                try:
                    req.markup.check_text(str(known.get("content") or ""))
                except ValueError as exc:
                    raise Invalid(f"markup: {exc}") from None
            meta = meta_of(req.markup, await self._bot_for(req.app_id, req.markup), keep=kept)
        if meta is not None:
            body["meta"] = meta
        msg = await self._message(creds, EDIT_MESSAGE, body)
        if meta is not None:
            await self._remember(req.app_id, msg, meta)
        return message_view(req.app_id, msg, edited=True)

    @answers(cmd.DeleteChannelMessage)
    async def delete(self, req: cmd.DeleteChannelMessageRequest) -> Ack:
        creds, _ = await self.credentials(req.app_id)
        done = await self.client.call(creds, DELETE_MESSAGE, {"messageId": req.message_id})
        await self.store.forget(req.app_id, req.message_id)
        return Ack(affected=1 if done is not False else 0)

    @answers(cmd.AnswerCallback)
    async def answer(self, req: cmd.AnswerCallbackRequest) -> cmd.CallbackAnswered:
        if req.channel == "telegram":  # a Telegram bot account's press: tg-session answers it
            if self.telegram is None:
                raise DomainError(ErrorCode.UNAVAILABLE, "Telegram presses are answered by tg-session")
            return await self.telegram(req)
        creds, _ = await self.credentials(req.app_id)
        arrived = await self.press_arrived(req.app_id, req.trace_id) if self.press_arrived else None
        if arrived is not None and datetime.now(UTC) - arrived > PRESS_LIFETIME:
            waited = (datetime.now(UTC) - arrived).total_seconds()
            raise Conflict(
                f"answerCallbackQuery: the button press expired (Tailchat keeps a press 30 s and one answer): "
                f"it arrived {waited:.0f} s ago",
                {"traceId": req.trace_id, "arrivedSecondsAgo": round(waited, 1)},
            )
        wait = self.budget.take(req.app_id)
        if wait is not None:
            raise DomainError(
                ErrorCode.RATE_LIMITED,
                f"answerCallbackQuery: this bot used its {self.budget.limit} answers; Tailchat takes more "
                f"after {self.budget.window:g} quiet seconds",
                {"limit": self.budget.limit},
                retry_after=round(wait, 3),
            )
        body = {
            "appSecret": creds.header,  # the server wants the composite secret in the body too
            "traceId": req.trace_id,
            "userId": req.user_id,
            "text": req.text,
            "show_alert": req.show_alert,
        }
        try:
            await self.client.call(creds, ANSWER_CALLBACK, body)
        except TailchatError as exc:
            # The server counts an answer last, after its trace, user and text checks; a refusal of
            # those (or no connection) did not move its counter. A timeout may have: keep it counted.
            if exc.code not in (ErrorCode.RATE_LIMITED, ErrorCode.TIMEOUT):
                self.budget.give_back(req.app_id)
            raise
        return cmd.CallbackAnswered(app_id=req.app_id, trace_id=req.trace_id)

    async def _bot_for(self, app_id: str, markup: MessageMarkup) -> str | None:
        """The bot's user id when the markup has actions that call it back (their `params.botId`)."""
        return await self.bot_user_id(app_id) if needs_bot(markup) else None

    async def forget_app(self, app_id: str) -> int:
        self.budget.forget(app_id)
        if self.sends is not None:
            await self.sends.forget_app(app_id)
        return await self.store.forget_app(app_id)

    async def _message(self, creds: AppCredentials, endpoint: Any, body: dict[str, Any]) -> dict[str, Any]:
        msg = await self.client.call(creds, endpoint, body)
        if not isinstance(msg, dict) or not msg.get("_id"):
            raise malformed(endpoint.operation, "no message _id")
        return msg

    async def _remember(self, app_id: str, msg: dict[str, Any], sent: dict[str, Any]) -> None:
        """Keep the meta as the server stored it (it sanitises reply keyboards on send), else as sent."""
        meta = msg["meta"] if isinstance(msg.get("meta"), dict) else sent
        fields = {
            "converse_id": msg.get("converseId"),
            "group_id": msg.get("groupId"),
            "content": msg.get("content"),
            "meta": meta,
            "updated_at": _now(),
        }
        await self.store.remember(app_id, str(msg["_id"]), fields, _now() + self.memory)
