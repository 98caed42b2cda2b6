"""The peers each account has seen, remembered across connections (`peer_store.py`, collection
`peers`).

Why: Telegram addresses a user or a channel by (id, access hash), and the hash is per account.
Telethon keeps what it learns in its session object, but ours is a `StringSession` (a
`MemorySession`: auth key and DC only), so a new connection of an account (tg-session restarted,
a reconnect, the lease moved to another replica) knew no hash, and a reply to someone by bare user
id (a trigger reply to a group member) failed `PEER_INVALID`/NOT_FOUND although the account saw that
user minutes earlier. Reading the dialogs (what `adapter._input` falls back to) does not help: a
group member who never wrote privately is in no dialog.

How:
- collecting: the client's session is a `PeerSession` (`telegram/peer_session.py`), whose
  `process_entities` (Telethon calls it for every RPC answer and every update, including catch-up)
  keeps the rows by id and notes every row it saw since it was last asked (`new_peers`);
- saving: `flush()` runs every second (`runtime.every`, "known-peers" in bootstrap) and writes, per
  account in one bulk upsert, the rows that are not saved yet: an in-memory map per account of what
  is saved (id -> row, when) skips a row saved already unless it changed or was saved more than
  `TOUCH_AFTER_SECONDS` (a day) ago, so `seen_at` moves on for peers seen every day at one write a
  day. Rows of an account that no longer exists are not written;
- loading: `attach()` is called by the pool when it builds an account's client, before it connects
  (start, reconnect, lease moved): the account's rows are put in the new session, most recently
  seen first; `detach()` (the pool lets the account go) flushes what is left.
- a client that does not remember peers (the tests' fakes) is simply not attached.

Bounds: a row not seen for 90 days is deleted (TTL index on `seen_at`, plus `expire()` in the
slow "known-peers-prune" job); at most 100,000 rows per account: when an account connects with more,
the least recently seen beyond the limit are deleted, and a connection keeps at most that many in
memory (least recently seen evicted first). Removing an account deletes its rows
(`Accounts._remove`), and the prune job deletes rows of accounts that no longer exist (a remote
holder's last flush racing the removal, a restore that dropped accounts).

Secrets and backups: access hashes are account-specific tokens, not the user's secrets; they are
stored per account and never logged (only counts are). Backups include the `peers` collection like
every collection of the service (the sealed sessions, far more sensitive, are in them too): after a
restore the restored accounts reach the peers they knew. Nothing depends on them being there: a lost
row is learnt again the next time the account sees the peer (a message, a resolve, a member list).

Not covered: a "min" user (Telegram sends one without a usable hash, e.g. in some large
supergroups) has no row; reaching them needs `InputPeerUserFromMessage` (chat + message id), which
is not stored here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol, runtime_checkable

from ..store import Repos
from .peer_store import MAX_ROWS, max_age

#: An unchanged row seen again is written again (its `seen_at` moved on) at most this often.
TOUCH_AFTER_SECONDS = 86_400.0

log = logging.getLogger("tgm.session.peers")


class KnownPeer(NamedTuple):
    """One row, as Telethon's sessions keep it."""

    peer_id: int  # marked
    access_hash: int
    username: str | None
    phone: str | None
    name: str | None


@runtime_checkable
class PeerMemory(Protocol):
    """An account client that learns peers and can be taught them (the Telethon one does)."""

    def learn_peers(self, peers: Iterable[KnownPeer]) -> int:
        """Put saved rows (least recently seen first) into the session; how many it kept."""
        ...

    def new_peers(self) -> list[KnownPeer]:
        """Every row the session saw (learnt or seen again) since the last call."""
        ...


