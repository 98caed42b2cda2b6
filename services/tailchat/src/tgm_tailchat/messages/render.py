"""Channel-neutral markup (`tgm_contracts.markup.MessageMarkup`) rendered as a Tailchat message's `meta`.

- `replyKeyboard`: `keyboard` rows of `{text}`, `resize`, `one_time`, `placeholder`, `selective:
  {visibleForUserIds}`; `{remove: true}` (with its placeholder) takes the keyboard away. The markup's
  limits are the server's sanitiser's (8×8, 32-character labels, placeholder 64, 100 users), so what
  is rendered passes it unchanged: nothing is cut or dropped on the way (a test runs the fake's copy
  of the sanitiser over the output).
- `inlineActions`: `actions` (`{id, type, label, params, priority?}`), `keyboard` rows `{actions, label?}`
  and `ranges` `{offset, length, actionId}` (UTF-16, as the markup counts). Per kind: `command` →
  `params {text, mode}`; `url` → `params {url}`; `deeplink` → `params {link, url}` (the client reads
  either); `invoke` / `modal` → the action's own params plus **`botId`, the app's bot user id** — the
  server routes a press to a bot only when the button names it, so without it no `buttonCallback`
  fires — and `confirm` (invoke) or `title` / `content` (modal). `priority` goes on the action (the
  seed's examples) and in `params` (its field list names `params.priority`); `disabled` in params.
- The server stores inlineActions as given and **drops the whole meta when its JSON is over 8192
  bytes**; a meta that large is refused here (`Invalid`, naming the size) instead of vanishing.
"""

from __future__ import annotations

import json
from typing import Any

from tgm_contracts.markup import ActionKind, InlineAction, InlineActions, MessageMarkup, ReplyKeyboard
from tgm_runtime import Invalid

#: The server's cap on a message's meta, as compact JSON in UTF-8 bytes.
MAX_META_BYTES = 8192


def reply_keyboard(keyboard: ReplyKeyboard) -> dict[str, Any]:
    if keyboard.remove:
        out: dict[str, Any] = {"remove": True}
        if keyboard.placeholder is not None:
            out["placeholder"] = keyboard.placeholder
        return out
    out = {
        "keyboard": [[{"text": button.text} for button in row] for row in keyboard.rows],
        "resize": keyboard.resize,
        "one_time": keyboard.one_time,
    }
    if keyboard.placeholder is not None:
        out["placeholder"] = keyboard.placeholder
    if keyboard.selective is not None:
        out["selective"] = {"visibleForUserIds": list(keyboard.selective)}
    return out


def action(item: InlineAction, bot_id: str | None) -> dict[str, Any]:
    params: dict[str, Any]
    if item.type is ActionKind.COMMAND:
        params = {"text": item.command, "mode": item.mode or "replace"}
    elif item.type is ActionKind.URL:
        params = {"url": item.url}
    elif item.type is ActionKind.DEEPLINK:
        params = {"link": item.url, "url": item.url}
    else:
        if not bot_id:
            raise Invalid(
                f"action {item.id!r}: the app's bot user id is not known, so a press could not reach it"
            )
        params = {**item.params, "botId": bot_id}
        if item.type is ActionKind.INVOKE and item.confirm:
            params["confirm"] = True
        if item.type is ActionKind.MODAL:
            if item.title is not None:
                params["title"] = item.title
            if item.content is not None:
                params["content"] = item.content
    out: dict[str, Any] = {"id": item.id, "type": item.type.value, "label": item.label, "params": params}
    if item.priority is not None:
        out["priority"] = params["priority"] = item.priority.value
    if item.disabled:
        params["disabled"] = True
    return out


def inline_actions(inline: InlineActions, bot_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"actions": [action(a, bot_id) for a in inline.actions]}
    if inline.rows:
        out["keyboard"] = [
            {"actions": list(row.actions), **({"label": row.label} if row.label else {})}
            for row in inline.rows
        ]
    if inline.ranges:
        out["ranges"] = [
            {"offset": r.offset, "length": r.length, "actionId": r.action_id} for r in inline.ranges
        ]
    return out


def needs_bot(markup: MessageMarkup | None) -> bool:
    """Whether rendering `markup` needs the bot's user id (it has an invoke or modal action)."""
    inline = markup.inline if markup is not None else None
    return inline is not None and any(a.type in (ActionKind.INVOKE, ActionKind.MODAL) for a in inline.actions)


def meta_of(markup: MessageMarkup, bot_id: str | None, keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The meta to send: the parts `markup` gives, over the parts of `keep` (the message's meta of
    before) it does not give — an edit that only removes the reply keyboard keeps the inline actions."""
    meta: dict[str, Any] = dict(keep or {})
    if markup.reply_keyboard is not None:
        meta["replyKeyboard"] = reply_keyboard(markup.reply_keyboard)
    if markup.inline is not None:
        meta["inlineActions"] = inline_actions(markup.inline, bot_id)
    check_size(meta)
    return meta


def meta_bytes(meta: dict[str, Any]) -> int:
    return len(json.dumps(meta, ensure_ascii=False, separators=(",", ":")).encode())


def check_size(meta: dict[str, Any]) -> None:
    size = meta_bytes(meta)
    if size > MAX_META_BYTES:
        raise Invalid(
            f"the markup renders to {size} bytes of meta; Tailchat drops a message's whole meta over "
            f"{MAX_META_BYTES} (use fewer or shorter actions, params or modal texts)",
            {"metaBytes": size, "limit": MAX_META_BYTES},
        )
