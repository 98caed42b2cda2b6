"""Which accounts are in which chat: what pick-accounts `memberOfChatId` answers (campaign's group
posts and group replies with sender `auto`, automation's "does a listener have to join").

The record: the chat ids of an account are a field of its document (`store.MEMBER_CHATS`, multikey
indexed), so `pick` with a chat is one indexed query, and deleting an account, a backup and a restore
carry the memberships along with the account, with no second collection to keep in step.

Where the knowledge comes from (each writer is the account's holder, where its Telegram client runs):
- join-group succeeds or answers `already_member` (also by invite link), and create-group: `joined`;
- leave-group (also when Telegram says the account was no member any more): `left`;
- an update saying the account itself left or was removed (a chat action whose user is the account:
  left from another device, kicked from a basic group where Telegram sends the service message):
  `removed` (the adapter's `on_left`, through `fleet/inbound.py`);
- the account's dialogs, read at every connect (start, reconnect, lease move): the groups and
  channels among its most recent `DIALOGS_LIMIT` dialogs are `listed` (an account that was in a group
  before it was onboarded is known before anyone writes there);
- inbound traffic: a group/supergroup/channel message received (or our own message seen there, or an
  edit) proves the account is in the chat: `seen`, called by `fleet/inbound.py` for every group
  message, watched or not, BEFORE its event is published, so a consumer that reacts to the message
  by picking a member of the chat finds the listener. `seen` costs one write per (account, chat) per
  process: a per-replica in-memory set (`known`) remembers what was written; a failed write is
  forgotten, so the next message tries again. It never raises (inbound must go on).

Not seen (decisions):
- a kick or ban the account is not told about by a chat action (Telegram tells a supergroup's kicked
  member with `UpdateChannel` only, which Telethon does not turn into an event) stays recorded until
  a join or a leave says otherwise; a send that then fails is the sender's error as before.
  Memberships are knowledge, not a guarantee.
- group ids are the Bot-API-style peer ids the rest of the service uses (`-100…` for channels).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..store import Repos

log = logging.getLogger("tgm.session.membership")

#: At most this many (account, chat) pairs are remembered per process; past it the set starts over
#: (the cost is one more idempotent write per pair, never a wrong answer).
KNOWN_MAX = 200_000
#: Dialogs read at connect to learn memberships (the most recent first).
DIALOGS_LIMIT = 500


@dataclass(eq=False)
class Memberships:
    repos: Repos
    #: (account id, chat id) pairs this process wrote (or learnt were written) since it started.
    known: set[tuple[str, int]] = field(default_factory=set)
    #: Writes made by `seen` (what the "once per pair" tests count).
    learnt: int = 0

    async def joined(self, account_id: str, chat_id: int) -> None:
        await self.repos.accounts.add_member_chat(account_id, chat_id)
        self._remember((account_id, chat_id))

    async def left(self, account_id: str, chat_id: int) -> None:
        self.known.discard((account_id, chat_id))
        await self.repos.accounts.drop_member_chat(account_id, chat_id)

    async def removed(self, account_id: str, chat_id: int) -> None:
        """An update said the account left or was removed from the chat; never raises."""
        try:
            await self.left(account_id, chat_id)
        except Exception as exc:
            log.warning("membership of %s in %s not removed: %s", account_id, chat_id, exc)

    async def seen(self, account_id: str, chat_id: int) -> None:
        """Inbound proof of membership; one write per pair per process, never raises."""
        pair = (account_id, chat_id)
        if pair in self.known:
            return
        self._remember(pair)
        try:
            await self.repos.accounts.add_member_chat(account_id, chat_id)
            self.learnt += 1
        except Exception as exc:
            self.known.discard(pair)
            log.warning("membership of %s in %s not recorded (next message retries): %s", *pair, exc)

    async def listed(self, account_id: str, client: object) -> None:
        """Learn the account's groups and channels from its dialogs (at connect); never raises."""
        member_chats = getattr(client, "member_chats", None)
        if member_chats is None:  # a client without dialogs (test doubles)
            return
        try:
            chats = [c for c in await member_chats(DIALOGS_LIMIT) if (account_id, c) not in self.known]
            if chats:
                await self.repos.accounts.add_member_chats(account_id, chats)
                for chat_id in chats:
                    self._remember((account_id, chat_id))
        except Exception as exc:
            log.warning(
                "memberships of %s not read from its dialogs (inbound teaches them): %s", account_id, exc
            )

    def reset(self) -> None:
        """The database was restored: what this process wrote may be gone, so it is written again."""
        self.known.clear()

    async def members_of(self, chat_id: int) -> list[str]:
        return await self.repos.accounts.members_of(chat_id)

    def _remember(self, pair: tuple[str, int]) -> None:
        if len(self.known) >= KNOWN_MAX:
            self.known.clear()
        self.known.add(pair)
