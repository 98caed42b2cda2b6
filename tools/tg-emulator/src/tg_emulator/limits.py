"""Telegram's limits (rate limits, caps) and on-demand fault injection.

Rate limits are sliding windows over the world's clock; when one is exceeded the request is
answered ``FLOOD_WAIT_X`` (X = whole seconds until the window admits the request again), as
Telegram does. Defaults are modelled on Telegram's published bot guidance (about one message per
second in one chat, about 20 messages per minute in one group) and on limits observed on user
accounts (a few dozen messages a minute across chats; spam-limited accounts get ``PEER_FLOOD``
when writing to strangers). Every value is configurable per world; ``None`` switches a limit off.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import RpcFail, code_for


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` events per ``window`` seconds."""

    count: int
    window: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.window <= 0:
            raise ValueError("a rate limit needs count >= 1 and window > 0")


def _rl(value: Any) -> RateLimit | None:
    if value is None or isinstance(value, RateLimit):
        return value
    if isinstance(value, dict):
        return RateLimit(int(value["count"]), float(value["window"]))
    if isinstance(value, list | tuple) and len(value) == 2:
        return RateLimit(int(value[0]), float(value[1]))
    raise ValueError(f"a rate limit is {{count, window}} or null, got {value!r}")


#: The fields of `Limits` that are message rate limits (a RateLimit, or None for off).
MESSAGE_RATE_LIMITS = ("account_messages", "private_chat_messages", "group_messages", "non_contact_messages")


@dataclass
class Limits:
    """Per-world limits. See the README for the reasoning behind each default."""

    # Messages one account may send in total (all chats).
    account_messages: RateLimit | None = field(default_factory=lambda: RateLimit(30, 60))
    # Messages one account may send into one private chat (about 1/s with a short burst).
    private_chat_messages: RateLimit | None = field(default_factory=lambda: RateLimit(5, 5))
    # Messages one account may send into one group or channel (Telegram: ~20 per minute).
    group_messages: RateLimit | None = field(default_factory=lambda: RateLimit(20, 60))
    # Messages to users who are neither contacts nor ever wrote first; beyond it: PEER_FLOOD.
    non_contact_messages: RateLimit | None = field(default_factory=lambda: RateLimit(20, 86400))
    # Per-method limits per account (or per auth key before login), e.g. resolving usernames.
    methods: dict[str, RateLimit] = field(
        default_factory=lambda: {
            "contacts.resolveUsername": RateLimit(200, 86400),
            "auth.sendCode": RateLimit(5, 3600),
            "contacts.importContacts": RateLimit(100, 86400),
        }
    )
    # Channels and supergroups one account may be in (CHANNELS_TOO_MUCH beyond it).
    max_channels: int = 500
    # channels.getParticipants: at most this many per call, and none past this offset.
    participants_page_max: int = 200
    participants_total_max: int = 10000
    # messages.getHistory / getDialogs page cap.
    history_page_max: int = 100
    # A login code lives this long (PHONE_CODE_EXPIRED after it); a QR token too.
    code_ttl: float = 300.0
    login_token_ttl: float = 30.0
    message_length_max: int = 4096
    # Members a basic group may have and a supergroup may have.
    chat_size_max: int = 200
    megagroup_size_max: int = 200000

    @classmethod
    def unlimited(cls) -> Limits:
        """No rate limits at all (benchmarks); caps stay as Telegram's."""
        limits = cls(methods={})
        for name in MESSAGE_RATE_LIMITS:
            setattr(limits, name, None)
        return limits

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Limits:
        limits = cls()
        limits.update(data or {})
        return limits

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"unknown limit {key!r}; known: {sorted(names)}")
            if key == "methods":
                if not isinstance(value, dict):
                    raise ValueError("methods is a mapping of method name to {count, window}")
                self.methods = {k: v for k, v in ((k, _rl(v)) for k, v in value.items()) if v is not None}
            elif key in MESSAGE_RATE_LIMITS:
                setattr(self, key, _rl(value))
            else:
                if not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"{key} must be a positive number")
                setattr(self, key, type(getattr(self, key))(value))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RateLimiter:
    """Sliding-window counters keyed by (limit name, subject)."""

    def __init__(self) -> None:
        self._events: dict[tuple, deque[float]] = {}

    def check(self, key: tuple, limit: RateLimit | None, now: float, *, error: str = "FLOOD_WAIT") -> None:
        """Raise ``FLOOD_WAIT_X`` (or PEER_FLOOD) if one more event would exceed ``limit``."""
        if limit is None:
            return
        q = self._events.get(key)
        if q is None:
            return
        while q and q[0] <= now - limit.window:
            q.popleft()
        if len(q) >= limit.count:
            if error == "PEER_FLOOD":
                raise RpcFail("PEER_FLOOD")
            wait = max(1, math.ceil(q[0] + limit.window - now))
            raise RpcFail(f"{error}_{wait}")

    def hit(self, key: tuple, limit: RateLimit | None, now: float) -> None:
        if limit is None:
            return
        q = self._events.setdefault(key, deque())
        q.append(now)
        while q and q[0] <= now - limit.window:
            q.popleft()

    def reset(self) -> None:
        self._events.clear()


