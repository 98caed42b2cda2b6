"""Replies to ad posts: a group message that replies to one of our posts is recorded once, for the
post's campaign, run, template variant, group and posting account (`get-ad-stats` counts them).

How a reply is known: the job of a sent post records the Telegram message id it became
(`message_id`), and tg-session's `message-received` carries what a group message replies to
(`replyToMessageId`). Campaign's one `message-received` consumer hands every copy here
(`ad_replies`, `runtime.on_event`); only group messages that reply to something, in the chat of an ad run
planned in the last `REPLY_DAYS` days, cost a query. Those chats are watched (monitoring's
`also_watch`, published again whenever a run is planned), so tg-session publishes their messages
whether monitoring is on or not. That chat list is cached: a chat not in it is
read again at most every `CHATS_TTL` (a run planned on any replica is seen within it, before its
posts can have been sent and answered).

- Once: every listener account in the group publishes its own copy of the message, redeliveries
  repeat it, two replicas may take two copies at once: the record's id is the message
  (`<chat>:<message>`), so the insert counts it once.
- A basic group numbers messages per account: there only the posting account's own copy is matched
  (its numbering is the post's), and the record's id names the account. Supergroups number per chat.
- Not a reply of ours: the posting account's own messages (`isOutgoing` on its copy) are left out. A
  reply written by another fleet account is counted (the event does not say the sender is one of
  ours; the swarm and automation do not answer fleet accounts' posts, so it is rare).
- Clicks are not measured: a post carries its links as written (no tracking redirect), so
  `get-ad-stats` gives `clicks: null`, never a false 0.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, timedelta

from tgm_contracts.events_session import MessageReceived

from ..messaging.clock import Clock, utc
from .store import AdStore

log = logging.getLogger("tgm.campaign.ads")

#: How old a run's plan may be for its chats to be watched and looked at for replies: a reply later
#: than that after the post is not counted.
REPLY_DAYS = 7
#: How often, at most, a reply in a chat not known to be posted in reads the chat list again.
CHATS_TTL = 1.0
GROUP_KINDS = ("group", "supergroup", "gigagroup")


class AdReplies:
    def __init__(self, store: AdStore, clock: Clock) -> None:
        self.store, self.clock = store, clock
        self._chats: tuple[float, set[int]] | None = None

    async def watched_chats(self) -> set[int]:
        """The chats whose messages tg-session must publish for replies to be seen: those of the ad runs
        planned in the last `REPLY_DAYS` days (monitoring's `also_watch`)."""
        return await self.store.posted_chats(utc(self.clock()) - timedelta(days=REPLY_DAYS))

    async def _posted_in(self, chat_id: int) -> bool:
        now = time.monotonic()
        if self._chats is not None and (chat_id in self._chats[1] or now - self._chats[0] < CHATS_TTL):
            return chat_id in self._chats[1]
        since = utc(self.clock()) - timedelta(days=REPLY_DAYS)
        self._chats = (now, await self.store.posted_chats(since))
        return chat_id in self._chats[1]

    async def on_message(self, evt: MessageReceived) -> bool:
        """Record `evt` when it replies to one of our posts; True when it was new."""
        if evt.chat_kind not in GROUP_KINDS or evt.reply_to_message_id is None or evt.is_outgoing:
            return False
        if not await self._posted_in(evt.chat_id):
            return False
        posts = await self.store.posts_as(evt.chat_id, evt.reply_to_message_id)
        basic = evt.chat_kind == "group"
        if basic:
            posts = [p for p in posts if p.get("account_id") == evt.account_id]
        if len(posts) != 1:
            return False  # not a post of ours (or, in a basic group, another account's numbering)
        post = posts[0]
        parts = str(post["key"]).split(":")  # ad:<campaign>:<run>:<target>
        at = evt.date if evt.date.tzinfo else evt.date.replace(tzinfo=UTC)
        rid = (
            f"{evt.chat_id}:{evt.account_id}:{evt.message_id}" if basic else f"{evt.chat_id}:{evt.message_id}"
        )
        new = await self.store.record_reply(
            {
                "_id": rid,
                "campaign_id": post.get("campaign_id"),
                "run": int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None,
                "job_id": post["_id"],
                "account_id": post.get("account_id"),
                "template_id": (post.get("body") or {}).get("template_id"),
                "peer_key": post.get("peer_key"),
                "sender_id": evt.sender_id,
                "replied_to": evt.reply_to_message_id,
                "at": at,
                "created_at": utc(self.clock()),
            }
        )
        if new:
            log.info("ad campaign %s: reply %s to post %s", post.get("campaign_id"), rid, post["_id"])
        return new
