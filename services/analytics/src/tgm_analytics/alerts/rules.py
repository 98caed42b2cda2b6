"""Alert rules: what an event of the system means for an operator (pure functions, no I/O).

A rule turns one event into actions the engine carries out:

- `Raise`: open an alert, or fold into the undismissed alert with the same `fold_key`;
- `Burst`: count the event under a key in a sliding window and raise only once the count reaches a
  threshold (flood waits per account per hour, failed jobs per campaign, provider failures);
- `Resolve`: dismiss open alerts as `system` because the condition ended (an account back to `active`).

The table of codes and levels is in services/analytics/README.md ("Alerts"); keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tgm_contracts import Event, Service
from tgm_contracts.events_ai import AiProviderFailed
from tgm_contracts.events_campaign import JobStateChanged
from tgm_contracts.events_session import AccountStatusChanged, FloodWaitRecorded, LoginFailed

LEVEL_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2, "critical": 3}

#: account state -> (level, code, title). `flood_wait` is not here: single waits are routine and are
#: counted by the flood-wait rate rule instead.
ACCOUNT_STATES: dict[str, tuple[str, str, str]] = {
    "unauthorized": ("critical", "account.unauthorized", "Account session revoked"),
    "banned": ("critical", "account.banned", "Account banned by Telegram"),
    "frozen": ("error", "account.frozen", "Account frozen by Telegram"),
    "peer_flood": ("warning", "account.peer_flood", "Account limited for spam (PEER_FLOOD)"),
    "proxy_error": ("warning", "account.proxy_error", "Account's proxy is failing"),
}
ACCOUNT_CODES: tuple[str, ...] = tuple(code for _, code, _ in ACCOUNT_STATES.values())

#: Failed campaign jobs that make a burst: this many within the window, per campaign (or per account
#: for jobs outside a campaign).
JOB_FAILURES_THRESHOLD = 5
JOB_FAILURES_WINDOW = timedelta(minutes=10)
#: Provider failures other than a rejected key: a single timeout is noise, three in ten minutes is not.
AI_FAILURES_THRESHOLD = 3
AI_FAILURES_WINDOW = timedelta(minutes=10)
FLOOD_WINDOW = timedelta(hours=1)
#: ai-provider-failed codes meaning the provider refused our credentials.
AI_KEY_REJECTED = frozenset({"UNAUTHORIZED", "FORBIDDEN"})


@dataclass(frozen=True)
class Signal:
    """One occurrence of an alert condition."""

    level: str
    code: str
    title: str
    message: str
    fold_key: str
    event_id: str
    at: datetime
    service: Service | None = None
    account_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class Raise:
    signal: Signal


@dataclass(frozen=True)
class Burst:
    """Count `signal`'s event under `key` and raise `signal` when `threshold` events fall within
    `window` before it (the event included)."""

    key: str
    window: timedelta
    threshold: int
    signal: Signal


@dataclass(frozen=True)
class Resolve:
    fold_keys: tuple[str, ...]
    event_id: str
    at: datetime


Action = Raise | Burst | Resolve


@dataclass(frozen=True)
class RuleSettings:
    flood_waits_per_hour: int = 10


def fold_key(code: str, service: Service | None, who: str | None) -> str:
    """code + service + account/subject: one open alert per condition and thing."""
    return f"{code}|{service.value if service else '-'}|{who or '-'}"


def evaluate(event: Event, settings: RuleSettings) -> list[Action]:
    """The actions one event asks for (most events ask for none)."""
    if isinstance(event, AccountStatusChanged):
        return _account_status(event)
    if isinstance(event, FloodWaitRecorded):
        return [_flood_wait(event, settings.flood_waits_per_hour)]
    if isinstance(event, LoginFailed):
        return _login_failed(event)
    if isinstance(event, JobStateChanged):
        return _job_failed(event)
    if isinstance(event, AiProviderFailed):
        return [_ai_failed(event)]
    return []


def _signal(
    e: Event,
    who: str | None,
    level: str,
    code: str,
    title: str,
    message: str,
    account_id: str | None = None,
    subject: str | None = None,
) -> Signal:
    """The signal event `e` raises: at its time, from the service that published it, folded under
    `code` and `who` (the account or thing the alert is about)."""
    return Signal(
        level=level,
        code=code,
        title=title,
        message=message,
        fold_key=fold_key(code, e.OWNER, who),
        event_id=e.event_id,
        at=e.occurred_at,
        service=e.OWNER,
        account_id=account_id,
        subject=subject,
    )


def _account_status(e: AccountStatusChanged) -> list[Action]:
    state = e.state.value if hasattr(e.state, "value") else str(e.state)
    previous = e.previous_state.value if e.previous_state is not None else None
    if state == "active":
        # The account works again: whatever state alerts it had are over.
        keys = tuple(fold_key(code, Service.TG_SESSION, e.account_id) for code in ACCOUNT_CODES)
        return [Resolve(keys, e.event_id, e.occurred_at)]
    rule = ACCOUNT_STATES.get(state)
    if rule is None or previous == state:
        return []
    level, code, title = rule
    who = e.phone or e.account_id
    text = f"Account {who} went {state}" + (f" (was {previous})" if previous else "")
    if e.reason:
        text += f": {e.reason}"
    if state == "peer_flood" and e.cooldown_until:
        text += f"; cool-down until {e.cooldown_until.isoformat()}"
    return [Raise(_signal(e, e.account_id, level, code, title, text, e.account_id))]


def _flood_wait(e: FloodWaitRecorded, per_hour: int) -> Burst:
    where = e.method or e.category
    message = (
        f"Account {e.account_id} got more than {per_hour} flood waits within an hour "
        f"(latest: {e.seconds} s on {where})"
    )
    signal = _signal(
        e, e.account_id, "warning", "flood_wait.rate", "Too many flood waits", message, e.account_id
    )
    # "above N per hour": the alert starts with the (N+1)th wait inside an hour.
    return Burst(f"flood|{e.account_id}", FLOOD_WINDOW, per_hour + 1, signal)


def _login_failed(e: LoginFailed) -> list[Action]:
    if e.recoverable:
        return []  # a wrong code the operator can retype is not an alert
    who = e.account_id or e.phone or e.qr_session_id
    message = f"Login of {e.phone or who or 'an account'} by {e.method} failed: {e.error} — {e.message}"
    signal = _signal(
        e,
        who,
        "error",
        "login.failed",
        "Login failed",
        message[:1000],
        account_id=e.account_id,
        subject=None if e.account_id else (e.phone or e.qr_session_id),
    )
    return [Raise(signal)]


def _job_failed(e: JobStateChanged) -> list[Action]:
    state = e.state.value if hasattr(e.state, "value") else str(e.state)
    if state != "failed":
        return []
    if e.campaign_id:
        scope, who, account = f"campaign {e.campaign_id}", e.campaign_id, None
    elif e.account_id:
        scope, who, account = f"account {e.account_id}", f"account:{e.account_id}", e.account_id
    else:
        scope, who, account = "direct sends", "direct", None
    reason = e.error or (e.reason.value if e.reason is not None else None)
    message = (
        f"{JOB_FAILURES_THRESHOLD} or more jobs of {scope} failed within "
        f"{int(JOB_FAILURES_WINDOW.total_seconds() // 60)} minutes"
        + (f" (latest: {reason})" if reason else "")
    )
    signal = _signal(
        e, who, "error", "campaign.jobs_failed", "Burst of failed sends", message, account, e.campaign_id
    )
    return [Burst(f"jobs_failed|{who}", JOB_FAILURES_WINDOW, JOB_FAILURES_THRESHOLD, signal)]


def _ai_failed(e: AiProviderFailed) -> Raise | Burst:
    model = f" ({e.model})" if e.model else ""
    if e.code in AI_KEY_REJECTED:
        message = f"{e.provider}{model} refused the configured key during {e.operation}: {e.message}"
        code, title = "ai.provider_key_rejected", "AI provider rejected the API key"
        return Raise(_signal(e, e.provider, "error", code, title, message[:1000], subject=e.provider))
    message = f"{e.provider}{model} failed repeatedly (latest: {e.code} during {e.operation}: {e.message})"
    code, title = "ai.provider_failed", "AI provider failing"
    signal = _signal(e, e.provider, "warning", code, title, message[:1000], subject=e.provider)
    return Burst(f"ai|{e.provider}", AI_FAILURES_WINDOW, AI_FAILURES_THRESHOLD, signal)


def service_down(service: Service, misses: int, interval: float, event_id: str, at: datetime) -> Signal:
    code = "service.down"
    return Signal(
        level="critical",
        code=code,
        title=f"{service.value} is not answering",
        message=f"{service.value} did not answer {misses} health probes in a row (every {interval:g} s)",
        fold_key=fold_key(code, service, None),
        event_id=event_id,
        at=at,
        service=service,
    )


def service_down_key(service: Service) -> str:
    return fold_key("service.down", service, None)


__all__ = [
    "ACCOUNT_STATES",
    "LEVEL_RANK",
    "Action",
    "Burst",
    "Raise",
    "Resolve",
    "RuleSettings",
    "Signal",
    "evaluate",
    "fold_key",
    "service_down",
    "service_down_key",
]
