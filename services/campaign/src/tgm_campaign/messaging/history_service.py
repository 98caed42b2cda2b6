"""Use cases of chat history: reading conversations, importing messages, and turning tg-session's
message events into history (stop words into opt-outs, and a user writing first into a re-plan of
the jobs to them held as messages to a stranger: `replan.py`)."""

from __future__ import annotations

import logging

from tgm_contracts.base import Page
from tgm_contracts.commands import messaging as messaging_cmd
from tgm_contracts.events_session import MessageReceived
from tgm_contracts.events_session import MessageSent as SessionMessageSent
from tgm_contracts.models.campaign import ChatMessageView, ConversationView, is_chat_peer, peer_key
from tgm_runtime import NotFound
from tgm_runtime.routes import answers, consumes, hears

from .clock import utc
from .compliance import user_keys
from .compliance_service import ComplianceService
from .history_store import content_key, conversation_view, message_id_key, message_view
from .replan import Replanner
from .rules import Rules
from .stores import MessagingStores

log = logging.getLogger("tgm.campaign.history")


def by_private_chat(evt: MessageReceived) -> int | None:
    """The `order_by` of campaign's `message-received` handlers whose writes are per private chat (the
    CRM's `last_replied_at`, history's `remember_user`): one at a time per private chat."""
    return evt.chat_id if evt.chat_kind == "private" else None


