"""Which bots hear of a new message, and the `inbox` bodies they get (chat.inbox.append and the
fork's receive-all forwarder):

- a group message whose `meta.mentions` names a bot: the whole inbox document
  `{_id, userId, type: "message", payload, readed: false, createdAt, updatedAt, __v}`;
- every other bot member of the group with `receiveAllGroupMessages` and `allowGroup` not false:
  `{userId, type, payload}` only. The server checks no author here, so a bot with receive-all hears
  its own group messages too (a client must ignore its own `messageAuthor`);
- a DM from a person to the bot: the whole document, without `groupId`.

`payload` is `{groupId?, converseId, messageId, messageAuthor, messageSnippet, messagePlainContent?}`:
the snippet is the raw content ("加密消息" for `meta.e2ee`), the plain content only when the sender
gave `plain` (and never for E2EE).
"""

from __future__ import annotations

from typing import Any

from .callbacks import CallbackSender, Delivery
from .world import TailchatWorld, TcApp, iso


class Inbox:
    def __init__(self, world: TailchatWorld, sender: CallbackSender) -> None:
        self.world, self.sender = world, sender

    @staticmethod
    def payload(message: dict[str, Any], plain_text: str | None) -> dict[str, Any]:
        e2ee = (message.get("meta") or {}).get("e2ee") is True
        payload = {
            "groupId": message.get("groupId"),
            "converseId": message["converseId"],
            "messageId": message["_id"],
            "messageAuthor": message["author"],
            "messageSnippet": "加密消息" if e2ee else message["content"],
            "messagePlainContent": None if e2ee else plain_text,
        }
        return {k: v for k, v in payload.items() if v is not None}

    def deliver(self, app: TcApp, payload: dict[str, Any], whole: bool) -> Delivery:
        body: dict[str, Any] = {"userId": app.bot_user_id, "type": "message", "payload": payload}
        if whole:
            now = iso(self.world.now())
            body = {
                "_id": self.world.new_id(),
                **body,
                "readed": False,
                "createdAt": now,
                "updatedAt": now,
                "__v": 0,
            }
        return self.sender.send(app, "inbox", body)

    def group_message(self, message: dict[str, Any], plain_text: str | None) -> list[Delivery]:
        world = self.world
        meta: dict[str, Any] = message["meta"] if isinstance(message.get("meta"), dict) else {}
        listed = meta.get("mentions")
        mentions = [str(m) for m in listed] if isinstance(listed, list) else []
        payload = self.payload(message, plain_text)
        sent = []
        for mentioned in mentions:
            user = world.users.get(mentioned)
            app = world.app_of_bot(user.id) if user and user.type == "openapiBot" else None
            if app is not None:
                sent.append(self.deliver(app, payload, whole=True))
        group = world.groups.get(message.get("groupId") or "")
        for member in group.members if group else []:
            app = world.app_of_bot(member)
            if app is None or member in mentions:
                continue
            if app.bot.get("receiveAllGroupMessages") and app.bot.get("allowGroup") is not False:
                sent.append(self.deliver(app, payload, whole=False))
        return sent
