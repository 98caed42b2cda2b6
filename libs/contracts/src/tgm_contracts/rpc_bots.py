"""Internal calls of Telegram bot accounts (issue 15), served by tg-session.

- `answer-telegram-callback` (`tgm.tg-session.rpc.answer-telegram-callback.v1`): the public
  `answer-callback` with `channel: telegram` is received by the tailchat service (it owns the one
  command) and handed here unchanged: `appId` is the bot (`tg-<id>`), `traceId` the press's callback
  query id, `userId` who pressed. Telegram keeps a press answerable for a short time only; a late or
  repeated answer is CONFLICT.
- `send-bot-reply` (`tgm.tg-session.rpc.send-bot-reply.v1`): `send-bot-message` with an idempotency
  key (a rule firing's or a job's id), for services answering `channel-message-received` with
  `channel: telegram`: one message per key, ever.
- `bot-send` / `bot-answer-callback` (`tgm.acct.<bot id>.….v1`): the same, run by the replica that
  holds the bot's connection (any replica takes the command and forwards it there).
"""

from __future__ import annotations

from .base import IdempotencyKey
from .command import AccountRpc, Rpc
from .commands.bots import BotMessageSent, SendBotMessageRequest
from .commands.channels import AnswerCallbackRequest, CallbackAnswered
from .enums import Service


class AnswerTelegramCallback(
    Rpc,
    name="answer-telegram-callback",
    owner=Service.TG_SESSION,
    request=AnswerCallbackRequest,
    response=CallbackAnswered,
):
    """Answer a press of a Telegram bot's inline button (answer-callback with channel telegram)."""


class SendBotReplyRequest(SendBotMessageRequest):
    key: IdempotencyKey


class SendBotReply(
    Rpc, name="send-bot-reply", owner=Service.TG_SESSION, request=SendBotReplyRequest, response=BotMessageSent
):
    """Send as a bot account once per key (a repeat answers the stored result, sends nothing)."""


class BotSend(AccountRpc, name="bot-send", request=SendBotReplyRequest, response=BotMessageSent):
    """Send at the replica holding the bot (`tgm.acct.<bot id>.bot-send.v1`)."""


class BotAnswerCallback(
    AccountRpc, name="bot-answer-callback", request=AnswerCallbackRequest, response=CallbackAnswered
):
    """Answer a press at the replica holding the bot (`tgm.acct.<bot id>.bot-answer-callback.v1`)."""
