"""The alert rules as pure functions: which events raise what, at which level, folded under which key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tgm_analytics.alerts.rules import (
    Burst,
    Raise,
    Resolve,
    RuleSettings,
    evaluate,
    fold_key,
    service_down,
)
from tgm_contracts import Service
from tgm_contracts.events_ai import AiProviderFailed
from tgm_contracts.events_campaign import JobStateChanged
from tgm_contracts.events_session import AccountStatusChanged, FloodWaitRecorded, LeaseMoved, LoginFailed

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

S = RuleSettings(flood_waits_per_hour=10)


@pytest.mark.parametrize(
    ("state", "level", "code"),
    [
        ("unauthorized", "critical", "account.unauthorized"),
        ("banned", "critical", "account.banned"),
        ("frozen", "error", "account.frozen"),
        ("peer_flood", "warning", "account.peer_flood"),
        ("proxy_error", "warning", "account.proxy_error"),
    ],
)
def test_account_states_raise_at_their_level(state: str, level: str, code: str) -> None:
    e = AccountStatusChanged(
        account_id="a1", phone="+15550001", state=state, previous_state="active", reason="X"
    )
    [action] = evaluate(e, S)
    assert isinstance(action, Raise)
    sig = action.signal
    assert (sig.level, sig.code, sig.account_id, sig.service) == (level, code, "a1", Service.TG_SESSION)
    assert sig.fold_key == fold_key(code, Service.TG_SESSION, "a1")
    assert sig.event_id == e.event_id and "+15550001" in sig.message and "X" in sig.message


def test_routine_states_and_repeated_states_raise_nothing() -> None:
    assert (
        evaluate(AccountStatusChanged(account_id="a1", state="flood_wait", previous_state="active"), S) == []
    )
    assert evaluate(AccountStatusChanged(account_id="a1", state="disconnected"), S) == []
    assert evaluate(AccountStatusChanged(account_id="a1", state="banned", previous_state="banned"), S) == []


def test_account_back_to_active_resolves_its_state_alerts() -> None:
    [action] = evaluate(AccountStatusChanged(account_id="a1", state="active", previous_state="peer_flood"), S)
    assert isinstance(action, Resolve)
    assert fold_key("account.peer_flood", Service.TG_SESSION, "a1") in action.fold_keys
    assert fold_key("account.banned", Service.TG_SESSION, "a1") in action.fold_keys
    assert all("|a1" in k for k in action.fold_keys)


def test_flood_waits_count_per_account_in_an_hour_above_the_setting() -> None:
    e = FloodWaitRecorded(
        account_id="a2", seconds=30, until=_now(), category="send", method="messages.SendMessage"
    )
    [action] = evaluate(e, RuleSettings(flood_waits_per_hour=3))
    assert isinstance(action, Burst)
    assert action.threshold == 4 and action.window == timedelta(hours=1) and action.key == "flood|a2"
    assert action.signal.code == "flood_wait.rate" and action.signal.level == "warning"
    assert "more than 3" in action.signal.message


def test_login_failures_only_when_not_recoverable() -> None:
    soft = LoginFailed(account_id="a1", method="code", error="PHONE_CODE_INVALID", message="wrong code")
    assert evaluate(soft, S) == []
    hard = LoginFailed(
        phone="+15550002", method="code", error="PHONE_NUMBER_BANNED", message="banned", recoverable=False
    )
    [action] = evaluate(hard, S)
    assert isinstance(action, Raise)
    assert action.signal.level == "error" and action.signal.code == "login.failed"
    assert action.signal.subject == "+15550002" and "PHONE_NUMBER_BANNED" in action.signal.message


def test_failed_jobs_burst_per_campaign_or_account() -> None:
    failed = JobStateChanged(
        job_id="j1", state="failed", peer=5, campaign_id="c1", account_id="a1", error="PEER_FLOOD"
    )
    [action] = evaluate(failed, S)
    assert isinstance(action, Burst)
    assert action.key == "jobs_failed|c1" and action.threshold == 5 and action.signal.subject == "c1"
    assert action.signal.level == "error" and "PEER_FLOOD" in action.signal.message
    direct = JobStateChanged(job_id="j2", state="failed", peer=5, account_id="a9")
    [d] = evaluate(direct, S)
    assert isinstance(d, Burst) and d.key == "jobs_failed|account:a9" and d.signal.account_id == "a9"
    assert evaluate(JobStateChanged(job_id="j3", state="sent", peer=5, campaign_id="c1"), S) == []


def test_provider_key_rejected_is_an_error_other_failures_a_burst() -> None:
    bad_key = AiProviderFailed(
        provider="openai", model="gpt", code="UNAUTHORIZED", message="401", operation="chat"
    )
    [a] = evaluate(bad_key, S)
    assert isinstance(a, Raise) and a.signal.level == "error" and a.signal.code == "ai.provider_key_rejected"
    assert a.signal.subject == "openai" and a.signal.service == Service.AI
    slow = AiProviderFailed(provider="openai", code="TIMEOUT", message="slow", operation="chat")
    [b] = evaluate(slow, S)
    assert isinstance(b, Burst) and b.key == "ai|openai" and b.threshold == 3
    assert b.signal.fold_key == fold_key("ai.provider_failed", Service.AI, "openai")


def test_other_events_raise_nothing() -> None:
    assert evaluate(LeaseMoved(account_id="a1", to_replica="r2", reason="acquired"), S) == []


def test_service_down_signal() -> None:
    sig = service_down(Service.CAMPAIGN, 2, 30, "probe-1", _now())
    assert sig.level == "critical" and sig.code == "service.down" and sig.service == Service.CAMPAIGN
    assert sig.fold_key == fold_key("service.down", Service.CAMPAIGN, None)


def _now() -> datetime:
    return datetime.now(UTC)
