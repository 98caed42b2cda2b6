"""Pacing: every limit a send must pass, as plain code over plain state (no I/O, no clock of its own).

The scheduler asks :meth:`Pacer.account_holds` which limits hold an account back for one target at a
given time, and :func:`window_hold` for the limits shared by many accounts (the fleet's global
ceiling, one API credential, one recipient). Nothing here sleeps or reads the time: callers pass
`now` (epoch seconds), so the maths is tested with a fake clock.

All windows slide: "20 per minute" means at most 20 sends in any 60 seconds, which is how Telegram
counts, so a cap cannot be spent twice across a minute boundary. Every window is widened by the
safety margin, and so is every FLOOD_WAIT Telegram asks for: our clock and Telegram's see a send a
little apart, and the margin keeps that skew from ever crossing a limit. A finished send counts from
its outcome, not its reservation (:meth:`Pacer.settled`), so a slow send cannot shift a window either.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from tgm_contracts.models.campaign import LimitKind
from tgm_contracts.settings import ComplianceSettings, PacingSettings

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
#: Seconds after which a warm-up hold assumed for an account without a profile is looked at again
#: (`accounts.AccountDirectory` asks tg-session again 10 s after a failed get-accounts).
PROFILE_RECHECK = 15.0


def _minutes(hhmm: str | None) -> int | None:
    if hhmm is None:
        return None
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


def rate_window(per_second: float) -> tuple[int, float]:
    """A rate as (count, window): 10/s -> (10, 1 s); 2.5/s -> (2, 1 s); 0.5/s -> (1, 2 s).

    Rounding down keeps the window conservative."""
    if per_second <= 0:
        raise ValueError("a rate must be positive")
    if per_second >= 1:
        return math.floor(per_second), 1.0
    return 1, 1.0 / per_second


@dataclass(frozen=True)
class Limits:
    """The limits in force, read from the `pacing` and `compliance` settings sections."""

    per_account_per_minute: int = 20
    per_account_per_hour: int = 200
    daily_non_contacts: int = 20
    warmup_days: int = 7
    per_chat_min_interval: float = 1.0
    per_group_per_minute: int = 18
    per_api_per_second: float = 10.0
    global_per_second: float = 25.0
    jitter_min: float = 2.0
    jitter_max: float = 8.0
    quiet_start: int | None = 60  # minutes after local midnight
    quiet_end: int | None = 7 * 60
    timezone: str = "Asia/Taipei"
    account_timezones: Mapping[str, str] = field(default_factory=dict)
    peer_flood_cooldown: float = 24 * HOUR
    margin: float = 1.0
    retry_base: float = 10.0
    retry_max: float = 300.0
    recipient_daily_cap: int = 3
    recipient_total_cap: int = 20
    max_in_flight: int = 1

    @classmethod
    def from_settings(cls, pacing: PacingSettings, compliance: ComplianceSettings | None = None) -> Limits:
        compliance = compliance or ComplianceSettings()
        return cls(
            per_account_per_minute=pacing.per_account_per_minute,
            per_account_per_hour=pacing.per_account_per_hour,
            daily_non_contacts=pacing.per_account_daily_non_contacts,
            warmup_days=pacing.warmup_days,
            per_chat_min_interval=pacing.per_chat_min_interval_seconds,
            per_group_per_minute=pacing.per_group_per_minute,
            per_api_per_second=pacing.per_api_credential_per_second,
            global_per_second=pacing.global_per_second,
            jitter_min=pacing.jitter_min_seconds,
            jitter_max=pacing.jitter_max_seconds,
            quiet_start=_minutes(pacing.quiet_hours_start),
            quiet_end=_minutes(pacing.quiet_hours_end),
            timezone=pacing.timezone,
            account_timezones=dict(pacing.account_timezones),
            peer_flood_cooldown=pacing.peer_flood_cooldown_hours * HOUR,
            margin=pacing.safety_margin_seconds,
            retry_base=pacing.retry_base_seconds,
            retry_max=pacing.retry_max_seconds,
            recipient_daily_cap=compliance.per_recipient_daily_cap,
            recipient_total_cap=compliance.per_recipient_total_cap,
            max_in_flight=pacing.per_account_max_in_flight,
        )


# --- sliding windows -----------------------------------------------------------------------------


def prune(times: Iterable[float], now: float, keep: float) -> list[float]:
    """The events of the last `keep` seconds, oldest first."""
    return sorted(t for t in times if t > now - keep)


def next_slot(times: Sequence[float], cap: int, window: float, now: float) -> float:
    """Earliest time >= `now` at which one more event keeps at most `cap` events in any `window`
    seconds, given the past events `times` (any order)."""
    if cap <= 0:
        return math.inf
    recent = prune(times, now, window)
    if len(recent) < cap:
        return now
    # The event that must leave the window is the (len - cap + 1)-th oldest.
    return max(now, recent[len(recent) - cap] + window)


@dataclass(frozen=True)
class Hold:
    """A limit that stops a send now; `until` is when it lifts (None: not by waiting)."""

    kind: LimitKind
    until: float | None
    used: int | None = None
    cap: int | None = None
    detail: str | None = None


def earliest(holds: Iterable[Hold], now: float) -> float | None:
    """When every hold has lifted (the latest of them), `now` if none holds, None if one never lifts."""
    at = now
    for h in holds:
        if h.until is None:
            return None
        at = max(at, h.until)
    return at


def window_hold(
    kind: LimitKind, times: Sequence[float], cap: int, window: float, now: float, margin: float
) -> Hold | None:
    """The hold of one shared sliding window (global ceiling, API credential), or None."""
    at = next_slot(times, cap, window + margin, now)
    if at <= now:
        return None
    used = len(prune(times, now, window + margin))
    return Hold(kind, None if math.isinf(at) else at, used=used, cap=cap)


def recipient_hold(times: Sequence[float], total: int, limits: Limits, now: float) -> Hold | None:
    """Per-recipient caps: at most `recipient_daily_cap` messages from the whole fleet in any 24 h,
    and `recipient_total_cap` ever (that one never lifts)."""
    if total >= limits.recipient_total_cap:
        return Hold(LimitKind.RECIPIENT_CAP, None, used=total, cap=limits.recipient_total_cap, detail="total")
    at = next_slot(times, limits.recipient_daily_cap, DAY + limits.margin, now)
    if at > now:
        used = len(prune(times, now, DAY + limits.margin))
        return Hold(LimitKind.RECIPIENT_CAP, at, used=used, cap=limits.recipient_daily_cap, detail="daily")
    return None


# --- one account ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a job sends to, as pacing sees it."""

    kind: Literal["private", "group"]
    chat: str  # canonical peer key
    non_contact: bool = False
    urgent: bool = False  # immediate sends are not held by quiet hours


