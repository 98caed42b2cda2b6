"""The chats automation watches, as tg-session knows them: the value of the KV key
`MONITORED_CHATS` / `MONITORED_CHATS_KEY` (a `models.campaign.MonitoredChats` that campaign writes),
followed live so that a change applies without a restart.

How it is followed (`WatchedChats.follow`, spawned by `bootstrap.py` through `runtime.spawn`):
- an initial `get` (also done once in `make_app`, before any account connects), then a KV `watch`
  of the key (nats-py's ordered consumer: the current value, then every write);
- every `resync_seconds` (5 s) without an update, a `get` checks the watch is not stale: after a NATS
  outage the watch's consumer may be gone on the server; when the `get` shows a revision the watch did
  not deliver, the value is applied and the watch is made again;
- any error (NATS unreachable, bucket gone) ends the round; the next round starts `retry_seconds`
  later, so the watch comes back by itself when NATS does. Between rounds the last known set applies.

Decisions:
- Before the first answer (nothing read yet), NO group message or join is published: the safe side is
  "nothing is watched" rather than a flood of every group of the fleet. A key that does not exist, was
  deleted or purged is an answer: nothing is watched. The first read happens in `make_app`, before the
  pool claims any account, so in practice the unknown window is empty.
- A value that does not parse (a fuzzed or foreign writer) is logged and ignored: the last good set
  stays (or nothing, if none was ever read).
- `active` false: no group message is published, whatever the lists say.
- Usernames are compared lower-case without `@`. A chat first matched by username is remembered by id
  (`learned`), so its joins (which carry no username) and later edits match too.
- The lookups (`group`, `chat`) are the hot path of every inbound message: attribute reads and one or
  two set lookups, no I/O, no allocation unless a username is matched for the first time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol

from pydantic import ValidationError
from tgm_contracts.models.campaign import MonitoredChats
from tgm_contracts.streams import MONITORED_CHATS_KEY

from ..metrics import SessionMetrics

log = logging.getLogger("tgm.session.watched")

#: nats-py KV operations that remove the key's value.
_REMOVED = ("DEL", "PURGE")


class KvEntry(Protocol):
    value: bytes | None
    revision: int | None
    operation: str | None


class KvWatcher(Protocol):
    async def updates(self, timeout: float = ...) -> Any: ...
    async def stop(self) -> Any: ...


class KvBucket(Protocol):
    """What is used of a nats-py `KeyValue`."""

    async def get(self, key: str) -> Any: ...
    async def watch(self, keys: str) -> Any: ...


OpenKv = Callable[[], Awaitable[KvBucket]]


def _not_found(exc: BaseException) -> bool:
    from nats.js.errors import NotFoundError

    return isinstance(exc, NotFoundError)  # KeyNotFoundError, KeyDeletedError


def _username(text: str) -> str:
    return text.strip().lstrip("@").lower()


class WatchedChats:
    def __init__(
        self,
        metrics: SessionMetrics | None = None,
        *,
        resync_seconds: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self.metrics = metrics
        self.resync_seconds = resync_seconds
        self.retry_seconds = retry_seconds
        #: False until the first answer of the KV (a value, or "no such key").
        self.known = False
        self.active = False
        self.chat_ids: frozenset[int] = frozenset()
        self.usernames: frozenset[str] = frozenset()
        #: username -> chat id, learnt from messages matched by username.
        self.learned: dict[str, int] = {}
        #: `MonitoredChats.revision` of the value applied (0: none) and the KV revision it came with.
        self.revision = 0
        self.kv_revision = 0
        self._ids: frozenset[int] = frozenset()  # chat_ids and the learnt ids of watched usernames
        self._unresolved = False  # a watched username is not matched to an id yet

    # --- the hot path ------------------------------------------------------------------------------

    def group(self, chat_id: int, username: str | None) -> bool:
        """A group/channel message of `chat_id` (known by `username`) is to be published."""
        if not self.active:
            return False
        if chat_id in self._ids:
            return True
        if username and self.usernames:
            key = username.lower()
            if key in self.usernames:
                self.learned[key] = chat_id
                self._ids = self._ids | {chat_id}
                self._unresolved = any(u not in self.learned for u in self.usernames)
                return True
        return False

    def may_want(self, chat_id: int) -> bool:
        """Known by id alone, before the chat's username is fetched: False when `group` would say
        False whatever the username (not active, or not watched by id and every watched username is
        already matched to an id). The adapter skips fetching chat and sender on False."""
        if not self.active:
            return False
        return chat_id in self._ids or self._unresolved

    def chat(self, chat_id: int) -> bool:
        """A chat known by id only (a join): watched by id, or by a username already matched."""
        return self.active and chat_id in self._ids

    # --- applying values ---------------------------------------------------------------------------

    def apply(self, value: bytes | None, kv_revision: int = 0) -> bool:
        """Take a value of the key (None: no key, nothing watched). False if it did not parse."""
        if value is None:
            parsed = None
        else:
            try:
                parsed = MonitoredChats.model_validate_json(value)
            except (ValidationError, ValueError) as exc:
                log.warning("monitored chats value (KV revision %s) ignored: %s", kv_revision, exc)
                return False
        self.kv_revision = kv_revision
        if parsed is None:
            self.active, self.chat_ids, self.usernames, self.revision = False, frozenset(), frozenset(), 0
        else:
            self.active = parsed.active
            self.chat_ids = frozenset(parsed.chat_ids)
            self.usernames = frozenset(u for u in map(_username, parsed.usernames) if u)
            self.revision = parsed.revision
        self._ids = self.chat_ids | {cid for u, cid in self.learned.items() if u in self.usernames}
        self._unresolved = any(u not in self.learned for u in self.usernames)
        first = not self.known
        self.known = True
        if self.metrics is not None:
            unresolved = sum(1 for u in self.usernames if u not in self.learned)
            self.metrics.watched_chats.set(len(self._ids) + unresolved if self.active else 0)
        log.info(
            "monitored chats%s: active=%s, %d ids, %d usernames (revision %s)",
            " known" if first else "",
            self.active,
            len(self.chat_ids),
            len(self.usernames),
            self.revision,
        )
        return True

    async def read(self, kv: KvBucket) -> bool:
        """`get` the key and apply it; True when it showed a KV revision other than the one applied."""
        try:
            entry = await kv.get(MONITORED_CHATS_KEY)
        except Exception as exc:
            if not _not_found(exc):
                raise
            stale = self.kv_revision != 0 or not self.known
            if stale:
                self.apply(None, 0)
            return stale
        revision = int(entry.revision or 0)
        if revision == self.kv_revision and self.known:
            return False
        if entry.operation in _REMOVED or entry.value is None:
            self.apply(None, revision)
        else:
            self.apply(bytes(entry.value), revision)
        return True

    async def read_once(self, open_kv: OpenKv) -> None:
        """The first read at start; a failure is logged (the follow loop tries again)."""
        try:
            await self.read(await open_kv())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("monitored chats not read at start (group messages held back until then): %s", exc)

    # --- following the key -------------------------------------------------------------------------

    async def follow(self, open_kv: OpenKv) -> None:
        """Follow the key until cancelled (spawned; see the module docstring)."""
        while True:
            try:
                await self.follow_round(open_kv)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("monitored chats watch ended (retrying in %.1f s): %s", self.retry_seconds, exc)
            await asyncio.sleep(self.retry_seconds)

    async def follow_round(self, open_kv: OpenKv) -> None:
        """One watch: returns when it is stale, raises when NATS fails."""
        kv = await open_kv()
        await self.read(kv)
        watcher = await kv.watch(MONITORED_CHATS_KEY)
        try:
            while True:
                try:
                    entry = await watcher.updates(timeout=self.resync_seconds)
                except TimeoutError:  # nats.errors.TimeoutError is one
                    # Python 3.11's wait_for can turn a cancellation into a timeout: honour it.
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise asyncio.CancelledError from None
                    if await self.read(kv):
                        log.info("monitored chats watch was stale; watching again")
                        return
                    continue
                if entry is None:  # "caught up" marker
                    continue
                if not hasattr(entry, "revision"):  # the watcher was stopped
                    return
                revision = int(entry.revision or 0)
                if revision == self.kv_revision and self.known:
                    continue  # the value the get before the watch applied already
                if entry.operation in _REMOVED or entry.value is None:
                    self.apply(None, revision)
                else:
                    self.apply(bytes(entry.value), revision)
        finally:
            with suppress(Exception):
                await watcher.stop()
