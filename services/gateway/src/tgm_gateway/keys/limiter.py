"""Token buckets by name: one per API key (a runaway script cannot starve the others; shared by every
gateway replica through NATS KV, `SharedKeyRate`) and one per client address for failed
authentications (guessing keys costs the guesser, not the database; per replica).

Both are bounded: past `max_entries` names the least recently used bucket is forgotten, which only
ever gives a name a fresh, full bucket — so memory stays flat whatever names a caller invents.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

log = logging.getLogger("tgm.gateway.keys")


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_entries: int = 100_000) -> None:
        self.rate, self.burst, self.max_entries = rate, burst, max_entries
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, name: str, now: float) -> float:
        tokens, last = self._buckets.get(name, (float(self.burst), now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def _store(self, name: str, tokens: float, now: float) -> None:
        self._buckets[name] = (tokens, now)
        self._buckets.move_to_end(name)
        while len(self._buckets) > self.max_entries:
            self._buckets.popitem(last=False)

    def wait(self, name: str) -> float:
        """0 when a token is there (none is taken), else seconds until one is."""
        tokens = self._level(name, time.monotonic())
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, name: str) -> float:
        """0 when allowed (a token is taken), else seconds until a token is free."""
        now = time.monotonic()
        tokens = self._level(name, now)
        if tokens >= 1:
            self._store(name, tokens - 1, now)
            return 0.0
        self._store(name, tokens, now)
        return (1 - tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)


class KeyRateLimiter(TokenBuckets):
    """Requests per API key (after authentication, so only real key ids get a bucket)."""


class FailedAuthLimiter(TokenBuckets):
    """Failed authentications per client address: `take` on each failure, `wait` before each lookup."""


class SharedKeyRate:
    """Requests per API key, one budget for all gateway replicas (issue 13): a token bucket per key in
    the `tgm_key_rate` KV bucket, updated compare-and-set, so two replicas behind a load balancer do
    not give a key twice its rate.

    A replica does not go to the bus per request: it leases a few tokens at a time (`chunk`, a tenth
    of a second of the rate) and serves from the lease until it is used up or `lease_seconds` old.
    What a replica leased and did not use is lost, never returned: the shared figure can only ever
    under-serve a key by at most `chunk` per replica, never let it exceed `rate` plus `burst`.
    Concurrent requests of one key on one replica wait for one lease (a lock per key, bounded like
    the buckets).

    When the bus does not answer (NATS away, KV not there yet) each replica falls back to its own
    local bucket of the same rate, says so once in the log, and goes back to the shared budget at
    the next lease that works: requests are limited, never refused because the limiter failed.
    """

    _KEY = re.compile(r"^[A-Za-z0-9_=-]{1,64}$")

    def __init__(
        self,
        rate: float,
        burst: int,
        kv: Callable[[], Awaitable[Any]],
        *,
        lease_seconds: float = 1.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rate, self.burst = rate, burst
        self.chunk = max(1, min(burst, math.ceil(rate * 0.1)))
        self.lease_seconds = lease_seconds
        self.local = KeyRateLimiter(rate, burst, max_entries)
        self._kv, self._clock, self._max = kv, clock, max_entries
        self._leases: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, expires)
        self._locks: OrderedDict[str, asyncio.Lock] = OrderedDict()
        self._degraded = False
        self._bucket: Any = None  # the KV handle, looked up once and again after a failure

    def _name(self, key_id: str) -> str:
        return key_id if self._KEY.match(key_id) else hashlib.sha1(key_id.encode()).hexdigest()

    def _lock(self, key_id: str) -> asyncio.Lock:
        lock = self._locks.get(key_id)
        if lock is None:
            lock = self._locks[key_id] = asyncio.Lock()
            while len(self._locks) > self._max:
                self._locks.popitem(last=False)
        self._locks.move_to_end(key_id)
        return lock

    def _from_lease(self, key_id: str, now: float) -> bool:
        tokens, expires = self._leases.get(key_id, (0.0, 0.0))
        if tokens >= 1 and now < expires:
            self._leases[key_id] = (tokens - 1, expires)
            return True
        return False

    async def take(self, key_id: str) -> float:
        """0 when allowed (a token is taken), else seconds until the shared bucket has one."""
        if self._from_lease(key_id, self._clock()):
            return 0.0
        async with self._lock(key_id):
            now = self._clock()
            if self._from_lease(key_id, now):  # another request of this key leased meanwhile
                return 0.0
            try:
                granted, wait = await self._lease(self._name(key_id), now)
            except Exception as exc:  # the bus is away: limit locally rather than refuse or let through
                self._bucket = None
                if not self._degraded:
                    log.warning("key rate: shared budget unavailable (%s); limiting per replica", exc)
                    self._degraded = True
                return self.local.take(key_id)
            if self._degraded:
                log.info("key rate: shared budget available again")
                self._degraded = False
            if granted < 1:
                return wait
            self._leases[key_id] = (granted - 1, now + self.lease_seconds)
            self._leases.move_to_end(key_id)
            while len(self._leases) > self._max:
                self._leases.popitem(last=False)
            return 0.0

    async def _lease(self, name: str, now: float) -> tuple[float, float]:
        """(tokens granted, seconds to wait when none): one compare-and-set on the key's entry."""
        if self._bucket is None:
            self._bucket = await self._kv()
        kv = self._bucket
        for _ in range(8):  # another replica wrote between our read and write: read again
            try:
                entry = await kv.get(name)
                state, revision = json.loads(entry.value), entry.revision
                tokens = min(self.burst, float(state["t"]) + max(0.0, now - float(state["at"])) * self.rate)
            except KeyNotFoundError:
                tokens, revision = float(self.burst), None
            granted = min(float(self.chunk), math.floor(tokens))
            if granted < 1:
                return 0.0, (1 - tokens) / self.rate
            value = json.dumps({"t": tokens - granted, "at": now}).encode()
            try:
                if revision is None:
                    await kv.create(name, value)
                else:
                    await kv.update(name, value, last=revision)
                return granted, 0.0
            except KeyWrongLastSequenceError:
                continue
        return 0.0, 1 / self.rate  # eight lost races in a row: the key is that busy; back off a token
