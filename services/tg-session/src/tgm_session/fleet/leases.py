"""Leases in the NATS KV bucket `tgm_account_leases` (ARCHITECTURE.md section 6).

Keys: `acct.<account id>` (an account's Telegram connection), `qr.<session id>` (a QR login's
connection), `scrape.<scrape id>` and `replica.<replica id>` (presence, for fair shares). A lease is
created with `kv.create` (fails if someone holds it), renewed with `kv.update(last=revision)` (fails
if it expired or moved), released with a delete. The bucket's TTL expires a dead holder's keys.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol

from tgm_contracts.streams import ACCOUNT_LEASES

from ..settings import SessionSettings

log = logging.getLogger("tgm.session.leases")


@dataclass
class Lease:
    key: str
    holder: str
    revision: int


class LeaseLost(Exception):
    """The lease expired or another holder has it now."""


class LeaseStore(Protocol):
    async def claim(self, key: str, holder: str) -> Lease | None: ...
    async def renew(self, lease: Lease) -> Lease: ...
    async def release(self, lease: Lease) -> None: ...
    async def holder(self, key: str) -> str | None: ...
    async def snapshot(self, prefix: str = "") -> dict[str, str]: ...
    async def touch(self, key: str, value: str) -> None: ...
    async def adopt(self, key: str, holder: str) -> Lease | None: ...


#: Seconds an idle snapshot consumer survives on the server (see LeaseStore.snapshot).
SNAPSHOT_CONSUMER_INACTIVE_SECONDS = 5.0

_SAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")


def safe_token(text: str) -> str:
    return _SAFE.sub("_", text)


def account_key(account_id: str) -> str:
    return f"acct.{account_id}"


def replica_key(namespace: str, replica_id: str) -> str:
    """Presence of a replica, scoped to one deployment (its database) so that deployments sharing a
    NATS server do not count each other's replicas."""
    return f"replica.{safe_token(namespace)}.{safe_token(replica_id)}"