@dataclass
class FaultRule:
    """Fail the next ``count`` calls of ``method`` ('*' for any) with ``error``."""

    method: str
    error: str
    count: int = 1
    code: int | None = None
    user_id: int | None = None
    drop: bool = False  # drop the connection instead of answering

    def matches(self, method: str, user_id: int | None) -> bool:
        if self.count <= 0:
            return False
        if self.method not in ("*", method):
            return False
        return self.user_id is None or self.user_id == user_id


class Faults:
    """Fault injection: failing calls, dropped connections, added latency."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self.latency: dict[str, float] = {}  # method or '*' -> seconds
        self.fired: list[dict[str, Any]] = []

    def fail_next(
        self,
        method: str,
        error: str,
        count: int = 1,
        *,
        code: int | None = None,
        user_id: int | None = None,
    ) -> FaultRule:
        """The next ``count`` calls of ``method`` (TL name, e.g. ``messages.sendMessage``) fail."""
        RpcFail(error, code)  # validates the message
        if count < 1:
            raise ValueError("count must be >= 1")
        rule = FaultRule(method, error, count, code if code is not None else code_for(error), user_id)
        self.rules.append(rule)
        return rule

    def drop_next(self, method: str, count: int = 1, *, user_id: int | None = None) -> FaultRule:
        """The next ``count`` calls of ``method`` close the connection instead of answering."""
        rule = FaultRule(method, "DROPPED", count, None, user_id, drop=True)
        self.rules.append(rule)
        return rule

    def set_latency(self, seconds: float, method: str = "*") -> None:
        """Delay every answer to ``method`` ('*' for all) by ``seconds`` (0 removes it)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        if seconds == 0:
            self.latency.pop(method, None)
        else:
            self.latency[method] = seconds

    def latency_for(self, method: str) -> float:
        return self.latency.get(method, self.latency.get("*", 0.0))

    def take(self, method: str, user_id: int | None) -> FaultRule | None:
        for rule in self.rules:
            if rule.matches(method, user_id):
                rule.count -= 1
                self.fired.append({"method": method, "error": rule.error, "user_id": user_id})
                self.rules = [r for r in self.rules if r.count > 0]
                return rule
        return None

    def clear(self) -> None:
        self.rules.clear()
        self.latency.clear()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [asdict(r) for r in self.rules],
            "latency": dict(self.latency),
            "fired": list(self.fired[-100:]),
        }


async def apply_latency(faults: Faults, method: str) -> None:
    delay = faults.latency_for(method)
    if delay > 0:
        await asyncio.sleep(delay)
