"""Figures that equal what happened (issue 12, findings 3 and 4), on the real analytics runtime
(in-memory broker, real database): account states independent of arrival order, failures counted from
job outcomes, sends and receipts split by origin, the fleet's own accounts left out of member and lead
figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_analytics.stats.store import FACTS, split_failures
from tgm_contracts import events_campaign as cp
from tgm_contracts import events_session as ts
from tgm_contracts.commands import analytics as A
from tgm_contracts.models.campaign import JobReason, JobState
from tgm_contracts.models.session import AccountState, TelegramProfile, TelegramUser

from .conftest import ok, publish

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]

T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=24)
WINDOW = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=3)).isoformat(), "timezone": "UTC"}
FLEET_USER = 900  # the Telegram user id of our own account f1
PERSON = 901


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def sent(job: str | None, minutes: float, origin: Any = "rpc", chat: int = 101) -> ts.MessageSent:
    return ts.MessageSent(
        account_id="a1",
        job_id=job,
        chat_kind="private",
        chat_id=chat,
        message_id=int(minutes * 10),
        sent_at=at(minutes),
        origin=origin,
        occurred_at=at(minutes),
    )


def fleet_login(minutes: float) -> ts.AccountLoggedIn:
    """Our account f1 logs in: analytics learns its Telegram user id (FLEET_USER)."""
    return ts.AccountLoggedIn(
        account_id="f1",
        phone="+15550100009",
        method="code",
        profile=TelegramProfile(telegram_id=FLEET_USER),
        occurred_at=at(minutes),
    )


def job_failed(job: str, reason: JobReason, minutes: float, account: str | None = "a1") -> cp.JobStateChanged:
    return cp.JobStateChanged(
        job_id=job,
        state=JobState.FAILED,
        previous_state=JobState.PENDING,
        reason=reason,
        account_id=account,
        peer="101",
        occurred_at=at(minutes),
    )


async def test_account_states_do_not_depend_on_arrival_order(client) -> None:
    # q1: the QR login as tg-session published it before: `active` first (no stateAt, an older
    # publisher), `account-added` a moment later. `new` is the first state: it never resets `active`.
    # q2: the fixed order (added, then active with its stateAt), delivered the other way round.
    # q3: two changes whose publishing order differs from the order they happened in: stateAt decides.
    await publish(
        client,
        ts.AccountStatusChanged(account_id="q1", state=AccountState.ACTIVE, occurred_at=at(10)),
        ts.AccountAdded(account_id="q1", phone="+15550100001", occurred_at=at(10.01)),
        ts.AccountStatusChanged(
            account_id="q2", state=AccountState.ACTIVE, state_at=at(9), occurred_at=at(9)
        ),
        ts.AccountAdded(account_id="q2", phone="+15550100002", occurred_at=at(8)),
        ts.AccountAdded(account_id="q3", phone="+15550100003", occurred_at=at(1)),
        ts.AccountStatusChanged(
            account_id="q3", state=AccountState.BANNED, state_at=at(20), occurred_at=at(30)
        ),
        ts.AccountStatusChanged(
            account_id="q3", state=AccountState.ACTIVE, state_at=at(15), occurred_at=at(31)
        ),
        ts.AccountAdded(account_id="q4", phone="+15550100004", occurred_at=at(2)),
    )
    accounts = (await ok(client, A.GetDashboardStats, WINDOW))["accounts"]
    assert accounts["byState"] == {"active": 2, "banned": 1, "new": 1}
    assert (accounts["total"], accounts["connected"]) == (4, 2)


async def test_failed_counts_every_permanent_job_failure_once(client) -> None:
    template = job_failed("j-template", JobReason.TEMPLATE_ERROR, 10, account=None)
    await publish(
        client,
        # a job whose template could not render: no send was ever attempted, tg-session said nothing
        template,
        # the same outcome published again by another replica (another event id): still one job
        template.model_copy(update={"event_id": "evt-again"}),
        # a job Telegram refused twice, then failed for good
        ts.MessageSendFailed(
            account_id="a1",
            job_id="j-privacy",
            peer="102",
            error_code="TELEGRAM_ERROR",
            telegram_error="USER_PRIVACY_RESTRICTED",
            occurred_at=at(20),
        ),
        job_failed("j-privacy", JobReason.PRIVACY_RESTRICTED, 20.1),
        # a job that hit two flood waits and was then delivered: refused attempts, not a failure
        ts.MessageSendFailed(
            account_id="a1", job_id="j-ok", peer="101", error_code="FLOOD_WAIT", occurred_at=at(30)
        ),
        ts.MessageSendFailed(
            account_id="a1", job_id="j-ok", peer="101", error_code="FLOOD_WAIT", occurred_at=at(35)
        ),
        cp.JobStateChanged(
            job_id="j-ok", state=JobState.SENT, account_id="a1", peer="101", occurred_at=at(40)
        ),
        sent("j-ok", 40),
    )
    data = await ok(client, A.GetMessageStats, {**WINDOW, "bucket": "hour"})
    totals = data["totals"]
    assert totals["failed"] == 2  # what get-queue-status shows: 2 jobs in state failed
    assert (totals["sent"], totals["failedAttempts"]) == (1, 3)
    assert data["failuresByError"] == {"template_error": 1, "privacy_restricted": 1}
    assert data["attemptFailuresByError"] == {"FLOOD_WAIT": 2, "USER_PRIVACY_RESTRICTED": 1}
    assert [b["failed"] for b in data["buckets"]] == [2, 0, 0]
    dashboard = await ok(client, A.GetDashboardStats, WINDOW)
    assert (dashboard["messages"]["failed"], dashboard["messages"]["failedAttempts"]) == (2, 3)
    series = await ok(client, A.GetAnalytics, {**WINDOW, "metrics": ["messages_failed"]})
    assert series["series"][0]["total"] == 2


async def test_sent_and_received_split_by_origin(client) -> None:
    fired = {"rule_name": "price", "actions": ["reply"], "outcome": "fired"}
    await publish(
        client,
        sent("j-operator", 10),  # an operator's send through the queue
        # a trigger's reply job: the firing names it after the send was already counted ...
        sent("j-auto-1", 20),
        cp.TriggerFired(rule_id="r1", job_ids=["j-auto-1"], occurred_at=at(20.5), **fired),
        # ... or before it
        cp.TriggerFired(rule_id="r1", job_ids=["j-auto-2"], occurred_at=at(29), **fired),
        sent("j-auto-2", 30),
        sent(None, 40, origin="external"),  # typed by our account on its phone
        # a person writes, and so does another of our own accounts (f1, Telegram user 900)
        *(
            ts.MessageReceived(
                account_id="a1",
                chat_kind="private",
                chat_id=sender,
                sender_id=sender,
                message_id=1,
                date=at(50),
                occurred_at=at(50),
            )
            for sender in (PERSON, FLEET_USER)
        ),
        fleet_login(60),
    )
    totals = (await ok(client, A.GetMessageStats, WINDOW))["totals"]
    assert totals["sent"] == 4
    assert totals["sentByOrigin"] == {"queue": 1, "automation": 2, "external": 1}
    assert totals["received"] == 2
    assert totals["receivedByOrigin"] == {"people": 1, "fleet": 1}
    dashboard = (await ok(client, A.GetDashboardStats, WINDOW))["messages"]
    assert dashboard["sentByOrigin"] == totals["sentByOrigin"]


async def test_fleet_accounts_are_not_members_or_leads(client) -> None:
    def joined(user: int, minutes: float) -> ts.MemberJoined:
        return ts.MemberJoined(
            account_id="a1",
            chat_id=-500,
            chat_title="Sales",
            user=TelegramUser(user_id=user),
            joined_at=at(minutes),
            occurred_at=at(minutes),
        )

    await publish(
        client,
        # our account f1 joins the group before analytics knows it is ours: it is left out anyway
        joined(FLEET_USER, 10),
        joined(PERSON, 20),
        cp.LeadCaptured(lead_id="L-fleet", user_id=FLEET_USER, source_type="keyword", occurred_at=at(11)),
        cp.LeadCaptured(lead_id="L-person", user_id=PERSON, source_type="keyword", occurred_at=at(21)),
        fleet_login(5),
    )
    groups = await ok(client, A.GetGroupStats, WINDOW)
    assert groups["totals"]["membersJoined"] == 1
    assert [g["membersJoined"] for g in groups["groups"]] == [1]
    series = await ok(client, A.GetAnalytics, {**WINDOW, "metrics": ["members_joined", "leads_created"]})
    assert {s["metric"]: s["total"] for s in series["series"]} == {"members_joined": 1, "leads_created": 1}
    leads = (await ok(client, A.GetDashboardStats, WINDOW))["leads"]
    assert (leads["new"], leads["total"]) == (1, 1)
    assert (await ok(client, A.GetConversionStats, WINDOW))["leads"] == 1


async def test_migration_5_makes_stored_send_failures_attempts(client) -> None:
    facts = client.runtime.db[FACTS]
    await facts.insert_many(
        [
            {"_id": "old-attempt", "k": "failed", "s": "tg-session", "t": at(10), "e": "PEER_FLOOD", "n": 1},
            {"_id": "failed:j1", "k": "failed", "s": "campaign", "t": at(11), "e": "template_error", "n": 1},
        ]
    )
    await split_failures(client.runtime.db)
    assert {d["_id"]: d["k"] async for d in facts.find({})} == {
        "old-attempt": "attempt_failed",
        "failed:j1": "failed",
    }