class KvLeaseStore:
    """LeaseStore on a nats-py KeyValue bucket."""

    def __init__(self, kv: Any, timeout: float = 5.0) -> None:
        self.kv = kv
        self.timeout = timeout

    async def claim(self, key: str, holder: str) -> Lease | None:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            rev = await asyncio.wait_for(self.kv.create(key, holder.encode()), self.timeout)
        except KeyWrongLastSequenceError:
            return None
        return Lease(key, holder, rev)

    async def renew(self, lease: Lease) -> Lease:
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        try:
            rev = await asyncio.wait_for(
                self.kv.update(lease.key, lease.holder.encode(), last=lease.revision), self.timeout
            )
        except (KeyWrongLastSequenceError, KeyNotFoundError) as exc:
            raise LeaseLost(lease.key) from exc
        lease.revision = rev
        return lease

    async def release(self, lease: Lease) -> None:
        from nats.js.errors import KeyWrongLastSequenceError

        try:
            # Only delete what is still ours: `last` guards against deleting a new holder's key.
            await asyncio.wait_for(self.kv.delete(lease.key, last=lease.revision), self.timeout)
        except KeyWrongLastSequenceError:
            pass

    async def touch(self, key: str, value: str) -> None:
        """Write a key unconditionally (presence), renewing its TTL."""
        await asyncio.wait_for(self.kv.put(key, value.encode()), self.timeout)

    async def adopt(self, key: str, holder: str) -> Lease | None:
        """Take back a lease this replica id held before a restart (its old process is gone)."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        try:
            entry = await asyncio.wait_for(self.kv.get(key), self.timeout)
        except KeyNotFoundError:
            return await self.claim(key, holder)
        if (entry.value or b"").decode() != holder:
            return None
        try:
            rev = await asyncio.wait_for(
                self.kv.update(key, holder.encode(), last=entry.revision), self.timeout
            )
        except KeyWrongLastSequenceError:
            return None
        return Lease(key, holder, rev)

    async def holder(self, key: str) -> str | None:
        from nats.js.errors import KeyNotFoundError

        try:
            entry = await asyncio.wait_for(self.kv.get(key), self.timeout)
        except KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def snapshot(self, prefix: str = "") -> dict[str, str]:
        """Every live key (optionally under `prefix.`) and its holder, in one pass over the bucket.

        The watcher's own "initial values done" marker (`None`) is not trusted: nats-py can put it
        before the initial values (nats-io/nats.py#842: the setup compares the server's pending
        count with what the client has read, not what is in flight; #995: a message's pending count
        can touch zero and rise again under concurrent writes, which lease renewals are). A
        premature marker made this an empty or partial snapshot, so pick-accounts found no holder
        and picked nobody (seen once in CI: test_membership). Instead the consumer is asked how many
        messages it has delivered plus how many it still has to deliver, and that many are read
        (delete markers included: they are counted, and remove their key)."""
        # Stopping a watcher only unsubscribes: its ephemeral consumer lingers on the server until the
        # inactivity threshold (5 minutes by default), so at one snapshot per claim tick a replica would
        # pile up hundreds and hit JetStream's consumer limit. A short threshold lets it go right away.
        watcher = await self.kv.watch(
            f"{prefix}.>" if prefix else ">",
            inactive_threshold=SNAPSHOT_CONSUMER_INACTIVE_SECONDS,
        )
        out: dict[str, str] = {}
        try:
            # The only way to the consumer nats-py made for the watch (its `keys()` reads it too).
            info = await asyncio.wait_for(watcher._sub.consumer_info(), self.timeout)
            due = info.delivered.consumer_seq + info.num_pending
            read = 0
            while read < due:
                entry = await watcher.updates(timeout=self.timeout)
                if entry is None:  # the marker, wherever it falls: not a count of anything
                    continue
                read += 1
                if entry.value and entry.operation is None:
                    out[entry.key] = entry.value.decode()
                else:  # deleted or purged since it was last written
                    out.pop(entry.key, None)
        finally:
            await watcher.stop()
        return out


class MemoryLeaseStore:
    """An in-process LeaseStore with the same semantics (unit tests)."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, int]] = {}
        self._rev = 0

    def _next(self) -> int:
        self._rev += 1
        return self._rev

    async def claim(self, key: str, holder: str) -> Lease | None:
        if key in self.data:
            return None
        rev = self._next()
        self.data[key] = (holder, rev)
        return Lease(key, holder, rev)

    async def renew(self, lease: Lease) -> Lease:
        cur = self.data.get(lease.key)
        if cur is None or cur[1] != lease.revision:
            raise LeaseLost(lease.key)
        lease.revision = self._next()
        self.data[lease.key] = (lease.holder, lease.revision)
        return lease

    async def release(self, lease: Lease) -> None:
        cur = self.data.get(lease.key)
        if cur is not None and cur[1] == lease.revision:
            del self.data[lease.key]

    async def touch(self, key: str, value: str) -> None:
        self.data[key] = (value, self._next())

    async def adopt(self, key: str, holder: str) -> Lease | None:
        cur = self.data.get(key)
        if cur is None:
            return await self.claim(key, holder)
        if cur[0] != holder:
            return None
        rev = self._next()
        self.data[key] = (holder, rev)
        return Lease(key, holder, rev)

    async def holder(self, key: str) -> str | None:
        cur = self.data.get(key)
        return cur[0] if cur else None

    async def snapshot(self, prefix: str = "") -> dict[str, str]:
        return {k: v[0] for k, v in self.data.items() if not prefix or k.startswith(prefix + ".")}

    def expire(self, key: str) -> None:
        """What the bucket's TTL does to a dead holder's key."""
        self.data.pop(key, None)


async def open_lease_bucket(broker: Any, settings: SessionSettings) -> tuple[KvLeaseStore, SessionSettings]:
    """The lease bucket; if it exists with another TTL, that TTL rules (and heartbeats follow it),
    so the settings returned may differ from those given."""
    from nats.js.errors import BadRequestError

    try:
        kv = await broker.key_value(
            ACCOUNT_LEASES.bucket,
            ttl=settings.lease_ttl_seconds,
            history=1,
            description=ACCOUNT_LEASES.description,
        )
    except BadRequestError:
        kv = await broker.key_value(ACCOUNT_LEASES.bucket, declare=False)
    ttl = (await kv.status()).ttl
    if ttl and abs(ttl - settings.lease_ttl_seconds) > 0.01:
        log.warning(
            "lease bucket TTL is %ss, not the configured %ss: using the bucket's",
            ttl,
            settings.lease_ttl_seconds,
        )
        settings = settings.model_copy(update={"lease_ttl_seconds": ttl})
    return KvLeaseStore(kv), settings