@dataclass(frozen=True)
class AccountProfile:
    """What tg-session tells us about an account that pacing needs."""

    account_id: str
    api_credential: str | None = None
    age_days: float | None = None  # days since it joined the fleet (or its warm-up day)
    warmup: bool = True


@dataclass
class AccountPace:
    """The pacing state of one account, persisted (one document per account) and shared by replicas."""

    account_id: str
    sends: list[float] = field(default_factory=list)  # last hour
    non_contacts: list[float] = field(default_factory=list)  # last 24 h
    chats: dict[str, float] = field(default_factory=dict)  # private chat -> last send
    groups: dict[str, list[float]] = field(default_factory=dict)  # group -> sends of the last minute
    next_at: float = 0.0  # human-like spacing: no send before
    flood_until: float = 0.0
    flood_seconds: float = 0.0
    cooldown_until: float = 0.0
    first_seen: float | None = None
    inflight: dict[str, float] = field(default_factory=dict)  # sends under way: token -> give up at
    rev: int = 0

    def to_doc(self) -> dict[str, Any]:
        # Chat keys may contain dots and dollars (`@user.name` cannot, but be safe): store as pairs.
        return {
            "sends": self.sends,
            "non_contacts": self.non_contacts,
            "chats": [[k, v] for k, v in self.chats.items()],
            "groups": [[k, v] for k, v in self.groups.items()],
            "next_at": self.next_at,
            "flood_until": self.flood_until,
            "flood_seconds": self.flood_seconds,
            "cooldown_until": self.cooldown_until,
            "first_seen": self.first_seen,
            "inflight": dict(self.inflight),
            "rev": self.rev,
        }

    @classmethod
    def from_doc(cls, account_id: str, doc: Mapping[str, Any] | None) -> AccountPace:
        if not doc:
            return cls(account_id)
        return cls(
            account_id=account_id,
            sends=list(doc.get("sends") or []),
            non_contacts=list(doc.get("non_contacts") or []),
            chats={k: float(v) for k, v in doc.get("chats") or []},
            groups={k: list(v) for k, v in doc.get("groups") or []},
            next_at=float(doc.get("next_at") or 0.0),
            flood_until=float(doc.get("flood_until") or 0.0),
            flood_seconds=float(doc.get("flood_seconds") or 0.0),
            cooldown_until=float(doc.get("cooldown_until") or 0.0),
            first_seen=doc.get("first_seen"),
            inflight={str(k): float(v) for k, v in (doc.get("inflight") or {}).items()},
            rev=int(doc.get("rev") or 0),
        )