class HistoryService:
    def __init__(
        self, stores: MessagingStores, rules: Rules, compliance: ComplianceService, replanner: Replanner
    ) -> None:
        self.stores = stores
        self.rules = rules
        self.compliance = compliance
        self.replanner = replanner

    async def _keys_for(self, peer: int | str | None, lead_id: str | None) -> list[str]:
        if lead_id is not None:
            lead = await self.stores.leads.get(lead_id)
            if lead is None:
                raise NotFound(f"lead {lead_id} does not exist")
            base = user_keys(lead.get("user_id"), lead.get("username"), lead.get("phone"))
            if not base:
                raise NotFound(f"lead {lead_id} has no Telegram identity yet")
        else:
            assert peer is not None
            base = [peer_key(peer)]
        aliases = await self.stores.history.aliases(base)
        return list(dict.fromkeys(k for ks in aliases.values() for k in ks))

    @answers(messaging_cmd.GetChatHistory)
    async def chat_history(self, req: messaging_cmd.GetChatHistoryRequest) -> Page[ChatMessageView]:
        keys = await self._keys_for(req.peer, req.lead_id)
        docs, nxt = await self.stores.history.page(
            keys=keys,
            account_id=req.account_id,
            since=req.since,
            until=req.until,
            search=req.search,
            newest_first=req.order == "newest_first",
            limit=req.limit,
            cursor=req.cursor,
        )
        users = await self.stores.history.users({d["chat_key"] for d in docs})
        return Page[ChatMessageView](
            items=[message_view(d, users.get(d["chat_key"])) for d in docs], next_cursor=nxt
        )

    async def _chat_key(self, peer: int | str) -> tuple[str, list[str]]:
        """The conversation key of a peer (its id when known) and all its keys."""
        key = peer_key(peer)
        aliases = (await self.stores.history.aliases([key]))[key]
        ids = [k for k in aliases if k.startswith("id:")]
        return (ids[0] if ids else key), aliases

    @answers(messaging_cmd.SaveChatHistory)
    async def save(self, req: messaging_cmd.SaveChatHistoryRequest) -> messaging_cmd.SaveChatHistoryResult:
        chat_key, keys = await self._chat_key(req.peer)
        private = not is_chat_peer(req.peer)
        docs = []
        for m in req.messages:
            mid = (
                message_id_key(req.account_id, chat_key, m.message_id)
                if m.message_id is not None
                else content_key(req.account_id, chat_key, m.direction, m.date, m.text)
            )
            docs.append(
                {
                    "_id": mid,
                    "account_id": req.account_id,
                    "chat_key": chat_key,
                    "peer_keys": keys,
                    "private": private,
                    "direction": m.direction,
                    "message_id": m.message_id,
                    "text": m.text,
                    "media_kind": m.media_kind,
                    "date": utc(m.date.timestamp()),
                    "job_id": None,
                    "source": req.source,
                    "reply_to": m.reply_to_message_id,
                }
            )
        saved, dups = await self.stores.history.save_many(docs)
        return messaging_cmd.SaveChatHistoryResult(saved=saved, duplicates=dups)

    @answers(messaging_cmd.GetPrivateMessages)
    async def private_messages(self, req: messaging_cmd.GetPrivateMessagesRequest) -> Page[ConversationView]:
        keys: list[str] | None = None
        if req.lead_stages:
            user_ids = await self.stores.leads.in_stages([s.value for s in req.lead_stages])
            keys = [peer_key(u) for u in user_ids]
        named = await self.stores.history.names_matching(req.search) if req.search else []
        docs, nxt = await self.stores.history.conversation_page(
            account_id=req.account_id,
            unread_only=req.unread_only,
            since=req.since,
            keys=keys,
            search=req.search,
            named=named,
            limit=req.limit,
            cursor=req.cursor,
        )
        chat_keys = {doc["chat_key"] for doc in docs}
        users = await self.stores.history.users(chat_keys)
        leads = await self.stores.leads.by_users(int(k[3:]) for k in chat_keys if k.startswith("id:"))
        all_keys = [k for doc in docs for k in doc.get("peer_keys") or [doc["chat_key"]]]
        blocked = await self.stores.compliance.blocked(all_keys)
        items = []
        for doc in docs:
            ks = doc.get("peer_keys") or [doc["chat_key"]]
            flags = [blocked[k] for k in ks if k in blocked]
            lead = leads.get(int(doc["chat_key"][3:])) if doc["chat_key"].startswith("id:") else None
            items.append(
                conversation_view(
                    doc,
                    users.get(doc["chat_key"]),
                    lead=lead,
                    blacklisted=any(f.get("blacklisted") for f in flags),
                    opted_out=any(f.get("opted_out") for f in flags),
                )
            )
        return Page[ConversationView](items=items, next_cursor=nxt)

    # --- events from tg-session -------------------------------------------------------------------

    @hears(MessageReceived, "history_received", order_by=by_private_chat)
    async def on_received(self, evt: MessageReceived) -> None:
        private = evt.chat_kind == "private"
        if not private:
            return  # group traffic of others is monitoring data, not a conversation
        sender = evt.sender
        if sender is not None and not evt.is_outgoing:
            await self.stores.history.remember_user(
                sender.user_id,
                username=sender.username,
                first_name=sender.first_name,
                last_name=sender.last_name,
                phone=sender.phone,
                at=utc(evt.date.timestamp()),
            )
        chat_key = peer_key(evt.chat_id)
        keys = (await self.stores.history.aliases([chat_key]))[chat_key]
        await self.stores.history.record(
            account_id=evt.account_id,
            chat_key=chat_key,
            private=True,
            direction="out" if evt.is_outgoing else "in",
            date=utc(evt.date.timestamp()),
            text=evt.text or None,
            message_id=evt.message_id,
            media_kind=evt.media_kind,
            source="telegram",
            reply_to=evt.reply_to_message_id,
            peer_keys=keys,
        )
        if evt.is_outgoing or evt.sender_id is None:
            return
        words = await self.rules.stop_words()
        word = words.match(evt.text)
        if word is not None:
            cancelled = await self.compliance.opted_out(evt.sender_id, evt.account_id, word, keys)
            log.info("user %s opted out with %r; %d waiting jobs skipped", evt.sender_id, word, cancelled)
            return
        # The user wrote first: jobs to them held as messages to a stranger are planned again.
        await self.replanner.recipient_wrote(evt.account_id, keys)

    @consumes(SessionMessageSent, durable="history_sent")
    async def on_sent(self, evt: SessionMessageSent) -> None:
        chat_key = peer_key(evt.chat_id)
        private = evt.chat_kind == "private"
        keys = (await self.stores.history.aliases([chat_key]))[chat_key]
        await self.stores.history.record(
            account_id=evt.account_id,
            chat_key=chat_key,
            private=private,
            direction="out",
            date=utc(evt.sent_at.timestamp()),
            text=evt.text or None,
            message_id=evt.message_id,
            media_kind="other" if evt.has_media else None,
            job_id=evt.job_id,
            source="queue" if evt.job_id else "telegram",
            reply_to=evt.reply_to_message_id,
            peer_keys=keys,
        )
