"""Tailchat's callback bodies as channel-neutral events (`tgm_contracts.events_channels`): pure
functions, no I/O, so every shape the server sends is tested directly (test_inbound_parse_unit.py).

The kinds, by `X-TC-Payload-Type` (the fork blooworet/tailchat; shared/reference/outside-platforms.md
§1.4, as the fake of tools/fakes sends them):

- `inbox`, two body shapes: the whole inbox document `{_id, userId, type: "message", payload, readed,
  createdAt, updatedAt, __v}` (a DM, or a group message naming the bot) and, for a bot with
  `receiveAllGroupMessages`, `{userId, type, payload}` only. `payload` is `{groupId?, converseId,
  messageId, messageAuthor, messageSnippet, messagePlainContent?}`. The snippet is the raw content:
  mentions are `[at=<userId>]name[/at]`, resolved here to `mentions` and written `@name` in `text`;
  the plain content, when the sender gave one, is the text. An E2EE message's snippet is "加密消息"
  and it has no plain content: `encrypted: true` with an empty text. *Decision:* the bot's own message
  (a receive-all bot hears itself: the server checks no author) is ignored, not published.
  `botMentioned` is true when the markup names the bot, or for the whole document in a group (the
  server sends that shape to a group's bots only when `meta.mentions` names them, which a client may
  fill without markup).
- `dm.start`: `{type, payload: {botUserId, fromUserId, converseId, params?, timestamp}}`; `params` is
  the deep-link string (start button, deep link) or `{text: arg}` (a typed `/start arg`).
- `buttonCallback`: `{type, payload: {messageAuthor (who pressed), converseId?, groupId?,
  originalMessageId?, actionId, type: invoke|modal, params, traceId?, ts}}`. `params` are the
  button's as our renderer sent them (messages/render.py), so the renderer's additions (`botId`,
  `priority`, `disabled`, `confirm`, `title`, `content`) are taken out again: what is left is the
  markup's own params. Tailchat sends params as an object; the Telegram renderer's callback data
  (`markup.callback_data`, read back with `parse_callback_data`) is for the Telegram bot accounts, whose
  presses become the same event.

Each event comes with its dedupe key: the app and the message id (inbox, either shape: one message is
one event), the trace id (a press; without one, the message, action, presser and time), the converse,
person and timestamp (dm.start). The event id is derived from the key, so a repeated delivery has the
same id (JetStream's `Nats-Msg-Id`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from tgm_contracts.events import Event
from tgm_contracts.events_channels import ButtonPressed, ChannelDmStarted, ChannelMessageReceived, Mention
from tgm_runtime import Invalid

INBOX, DM_START, BUTTON = "inbox", "dm.start", "buttonCallback"
KINDS = (INBOX, DM_START, BUTTON)

#: What Tailchat puts in a snippet instead of an end-to-end encrypted message's text.
E2EE_SNIPPET = "加密消息"
#: `[at=<id>]name[/at]`; a bare `[at=<id>]` (some clients) has no name.
AT = re.compile(r"\[at=([^\]\s]+)\](?:([^\[]*)\[/at\])?")
#: What messages/render.py adds to an invoke/modal action's params.
RENDERED_PARAMS = frozenset({"botId", "priority", "disabled", "confirm", "title", "content"})


@dataclass(frozen=True)
class Parsed:
    event: Event
    key: str
    trace_id: str | None = None


@dataclass(frozen=True)
class Ignored:
    reason: str


def press_key(trace_id: str) -> str:
    """The dedupe key of a press that carried a trace id."""
    return f"button:{trace_id}"


def event_id(app_id: str, key: str) -> str:
    return hashlib.sha256(f"tailchat:{app_id}:{key}".encode()).hexdigest()[:32]


def _from(app_id: str, bot_user_id: str, key: str) -> dict[str, Any]:
    """What every inbound event starts with: its id (from the delivery's key, so a repeat is the same
    Nats-Msg-Id), the app and its bot."""
    return {"event_id": event_id(app_id, key), "app_id": app_id, "bot_user_id": bot_user_id}


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"the callback's {what} is not an object")
    return value


def _text(payload: dict[str, Any], key: str, *, required: bool = True, kind: str) -> str | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 256:
        raise Invalid(f"a {kind} callback needs payload.{key} (a string id)", {"field": f"payload.{key}"})
    return value


def _ms(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mentions_of(content: str) -> tuple[str, list[Mention]]:
    """The content with each `[at=id]name[/at]` written `@name` (`@id` without a name), and the people
    named, each once, in order."""
    found: dict[str, Mention] = {}

    def spoken(match: re.Match[str]) -> str:
        user_id, name = match.group(1), (match.group(2) or "").strip()
        found.setdefault(user_id, Mention(user_id=user_id, name=name))
        return "@" + (name or user_id)

    return AT.sub(spoken, content), list(found.values())


def parse(kind: str, body: dict[str, Any], app_id: str, bot_user_id: str) -> Parsed | Ignored:
    """One callback body as its event and dedupe key; `Invalid` when the body is not what `kind`
    says, `Ignored` for a kind we do not handle or a message of the bot itself."""
    if kind == INBOX:
        return _inbox(body, app_id, bot_user_id)
    if kind == DM_START:
        return _dm_start(body, app_id, bot_user_id)
    if kind == BUTTON:
        return _button(body, app_id, bot_user_id)
    return Ignored(f"payload type {kind[:64]!r} is not one we handle ({', '.join(KINDS)})")


def _inbox(body: dict[str, Any], app_id: str, bot_user_id: str) -> Parsed | Ignored:
    if body.get("type") != "message":
        return Ignored(f"inbox item of type {str(body.get('type'))[:32]!r}, not a message")
    payload = _obj(body.get("payload"), "payload")
    converse = _text(payload, "converseId", kind=INBOX)
    message_id = _text(payload, "messageId", kind=INBOX)
    author = _text(payload, "messageAuthor", kind=INBOX)
    group = _text(payload, "groupId", required=False, kind=INBOX)
    assert converse and message_id and author
    if author == bot_user_id:
        return Ignored("the bot's own message")
    snippet = payload.get("messageSnippet")
    snippet = snippet if isinstance(snippet, str) else ""
    plain = payload.get("messagePlainContent")
    encrypted = snippet == E2EE_SNIPPET and not isinstance(plain, str)
    spoken, mentions = mentions_of(snippet)
    if isinstance(plain, str) and plain.strip():
        spoken = plain
    whole = "_id" in body
    named = any(m.user_id == bot_user_id for m in mentions)
    event = ChannelMessageReceived(
        **_from(app_id, bot_user_id, f"inbox:{message_id}"),
        converse_id=converse,
        group_id=group,
        message_id=message_id,
        sender_id=author,
        text="" if encrypted else spoken,
        raw_text=snippet,
        mentions=mentions,
        bot_mentioned=named or (whole and group is not None),
        is_dm=group is None,
        encrypted=encrypted,
    )
    return Parsed(event, f"inbox:{message_id}")


def _dm_start(body: dict[str, Any], app_id: str, bot_user_id: str) -> Parsed:
    payload = _obj(body.get("payload"), "payload")
    converse = _text(payload, "converseId", kind=DM_START)
    person = _text(payload, "fromUserId", kind=DM_START)
    assert converse and person
    raw = payload.get("params")
    param: str | None = None
    params: dict[str, Any] | None = None
    if isinstance(raw, str):
        param = raw or None
    elif isinstance(raw, dict):
        params = raw
        param = raw["text"] if isinstance(raw.get("text"), str) and raw["text"] else None
    elif raw is not None:
        raise Invalid(
            "a dm.start callback's payload.params is a string or an object", {"field": "payload.params"}
        )
    stamp = _ms(payload.get("timestamp"))
    key = f"dm.start:{converse}:{person}:{stamp if stamp is not None else param}"
    event = ChannelDmStarted(
        **_from(app_id, bot_user_id, key),
        converse_id=converse,
        user_id=person,
        start_param=param,
        params=params,
        started_at_ms=stamp,
    )
    return Parsed(event, key)


def _button(body: dict[str, Any], app_id: str, bot_user_id: str) -> Parsed | Ignored:
    payload = _obj(body.get("payload"), "payload")
    action_id = _text(payload, "actionId", kind=BUTTON)
    person = _text(payload, "messageAuthor", kind=BUTTON)
    assert action_id and person
    kind = payload.get("type")
    if kind not in ("invoke", "modal"):
        raise Invalid("a buttonCallback's payload.type is invoke or modal", {"field": "payload.type"})
    raw = payload.get("params")
    params = _obj(raw, "payload.params") if raw is not None else {}
    if params.get("botId") not in (None, bot_user_id):
        return Ignored("a press of another bot's button")
    trace = _text(payload, "traceId", required=False, kind=BUTTON)
    converse = _text(payload, "converseId", required=False, kind=BUTTON)
    group = _text(payload, "groupId", required=False, kind=BUTTON)
    message_id = _text(payload, "originalMessageId", required=False, kind=BUTTON)
    stamp = _ms(payload.get("ts"))
    key = press_key(trace) if trace else f"button:{message_id}:{action_id}:{person}:{stamp}"
    event = ButtonPressed(
        **_from(app_id, bot_user_id, key),
        action_id=action_id,
        kind=kind,
        params={k: v for k, v in params.items() if k not in RENDERED_PARAMS},
        trace_id=trace,
        user_id=person,
        converse_id=converse,
        group_id=group,
        message_id=message_id,
        is_dm=group is None,
        pressed_at_ms=stamp,
    )
    return Parsed(event, key, trace)
