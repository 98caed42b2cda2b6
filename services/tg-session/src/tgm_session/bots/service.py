"""Telegram bot accounts (issue 15): add by token, run each on one replica, publish what users do,
send with keyboards, answer button presses.

- **Add**: the token is tried at once (`auth.importBotAuthorization`); the bot's id, username and the
  session Telegram gave are stored with the token, both sealed (`enc:v1`, bound to the bot's id). The
  token is never logged, returned or put in an event. `bot_id` is `tg-<Telegram user id>`.
- **Run**: one live connection per bot, on the replica holding the lease `bot.<bot id>` (the account
  lease bucket: created, renewed every `tick`, released on stop). Any replica's tick claims a bot
  nobody holds; the holder serves `tgm.acct.<bot id>.bot-send|bot-answer-callback.v1`, so a command
  taken by another replica is forwarded there.
- **Receive** (the channel-neutral events, under tg-session's subjects: `events_channels`
  `TelegramBotMessageReceived` / `TelegramButtonPressed`): a user's message →
  `channel-message-received` (`channel: telegram`); a press of a
  callback button → `button-pressed` with the action id and params parsed from the callback data
  (`markup.parse_callback_data`, the same id and params a Tailchat press of that markup gives), or,
  for a `command` action (its data is the command), `channel-message-received` with the command as the
  text, as if the user had sent it (the press is answered at once, empty, to end the spinner). Event ids
  derive from the bot and the message or query id, so a repeat is one `Nats-Msg-Id`; they go out
  through the inbound outbox (kept while NATS is away).
- **Answer**: `answer-callback` with `channel: telegram` (handed over by the tailchat service as
  `answer-telegram-callback`) → `messages.setBotCallbackAnswer` at the holder; a press Telegram no
  longer knows (answered, or too old) is CONFLICT.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tgm_contracts import ErrorCode
from tgm_contracts.base import Ack, Empty, utcnow
from tgm_contracts.commands import bots as cmd
from tgm_contracts.commands.channels import AnswerCallbackRequest, CallbackAnswered
from tgm_contracts.events_channels import TelegramBotMessageReceived, TelegramButtonPressed
from tgm_contracts.markup import parse_callback_data
from tgm_contracts.rpc_bots import (
    AnswerTelegramCallback,
    BotAnswerCallback,
    BotSend,
    SendBotReply,
    SendBotReplyRequest,
)
from tgm_runtime import CallContext, Conflict, DomainError, Invalid, NotFound, Unavailable
from tgm_runtime.routes import answers

from ..capabilities import Emit
from ..fleet.leases import Lease, LeaseLost
from ..fleet.relay import Relay
from ..fleet.serving import end_subscription
from ..ports import TelegramFailure, TelegramUnreachable
from ..vault import Vault
from .ports import BotClient, BotClientFactory, BotInbound, BotPress, BotProfile
from .store import BotStore

log = logging.getLogger("tgm.session.bots")

#: `async () -> (api_id, api_hash) | None`: the API credential bots log in with.
Credential = Callable[[], Awaitable[tuple[int, str] | None]]
#: Telegram errors that mean the token no longer works (revoked at BotFather).
TOKEN_DEAD = {
    "ACCESS_TOKEN_INVALID",
    "ACCESS_TOKEN_EXPIRED",
    "AUTH_KEY_UNREGISTERED",
    "SESSION_REVOKED",
    "USER_DEACTIVATED",
}


def bot_key(bot_id: str) -> str:
    return f"bot.{bot_id}"


def _event_id(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _telegram_error(exc: TelegramFailure) -> DomainError:
    if exc.is_flood:  # Telegram paces bots too (about one message a second per chat): retry later
        return DomainError(
            ErrorCode.FLOOD_WAIT,
            f"Telegram asks the bot to wait: {exc.full}",
            {"telegramError": exc.full, "method": exc.method},
            retry_after=float(exc.seconds or 1),
        )
    return DomainError(
        ErrorCode.TELEGRAM_ERROR,
        f"Telegram refused: {exc.full}",
        {"telegramError": exc.full, "method": exc.method},
    )


@dataclass
class LiveBot:
    bot_id: str
    profile: BotProfile
    client: BotClient
    lease: Lease
    sub: Any = None


class BotFleet:
    def __init__(
        self,
        *,
        store: BotStore,
        vault: Vault,
        relay: Relay,
        credential: Credential,
        clients: BotClientFactory,
        emit: Emit,
    ) -> None:
        self.store = store
        self.vault = vault
        #: This replica's leases `bot.<id>`, what it serves (the bots it runs) and forwards.
        self.relay = relay
        self.credential = credential
        self.clients = clients
        self.emit = emit
        self.live: dict[str, LiveBot] = {}
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ commands

    async def _api(self) -> tuple[int, str]:
        found = await self.credential()
        if not found:
            raise Invalid("no API credential: add one (add-api-credential) before adding a bot")
        return found

    @answers(cmd.AddTelegramBot)
    async def add(self, req: cmd.AddTelegramBotRequest) -> cmd.TelegramBotView:
        token = req.token.get_secret_value()
        api_id, api_hash = await self._api()
        client = self.clients(None, api_id, api_hash)
        try:
            profile = await client.start(token)
            session = client.session_string()
        except TelegramFailure as exc:
            if exc.name in TOKEN_DEAD:
                raise Invalid("Telegram refused the bot token (check it at @BotFather)") from None
            raise _telegram_error(exc) from None
        except TelegramUnreachable as exc:
            raise Unavailable(f"Telegram is not reachable: {exc}") from None
        finally:
            await client.disconnect()
        bot_id = f"tg-{profile.user_id}"
        if token.partition(":")[0] != str(profile.user_id):
            raise Invalid("the token belongs to another bot than Telegram says")
        existing = await self.store.bots.get(bot_id)
        if existing is not None and bot_id in self.live:
            await self._stop(bot_id)  # re-keyed: run it again with the new token and session
        doc = {
            "_id": bot_id,
            "telegram_user_id": profile.user_id,
            "username": profile.username,
            "name": req.name or profile.name,
            "token": self.vault.seal(token, f"bot:{bot_id}:token"),
            "session": self.vault.seal(session, f"bot:{bot_id}:session"),
            "status": "active",
            "last_error": None,
            "added_at": (existing or {}).get("added_at") or utcnow(),
        }
        await self.store.bots.col.replace_one({"_id": bot_id}, doc, upsert=True)
        log.info("bot %s (@%s) added", bot_id, profile.username)
        await self.tick()  # run it now if no replica does
        return await self._view(doc)

    @answers(cmd.GetTelegramBots)
    async def list(self, req: Empty) -> cmd.TelegramBotList:
        docs = await self.store.bots.find({}, sort=[("added_at", 1)])
        return cmd.TelegramBotList(items=[await self._view(d) for d in docs])

    @answers(cmd.RemoveTelegramBot)
    async def remove(self, req: cmd.RemoveTelegramBotRequest) -> Ack:
        if await self.store.bots.get(req.bot_id) is None:
            raise NotFound(f"no bot {req.bot_id}")
        await self.store.forget(req.bot_id)
        if req.bot_id in self.live:
            await self._stop(req.bot_id)
        # A bot held elsewhere: its holder's next tick finds the record gone and lets it go.
        return Ack(affected=1)

    @answers(cmd.SendBotMessage)
    async def send(self, req: cmd.SendBotMessageRequest) -> cmd.BotMessageSent:
        body = SendBotReplyRequest(**req.model_dump(), key=f"cmd-{uuid.uuid4().hex}")
        return await self._at_holder(BotSend, req.bot_id, body, self.send_here)

    @answers(SendBotReply)
    async def send_reply(self, req: SendBotReplyRequest) -> cmd.BotMessageSent:
        return await self._at_holder(BotSend, req.bot_id, req, self.send_here)

    @answers(AnswerTelegramCallback)
    async def answer(self, req: AnswerCallbackRequest) -> CallbackAnswered:
        if req.channel != "telegram":
            raise Invalid("answer-telegram-callback answers presses with channel telegram")
        return await self._at_holder(BotAnswerCallback, req.app_id, req, self.answer_here)

    # ------------------------------------------------------------------ at the holder

    async def _at_holder(self, rpc: Any, bot_id: str, req: Any, here: Callable[[Any], Awaitable[Any]]) -> Any:
        if bot_id in self.live:
            return await here(req)
        if await self.store.bots.get(bot_id) is None:
            raise NotFound(f"no bot {bot_id}")
        if await self.relay.leases.holder(bot_key(bot_id)) is None:
            raise Unavailable(f"bot {bot_id} is not running on any replica (see get-telegram-bots)")
        body = req.model_dump(mode="json", by_alias=True)
        return await self.relay.forward(rpc.subject(bot_id), body, rpc.Response, 30.0)

    def _held(self, bot_id: str) -> LiveBot:
        live = self.live.get(bot_id)
        if live is None:
            raise Unavailable(f"bot {bot_id} moved to another replica; try again")
        return live

    async def send_here(self, req: SendBotReplyRequest) -> cmd.BotMessageSent:
        live = self._held(req.bot_id)
        seen = await self.store.sends.claim(req.bot_id, req.key)
        if seen is not None:
            if seen.get("state") == "sent":
                return cmd.BotMessageSent.model_validate({**seen["result"], "duplicate": True})
            raise Conflict(
                "a send with this key is under way or its outcome is unknown; it is not sent again"
            )
        chat_id = int(req.chat_id)
        try:
            ids = await live.client.send(chat_id, req.text, req.markup, req.reply_to_message_id)
        except TelegramFailure as exc:
            await self.store.sends.release(req.bot_id, req.key)  # refused: nothing was sent
            await self._note_failure(req.bot_id, exc)
            raise _telegram_error(exc) from None
        inline = req.markup.inline if req.markup is not None else None
        kinds = {a.id: a.type.value for a in inline.actions} if inline is not None else {}
        await self.store.messages.remember(req.bot_id, chat_id, ids, kinds)
        result = cmd.BotMessageSent(
            bot_id=req.bot_id, chat_id=req.chat_id, message_ids=ids, inline_action_ids=list(kinds)
        )
        await self.store.sends.done(req.bot_id, req.key, result.model_dump(mode="json"))
        return result

    async def answer_here(self, req: AnswerCallbackRequest) -> CallbackAnswered:
        live = self._held(req.app_id)
        try:
            query_id = int(req.trace_id)
        except ValueError:
            raise Invalid("a Telegram press's traceId is its callback query id (a number)") from None
        try:
            await live.client.answer(query_id, req.text, req.show_alert, None, 0)
        except TelegramFailure as exc:
            if exc.name == "QUERY_ID_INVALID":
                raise Conflict(
                    "setBotCallbackAnswer: the button press expired or was answered already",
                    {"traceId": req.trace_id},
                ) from None
            raise _telegram_error(exc) from None
        return CallbackAnswered(app_id=req.app_id, trace_id=req.trace_id)

    # ------------------------------------------------------------------ running bots

    async def tick(self) -> None:
        """Renew what this replica holds, let go of removed bots, claim bots nobody runs."""
        async with self._lock:
            for bot_id, live in list(self.live.items()):
                try:
                    live.lease = await self.relay.leases.renew(live.lease)
                except LeaseLost:
                    log.warning("bot %s: lease lost, stopping", bot_id)
                    await self._stop(bot_id, release=False)
            docs = await self.store.bots.find({"status": "active"})
            wanted = {d["_id"]: d for d in docs}
            for bot_id in [b for b in self.live if b not in wanted]:
                await self._stop(bot_id)
            for bot_id, doc in wanted.items():
                if bot_id not in self.live:
                    await self._try_run(doc)

    async def _try_run(self, doc: dict[str, Any]) -> None:
        bot_id = doc["_id"]
        lease = await self.relay.claim(bot_key(bot_id))
        if lease is None:
            return
        found = await self.credential()
        if not found:
            await self.relay.leases.release(lease)
            return
        client: BotClient | None = None
        try:
            token = self.vault.open(doc["token"], f"bot:{bot_id}:token")
            session = self.vault.open(doc["session"], f"bot:{bot_id}:session") if doc.get("session") else None
            client = self.clients(session, *found)
            profile = await client.start(token)
        except Exception as exc:  # this bot does not start; the others still do
            if client is not None:
                await client.disconnect()
            await self.relay.leases.release(lease)
            if isinstance(exc, TelegramFailure):
                await self._note_failure(bot_id, exc)
            log.warning(
                "bot %s did not start: %s",
                bot_id,
                type(exc).__name__ if not isinstance(exc, TelegramFailure | TelegramUnreachable) else exc,
            )
            return
        live = LiveBot(bot_id, profile, client, lease)
        client.on_message(lambda m: self._received(live, m))
        client.on_press(lambda p: self._pressed(live, p))
        live.sub = await self.relay.serve_account(bot_id, self._routes())
        self.live[bot_id] = live
        await self.store.bots.set(bot_id, {"last_error": None, "username": profile.username})
        log.info("bot %s running here", bot_id)

    def _routes(self) -> dict[str, tuple[Any, Any]]:
        async def send(req: SendBotReplyRequest, ctx: CallContext[Any]) -> cmd.BotMessageSent:
            return await self.send_here(req)

        async def answer(req: AnswerCallbackRequest, ctx: CallContext[Any]) -> CallbackAnswered:
            return await self.answer_here(req)

        return {BotSend.NAME: (BotSend, send), BotAnswerCallback.NAME: (BotAnswerCallback, answer)}

    async def _note_failure(self, bot_id: str, exc: TelegramFailure) -> None:
        fields: dict[str, Any] = {"last_error": exc.full}
        if exc.name in TOKEN_DEAD:
            fields["status"] = "unauthorized"
        await self.store.bots.set(bot_id, fields)

    async def _stop(self, bot_id: str, *, release: bool = True) -> None:
        live = self.live.pop(bot_id, None)
        if live is None:
            return
        await live.client.disconnect()
        lease = live.lease
        let_go = (lambda: self.relay.leases.release(lease)) if release else None
        await end_subscription(self.relay.spawn, live.sub, let_go, now=True)

    async def stop(self) -> None:
        async with self._lock:
            for bot_id in list(self.live):
                await self._stop(bot_id)

    async def _view(self, doc: dict[str, Any]) -> cmd.TelegramBotView:
        return cmd.TelegramBotView(
            bot_id=doc["_id"],
            telegram_user_id=doc["telegram_user_id"],
            username=doc.get("username"),
            name=doc.get("name") or doc["_id"],
            status=doc.get("status", "active"),
            held_by=await self.relay.leases.holder(bot_key(doc["_id"])),
            added_at=doc.get("added_at"),
            last_error=doc.get("last_error"),
        )

    # ------------------------------------------------------------------ inbound

    def _message_event(
        self, live: LiveBot, m: BotInbound, text: str, message_id: str
    ) -> TelegramBotMessageReceived:
        username = live.profile.username
        mentioned = m.is_dm or bool(username and f"@{username.lower()}" in text.lower())
        return TelegramBotMessageReceived(
            event_id=_event_id("telegram", live.bot_id, m.chat_id, message_id),
            channel="telegram",
            app_id=live.bot_id,
            bot_user_id=str(live.profile.user_id),
            converse_id=str(m.chat_id),
            group_id=None if m.is_dm else str(m.chat_id),
            message_id=message_id,
            sender_id=str(m.sender_id),
            sender_name=m.sender_name,
            text=text,
            raw_text=text,
            bot_mentioned=mentioned,
            is_dm=m.is_dm,
        )

    async def _received(self, live: LiveBot, m: BotInbound) -> None:
        if m.sender_id == live.profile.user_id or not m.text:
            return
        await self.emit(self._message_event(live, m, m.text, str(m.message_id)))

    async def _pressed(self, live: LiveBot, p: BotPress) -> None:
        text = p.data.decode("utf-8", "replace")
        if text.startswith("/"):
            # A command action: as if the user had sent the command.
            with contextlib.suppress(TelegramFailure, TelegramUnreachable):
                await live.client.answer(p.query_id, None, False, None, 0)
            inbound = BotInbound(p.chat_id, p.message_id, p.user_id, None, text, p.is_dm, 0.0)
            await self.emit(self._message_event(live, inbound, text, f"cbq-{p.query_id}"))
            return
        try:
            action_id, params = parse_callback_data(p.data)
        except ValueError:
            log.info("bot %s: a press with callback data we did not make, ignored", live.bot_id)
            return
        kind = await self.store.messages.kind_of(live.bot_id, p.chat_id, p.message_id, action_id)
        await self.emit(
            TelegramButtonPressed(
                event_id=_event_id("telegram-press", live.bot_id, p.query_id),
                channel="telegram",
                app_id=live.bot_id,
                bot_user_id=str(live.profile.user_id),
                action_id=action_id,
                kind="modal" if kind == "modal" else "invoke",
                params=params,
                trace_id=str(p.query_id),
                user_id=str(p.user_id),
                converse_id=str(p.chat_id),
                group_id=None if p.is_dm else str(p.chat_id),
                message_id=str(p.message_id),
                is_dm=p.is_dm,
                pressed_at_ms=int(utcnow().timestamp() * 1000),
            )
        )