class KnownPeers:
    """Per-account memory of peers: loaded into each new connection, saved in batches."""

    def __init__(self, repos: Repos, *, max_rows: int = MAX_ROWS) -> None:
        self.repos = repos
        self.max_rows = max_rows
        #: account id -> the client whose rows are collected.
        self._clients: dict[str, PeerMemory] = {}
        #: account id -> peer id -> (the row as saved, when: unix s): what a flush skips.
        self._saved: dict[str, dict[int, tuple[KnownPeer, float]]] = {}
        #: Rows taken from a client but not written yet (a failed write is tried again).
        self._pending: dict[str, dict[int, KnownPeer]] = {}
        #: Figures for tests and get-performance: rows loaded, saved, trimmed.
        self.counts: dict[str, int] = {"loaded": 0, "saved": 0, "trimmed": 0, "forgotten": 0}

    # --- the pool ------------------------------------------------------------------------------------

    async def attach(self, account_id: str, client: object) -> int:
        """A new client of the account (before it connects): what the account saw is put in it.
        Never raises (a database hiccup only means this connection learns from scratch)."""
        if not isinstance(client, PeerMemory):
            return 0
        previous = self._clients.get(account_id)
        if previous is not None and previous is not client:
            self._take(account_id, previous)
        self._clients[account_id] = client
        try:
            docs = await self.repos.peers.load(account_id, self.max_rows)
            if len(docs) >= self.max_rows:
                self.counts["trimmed"] += await self.repos.peers.trim(account_id, docs[-1]["seen_at"])
        except Exception as exc:
            log.warning("peers of %s could not be loaded: %s", account_id, type(exc).__name__)
            return 0
        saved = self._saved.setdefault(account_id, {})
        rows: list[KnownPeer] = []
        for d in reversed(docs):  # oldest first: the most recent end up most recently used
            row = _row(d)
            if row is None:
                continue
            seen = d.get("seen_at")
            saved[row.peer_id] = (row, _unix(seen) if isinstance(seen, datetime) else 0.0)
            rows.append(row)
        n = client.learn_peers(rows)
        self.counts["loaded"] += n
        return n

    async def detach(self, account_id: str, client: object | None = None) -> None:
        """The account leaves this replica (or its client is replaced): save what is left."""
        current = self._clients.get(account_id)
        if current is None or (client is not None and current is not client):
            return
        self._take(account_id, current)
        del self._clients[account_id]
        await self._write([account_id])
        self._saved.pop(account_id, None)
        self._pending.pop(account_id, None)

    # --- the periodic jobs ---------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write the rows learnt since the last flush (every second, "known-peers")."""
        for account_id, client in list(self._clients.items()):
            self._take(account_id, client)
        return await self._write(list(self._pending))

    async def prune(self) -> int:
        """Rows not seen for 90 days and rows of accounts that no longer exist ("known-peers-prune")."""
        gone = await self.repos.peers.expire(datetime.now(UTC) - max_age())
        with_rows = await self.repos.peers.accounts()
        if with_rows:
            existing = await self._existing(with_rows)
            for account_id in with_rows:
                if account_id not in existing:
                    gone += await self.forget(account_id)
        return gone

    async def forget(self, account_id: str) -> int:
        """The account was removed: its rows go (and nothing of it is written any more)."""
        self._clients.pop(account_id, None)
        self._saved.pop(account_id, None)
        self._pending.pop(account_id, None)
        n = await self.repos.peers.forget(account_id)
        self.counts["forgotten"] += n
        return n

    def reset(self) -> None:
        """After a restore: what was saved is no longer known; every attached client's rows are
        written again at the next flush."""
        self._saved.clear()
        self._pending.clear()

    # --- internals -----------------------------------------------------------------------------------

    def _take(self, account_id: str, client: PeerMemory) -> None:
        try:
            rows = client.new_peers()
        except Exception as exc:  # a closed client: nothing to take
            log.debug("peers of %s could not be read: %s", account_id, type(exc).__name__)
            return
        if not rows:
            return
        saved = self._saved.get(account_id, {})
        pending = self._pending.setdefault(account_id, {})
        now = time.time()
        for row in rows:
            if row.peer_id == 0:
                continue  # Telethon's own "self" marker row, not a peer
            known = saved.get(row.peer_id)
            if known is not None and known[0] == row and now - known[1] < TOUCH_AFTER_SECONDS:
                continue
            pending[row.peer_id] = row
        if not pending:
            self._pending.pop(account_id, None)

    async def _write(self, account_ids: list[str]) -> int:
        wanted = [a for a in account_ids if self._pending.get(a)]
        if not wanted:
            return 0
        try:
            existing = await self._existing(wanted)
        except Exception as exc:
            log.warning("peers not saved (accounts unreadable): %s", type(exc).__name__)
            return 0
        now = datetime.now(UTC)
        stamp = now.timestamp()
        written = 0
        for account_id in wanted:
            rows = self._pending.pop(account_id, {})
            if account_id not in existing:
                continue  # removed meanwhile: never write rows for it again
            try:
                written += await self.repos.peers.save(account_id, list(rows.values()), now)
            except Exception as exc:
                log.warning(
                    "peers of %s not saved (%s); kept for the next flush", account_id, type(exc).__name__
                )
                self._pending.setdefault(account_id, {}).update(rows)
                continue
            saved = self._saved.setdefault(account_id, {})
            for pid, row in rows.items():
                saved.pop(pid, None)  # re-inserted: the map's order is the order rows were saved
                saved[pid] = (row, stamp)
            while len(saved) > self.max_rows:  # bounded like the session: forget the oldest
                del saved[next(iter(saved))]
        self.counts["saved"] += written
        return written

    async def _existing(self, account_ids: list[str]) -> set[str]:
        docs = await self.repos.accounts.find({"_id": {"$in": account_ids}}, projection={"_id": 1})
        return {str(d["_id"]) for d in docs}


def _row(d: dict[str, object]) -> KnownPeer | None:
    pid, h = d.get("peer_id"), d.get("access_hash")
    if not isinstance(pid, int) or not isinstance(h, int) or isinstance(pid, bool) or pid == 0:
        return None

    def text(v: object) -> str | None:
        return v if isinstance(v, str) and v else None

    return KnownPeer(pid, h, text(d.get("username")), text(d.get("phone")), text(d.get("name")))


def _unix(at: datetime) -> float:
    if at.tzinfo is None:  # pymongo hands back naive UTC datetimes unless tz_aware
        at = at.replace(tzinfo=UTC)
    return at.timestamp()