class Pacer:
    """The account-side limits and the state changes a send, a FLOOD_WAIT or a PEER_FLOOD make."""

    def __init__(self, limits: Limits, rng: random.Random | None = None) -> None:
        self.limits = limits
        self.rng = rng or random.Random()

    # --- reading ---------------------------------------------------------------------------------

    def zone(self, account_id: str) -> ZoneInfo:
        return ZoneInfo(self.limits.account_timezones.get(account_id, self.limits.timezone))

    def quiet_until(self, now: float, account_id: str) -> float | None:
        """End of the quiet hours in the account's local time, if `now` falls inside them."""
        start, end = self.limits.quiet_start, self.limits.quiet_end
        if start is None or end is None or start == end:
            return None
        local = datetime.fromtimestamp(now, self.zone(account_id))
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None
        stop = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
        if stop <= local:
            stop = (stop.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=stop.tzinfo)
        return stop.timestamp()

    def non_contact_cap(self, profile: AccountProfile | None, pace: AccountPace, now: float) -> int:
        """The 24 h cap on messages to strangers, ramped up over the warm-up days for a new account:
        cap·(day+1)/(warmupDays+1) on day 0, 1, … (day 0: the day it joined)."""
        cap, days = self.limits.daily_non_contacts, self.limits.warmup_days
        if days <= 0 or (profile is not None and not profile.warmup):
            return cap
        age = profile.age_days if profile is not None and profile.age_days is not None else None
        if age is None:
            age = (now - pace.first_seen) / DAY if pace.first_seen is not None else 0.0
        if age >= days:
            return cap
        return (cap * (math.floor(age) + 1)) // (days + 1)

    def account_holds(
        self, pace: AccountPace, profile: AccountProfile | None, target: Target, now: float
    ) -> list[Hold]:
        """Every account-side limit that stops this account sending to `target` at `now`."""
        lim = self.limits
        holds: list[Hold] = []
        if pace.cooldown_until > now:
            holds.append(Hold(LimitKind.PEER_FLOOD, pace.cooldown_until))
        if pace.flood_until > now:
            holds.append(Hold(LimitKind.FLOOD_WAIT, pace.flood_until, detail=f"{pace.flood_seconds:.0f}s"))
        if not target.urgent:
            quiet = self.quiet_until(now, pace.account_id)
            if quiet is not None:
                holds.append(Hold(LimitKind.QUIET_HOURS, quiet))
        if pace.next_at > now:
            holds.append(Hold(LimitKind.JITTER, pace.next_at))
        going = sorted(t for t in pace.inflight.values() if t > now)
        if len(going) >= lim.max_in_flight:
            # A lost outcome (a crashed replica) stops holding once its send would have timed out.
            holds.append(
                Hold(
                    LimitKind.JITTER,
                    going[len(going) - lim.max_in_flight],
                    detail=f"{len(going)} send(s) in flight",
                )
            )
        for kind, cap, window in (
            (LimitKind.ACCOUNT_MINUTE, lim.per_account_per_minute, MINUTE),
            (LimitKind.ACCOUNT_HOUR, lim.per_account_per_hour, HOUR),
        ):
            hold = window_hold(kind, pace.sends, cap, window, now, lim.margin)
            if hold is not None:
                holds.append(hold)
        last = pace.chats.get(target.chat) if target.kind == "private" else None
        group = pace.groups.get(target.chat, []) if target.kind == "group" else []
        if target.kind == "group" and group:
            last = max(group)
        if last is not None and last + lim.per_chat_min_interval > now:
            holds.append(Hold(LimitKind.PER_CHAT, last + lim.per_chat_min_interval, detail=target.chat))
        if target.kind == "group":
            hold = window_hold(LimitKind.PER_GROUP, group, lim.per_group_per_minute, MINUTE, now, lim.margin)
            if hold is not None:
                holds.append(replace(hold, detail=target.chat))
        if target.non_contact:
            cap = self.non_contact_cap(profile, pace, now)
            kind = LimitKind.WARMUP if cap < lim.daily_non_contacts else LimitKind.ACCOUNT_DAILY_NON_CONTACTS
            hold = window_hold(kind, pace.non_contacts, cap, DAY, now, lim.margin)
            if hold is not None:
                if hold.until is None and cap == 0 and kind is LimitKind.WARMUP:
                    # Day 0 of a warm-up that allows nothing yet: it lifts on day 1.
                    hold = replace(hold, until=self._warmup_lifts(profile, pace, now))
                if profile is None and kind is LimitKind.WARMUP:
                    # The warm-up is assumed, not known (tg-session did not say whether the account
                    # warms up, e.g. while it restarts): hold, but look again soon. Its real lift
                    # (up to a day away) would make the planner reschedule a fixed job that far.
                    soon = now + PROFILE_RECHECK
                    hold = replace(
                        hold,
                        until=soon if hold.until is None else min(hold.until, soon),
                        detail="profile unknown",
                    )
                holds.append(hold)
        return holds

    def _warmup_lifts(self, profile: AccountProfile | None, pace: AccountPace, now: float) -> float | None:
        age = profile.age_days if profile is not None and profile.age_days is not None else None
        if age is None:
            if pace.first_seen is None:
                return None
            age = (now - pace.first_seen) / DAY
        return now + (math.floor(age) + 1 - age) * DAY

    # --- changing --------------------------------------------------------------------------------

    def reserve(
        self,
        pace: AccountPace,
        target: Target,
        now: float,
        *,
        busy_for: float = 0.0,
        token: str | None = None,
    ) -> AccountPace:
        """The state after one send to `target` at `now` (a new object; `pace` is unchanged).
        `busy_for` marks the account as sending until the outcome is known (or that long passed)."""
        lim = self.limits
        groups = {k: prune(v, now, MINUTE + lim.margin) for k, v in pace.groups.items()}
        groups = {k: v for k, v in groups.items() if v}
        chats = {k: t for k, t in pace.chats.items() if t > now - max(lim.per_chat_min_interval, 1.0)}
        if target.kind == "private":
            chats[target.chat] = now
        else:
            groups.setdefault(target.chat, []).append(now)
        gap = self.rng.uniform(lim.jitter_min, lim.jitter_max) if lim.jitter_max > 0 else 0.0
        return replace(
            pace,
            sends=[*prune(pace.sends, now, HOUR + lim.margin), now],
            non_contacts=[*prune(pace.non_contacts, now, DAY + lim.margin)]
            + ([now] if target.non_contact else []),
            chats=chats,
            groups=groups,
            next_at=max(pace.next_at, now + gap),
            first_seen=pace.first_seen if pace.first_seen is not None else now,
            inflight={
                **{k: t for k, t in pace.inflight.items() if t > now},
                **({token: now + busy_for} if busy_for > 0 and token else {}),
            },
        )

    def settled(self, pace: AccountPace, target: Target, at: float, done: float, token: str) -> AccountPace:
        """The send reserved at `at` has its outcome at `done` (sent, refused, or given up on): its
        windows count it from `done` instead, and the account is no longer busy with it.

        Telegram received the message somewhere between the two, and a later send can only arrive
        after its own reservation, so counting every finished send from the later end keeps each
        window true on Telegram's side however long a send took; counting from the reservation
        let a slow first send and a fast seventh share one minute on the receiving end (measured
        by bench/collaboration under load 5-7: one account-per-minute violation).
        """
        done = max(done, at)

        def moved(times: Sequence[float]) -> list[float]:
            out = list(times)
            if at in out:
                out[out.index(at)] = done
            return out

        groups = dict(pace.groups)
        chats = dict(pace.chats)
        if target.kind == "private":
            if target.chat in chats:
                chats[target.chat] = max(chats[target.chat], done)
        elif target.chat in groups:
            groups[target.chat] = moved(groups[target.chat])
        return replace(
            pace,
            sends=moved(pace.sends),
            non_contacts=moved(pace.non_contacts) if target.non_contact else pace.non_contacts,
            chats=chats,
            groups=groups,
            inflight={k: t for k, t in pace.inflight.items() if k != token},
        )

    def flood_wait(self, pace: AccountPace, now: float, seconds: float) -> AccountPace:
        """Telegram asked this account to wait: nothing is sent before the wait (plus margin) ends."""
        until = now + max(0.0, seconds) + self.limits.margin
        if until <= pace.flood_until:
            return pace
        return replace(pace, flood_until=until, flood_seconds=seconds)

    def peer_flood(self, pace: AccountPace, now: float) -> AccountPace:
        """Telegram says the account is spam-limited: cool it down for the configured time."""
        return replace(pace, cooldown_until=max(pace.cooldown_until, now + self.limits.peer_flood_cooldown))

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based) of a job that failed in a way that may heal."""
        return min(self.limits.retry_max, self.limits.retry_base * 2 ** max(0, attempt - 1))


def reserve_window(times: Sequence[float], now: float, keep: float) -> list[float]:
    """A shared window after one more event at `now` (events older than `keep` dropped)."""
    return [*prune(times, now, keep), now]


def release_window(times: Sequence[float], at: float) -> list[float]:
    """Take back one event recorded at `at` (a reservation whose send did not happen)."""
    out = sorted(times)
    i = bisect_right(out, at) - 1
    if i >= 0 and out[i] == at:
        del out[i]
    return out
