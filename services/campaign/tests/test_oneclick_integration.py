"""get-system-status and one-click start/stop against a real nats-server and database, with FakeFleet
as tg-session and a small ai double (a real runtime of the ai service: its `ai` settings section is
the runtime's own settings store; `get-ai-settings` answers a settable view, or hangs on demand).

What is checked is the effect: counts equal what was created, the ai section's `autoReply` as saved
in ai, the queue's pause as stored, campaigns' statuses and deliveries, progress events in order; a
service that does not answer is `available: false` within the deadline."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from tgm_campaign.automation.oneclick_service import START_STEPS, STOP_STEPS
from tgm_campaign.automation.system_status import SystemStatusService, summarise_accounts
from tgm_campaign.testing import FleetChat
from tgm_contracts import Service
from tgm_contracts.base import Empty
from tgm_contracts.commands import automation as A
from tgm_contracts.commands import messaging as M
from tgm_contracts.commands.ai import GetAiSettings
from tgm_contracts.models.ai import AiSettingsView
from tgm_contracts.models.session import AccountView
from tgm_runtime import CallContext, RuntimeSettings, ServiceRuntime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class FakeAi:
    """The ai service as far as automation reaches it: `get-ai-settings` and the `ai` section."""

    def __init__(self, nats_url: str, mongo_uri: str, prefix: str) -> None:
        self.rt: ServiceRuntime[None] = ServiceRuntime(
            Service.AI,
            "test-double",
            settings=RuntimeSettings(
                nats_url=nats_url, mongodb_uri=mongo_uri, database_prefix=prefix, replica_id="ai-double"
            ),
        )
        self.view = AiSettingsView()
        self.hang = False
        self.release = asyncio.Event()

        @self.rt.command(GetAiSettings)
        async def settings(req: Empty, ctx: CallContext) -> AiSettingsView:
            if self.hang:
                await self.release.wait()
            return self.view

    async def auto_reply(self) -> bool:
        return bool((await self.rt.settings_section("ai")).auto_reply)


@pytest_asyncio.fixture
async def ai(campaign: Any) -> AsyncIterator[FakeAi]:
    fake = FakeAi(campaign.nats_url, campaign.mongo_uri, campaign.prefix + "ai_")
    await fake.rt.start()
    try:
        yield fake
    finally:
        fake.release.set()
        await fake.rt.stop()


def codes(status: dict[str, Any]) -> set[str]:
    return {w["code"] for w in status["warnings"]}


def progress_of(campaign: Any, operation: str, after: int) -> list[dict[str, Any]]:
    return [
        e
        for e in campaign.events[after:]
        if e["_subject"].endswith("one-click-progress.v1") and e["operation"] == operation
    ]


async def campaign_status(campaign: Any, cid: str) -> str:
    page = await campaign.data(A.GetCampaigns, {})
    return next(c["status"] for c in page["items"] if c["id"] == cid)


# --- get-system-status ---------------------------------------------------------------------------


async def test_system_status_counts_what_exists_and_warns_with_fixes(campaign: Any, ai: FakeAi) -> None:
    ks = await campaign.data(A.AddKeywordSet, {"name": "Buyers", "keywords": ["price", "价格"]})
    await campaign.data(A.AddKeywordSet, {"name": "Old", "keywords": ["x"], "isActive": False})
    await campaign.data(M.AddTemplate, {"name": "Hello", "content": "Hi {name}"})
    await campaign.data(M.AddTemplate, {"name": "Off", "content": "later", "isActive": False})
    await campaign.data(
        A.SaveTriggerRule,
        {"name": "AI answer", "keywordSetIds": [ks["id"]], "actions": [{"type": "ai_reply"}]},
    )
    await campaign.data(M.PauseQueue, {"scope": "all"})
    ai.view = AiSettingsView(default_provider="openai")  # not enabled, no key: cannot reply

    status = await campaign.data(A.GetSystemStatus, {})
    assert status["accounts"] == {
        "available": True,
        "total": 3,
        "online": 3,
        "offline": 0,
        "sendersTotal": 3,
        "sendersOnline": 3,
        "listenersOnline": 3,
    }
    assert status["keywordSets"] == {"total": 2, "active": 1}
    assert status["keywords"] == 3
    assert status["triggerRules"] == {"total": 1, "active": 1}
    assert status["templates"] == {"total": 2, "active": 1}
    assert status["groups"] == {"total": 0, "active": 0}
    assert status["campaigns"] == {"total": 0, "active": 0}
    assert status["queue"]["paused"] is True
    assert status["ai"] == {"available": True, "autoReply": False, "provider": "openai", "canReply": False}
    found = codes(status)
    assert {"QUEUE_PAUSED", "NO_GROUPS", "AI_PROVIDER_NOT_READY"} <= found
    assert not found & {
        "TG_SESSION_UNAVAILABLE",
        "NO_LISTENER_ONLINE",
        "NO_ACTIVE_RULES",
        "NO_KEYWORD_SETS",
        "STATUS_PART_FAILED",
    }
    assert all(w["fix"] for w in status["warnings"])

    # the effects move the figures: an account goes offline, AI becomes ready, the queue resumes
    await campaign.fleet.unserve("acct2")
    assert ai.rt.settings_store is not None
    await ai.rt.settings_store.save("ai", {"autoReply": True}, None)
    ai.view = AiSettingsView(default_provider="local")
    await campaign.data(M.ResumeQueue, {"scope": "all"})
    again = await campaign.data(A.GetSystemStatus, {})
    assert (again["accounts"]["online"], again["accounts"]["offline"]) == (2, 1)
    assert again["ai"] == {"available": True, "autoReply": True, "provider": "local", "canReply": True}
    assert again["queue"]["paused"] is False
    assert not codes(again) & {"QUEUE_PAUSED", "AI_PROVIDER_NOT_READY"}


async def test_a_service_that_does_not_answer_is_unavailable_within_the_deadline(
    campaign: Any, ai: FakeAi
) -> None:
    await campaign.data(
        A.SaveTriggerRule,
        {
            "name": "AI answer",
            "keywordSetIds": [(await campaign.data(A.AddKeywordSet, {"name": "K", "keywords": ["k"]}))["id"]],
            "actions": [{"type": "ai_reply"}],
        },
    )
    ai.hang = True  # ai is up but never answers get-ai-settings
    started = time.monotonic()
    status = await campaign.data(A.GetSystemStatus, {})
    assert time.monotonic() - started < 4.0
    assert status["ai"]["available"] is False
    assert status["accounts"]["available"] is True  # tg-session answered
    assert "AI_UNAVAILABLE" in codes(status)
    assert next(w for w in status["warnings"] if w["code"] == "AI_UNAVAILABLE")["severity"] == "critical"

    # tg-session and ai both silent (calls that never return): both unavailable, still in time
    async def silent_call(target: Any, payload: Any, timeout: float) -> Any:
        await asyncio.Event().wait()

    async def silent_request(subject: str, body: Any, response: Any, timeout: float) -> Any:
        await asyncio.Event().wait()

    app = campaign.m
    system = SystemStatusService(
        app.system.stores,
        app.monitoring,
        app.campaigns,
        app.status,
        app.system.messaging,
        silent_call,
        time.time,
        silent_request,
        deadline=0.5,
    )
    started = time.monotonic()
    quiet = await system.status(Empty())
    assert time.monotonic() - started < 2.0
    assert not quiet.accounts.available and not quiet.ai.available
    assert {"TG_SESSION_UNAVAILABLE", "AI_UNAVAILABLE"} <= {w.code for w in quiet.warnings}
    assert quiet.trigger_rules.active == 1  # the local figures are there all the same


# --- one-click -----------------------------------------------------------------------------------


async def test_one_click_start_brings_everything_up_and_stop_takes_it_down(campaign: Any, ai: FakeAi) -> None:
    fleet = campaign.fleet
    fleet.chats.append(FleetChat(chat_id=-1007001, title="Sales", username="salesgroup"))
    for acct in fleet.accounts.values():
        acct.members_of = set()  # nobody is a member yet: one listener joins
    ks = await campaign.data(A.AddKeywordSet, {"name": "Buyers", "keywords": ["price"]})
    group = await campaign.data(A.AddGroup, {"group": "@salesgroup", "keywordSetIds": [ks["id"]]})
    quick = await campaign.data(
        A.AddCampaign, {"name": "Quick", "audience": {"peers": [7101, 7102]}, "steps": [{"text": "hello"}]}
    )
    held = await campaign.data(
        A.AddCampaign, {"name": "Held", "audience": {"peers": [7201, 7202]}, "steps": [{"text": "later"}]}
    )
    await campaign.data(M.PauseQueue, {"scope": "all"})
    await campaign.data(M.PauseQueue, {"scope": "campaign", "campaignId": held["id"]})  # stays held
    mark = len(campaign.events)

    payload = {
        "aiAutoReply": True,
        "resumeQueue": True,
        "forceRefresh": True,
        "campaignIds": [quick["id"], held["id"]],
    }
    result = await campaign.data(A.OneClickStart, payload, timeout=60)
    assert [s["step"] for s in result["steps"]] == list(START_STEPS)
    assert all(s["ok"] for s in result["steps"]), result["steps"]
    assert result["ok"] is True and result["monitoring"]["active"] is True
    # the effects, each where it lives
    assert await ai.auto_reply() is True
    queue = await campaign.data(M.GetQueueStatus, {})
    assert queue["paused"] is False
    assert await campaign_status(campaign, quick["id"]) in ("running", "completed")
    assert await campaign_status(campaign, held["id"]) == "running"
    groups = (await campaign.data(A.GetMonitoredGroups, {}))["items"]
    assert [(g["id"], g["status"]) for g in groups] == [(group["id"], "ok")]
    assert len(fleet.joins) == 1  # one listener joined, once
    # progress: every step began (ok null) and ended, in order, then `done` at 100 %
    done = await campaign.wait_event(
        lambda e: e["_subject"].endswith("one-click-progress.v1") and e["step"] == "done", 10
    )
    assert done["progress"] == 100 and done["ok"] is True
    steps = progress_of(campaign, "start", mark)
    ended = [e["step"] for e in steps if e["ok"] is not None and e["step"] != "done"]
    assert ended == list(START_STEPS)
    assert [e["progress"] for e in steps] == sorted(e["progress"] for e in steps)

    # twice is fine: the same report, no second join, no second delivery
    second = await campaign.data(A.OneClickStart, payload, timeout=60)
    assert second["ok"] is True and [s["step"] for s in second["steps"]] == list(START_STEPS)
    await fleet.wait_for(lambda f: {7101, 7102} <= {int(d.peer) for d in f.deliveries}, 20)
    assert len(fleet.joins) == 1
    assert Counter(int(d.peer) for d in fleet.deliveries) == {7101: 1, 7102: 1}  # Held is still held

    mark = len(campaign.events)
    stopped = await campaign.data(A.OneClickStop, {"pauseQueue": True, "stopCampaigns": True}, timeout=60)
    assert [s["step"] for s in stopped["steps"]] == list(STOP_STEPS)
    assert stopped["ok"] is True, stopped["steps"]
    assert stopped["monitoring"]["active"] is False
    assert await ai.auto_reply() is False
    assert (await campaign.data(M.GetQueueStatus, {}))["paused"] is True
    assert await campaign_status(campaign, held["id"]) == "stopped"
    status = await campaign.data(A.GetSystemStatus, {})
    assert status["monitoring"]["active"] is False and status["queue"]["paused"] is True
    assert [e["step"] for e in progress_of(campaign, "stop", mark) if e["ok"] is not None] == [
        *STOP_STEPS,
        "done",
    ]
    # stopping again is fine too
    assert (await campaign.data(A.OneClickStop, {"pauseQueue": True, "stopCampaigns": True}))["ok"] is True


async def test_one_click_reports_what_failed_and_why_and_still_runs_the_other_steps(campaign: Any) -> None:
    # no ai service, no monitored group; the queue is paused and must still be resumed
    await campaign.data(M.PauseQueue, {"scope": "all"})
    result = await campaign.data(A.OneClickStart, {"aiAutoReply": True, "resumeQueue": True}, timeout=60)
    steps = {s["step"]: s for s in result["steps"]}
    assert list(steps) == list(START_STEPS)
    assert result["ok"] is False
    assert steps["ai"]["ok"] is False and "UNAVAILABLE" in steps["ai"]["message"]
    assert steps["groups"]["ok"] is False and "no active monitored group" in steps["groups"]["message"]
    assert steps["queue"]["ok"] is True
    assert steps["campaigns"]["skipped"] is True and steps["campaigns"]["ok"] is True
    assert (await campaign.data(M.GetQueueStatus, {}))["paused"] is False
    done = await campaign.wait_event(
        lambda e: e["_subject"].endswith("one-click-progress.v1") and e["step"] == "done", 10
    )
    assert done["ok"] is False and "ai (" in done["message"] and "groups (" in done["message"]
    # too many campaigns: refused before anything runs; an unknown one is a failed step, not an error
    many = await campaign.call(A.OneClickStart, {"campaignIds": [f"cmp_{i}" for i in range(201)]})
    assert not many["ok"] and many["error"]["code"] == "VALIDATION_ERROR"
    unknown = await campaign.data(A.OneClickStart, {"campaignIds": ["cmp_nope"], "resumeQueue": False})
    step = next(s for s in unknown["steps"] if s["step"] == "campaigns")
    assert step["ok"] is False and "cmp_nope" in step["message"]
    # stop without ai: its step fails, monitoring still stops
    stopped = await campaign.data(A.OneClickStop, {}, timeout=60)
    by_step = {s["step"]: s for s in stopped["steps"]}
    assert by_step["ai"]["ok"] is False and by_step["campaigns"]["skipped"] is True
    assert stopped["monitoring"]["active"] is False


def test_accounts_summary_follows_the_listener_and_sender_rules() -> None:
    def view(i: int, role: str, state: str = "active", connected: bool = True) -> AccountView:
        at = datetime(2024, 1, 1, tzinfo=UTC)
        return AccountView.model_validate(
            {
                "id": f"a{i}",
                "phone": f"+1555{i:07d}",
                "state": state,
                "role": role,
                "connected": connected,
                "createdAt": at,
                "updatedAt": at,
            }
        )

    # roles given: listeners by role (a flood wait still reads), senders by role (it does not send)
    mixed = summarise_accounts(
        [
            view(1, "listener"),
            view(2, "listener", "flood_wait"),
            view(3, "listener", connected=False),
            view(4, "sender"),
            view(5, "sender", "flood_wait"),
            view(6, "ai"),
        ]
    )
    assert (mixed.total, mixed.online, mixed.offline) == (6, 5, 1)
    assert (mixed.listeners_online, mixed.senders_total, mixed.senders_online) == (2, 2, 1)
    # no roles at all: every account listens and may send
    plain = summarise_accounts([view(1, "unassigned"), view(2, "unassigned", connected=False)])
    assert (plain.listeners_online, plain.senders_total, plain.senders_online) == (1, 2, 1)
    # listeners by role and no sender role: the others send
    split = summarise_accounts([view(1, "listener"), view(2, "unassigned"), view(3, "backup")])
    assert (split.listeners_online, split.senders_total, split.senders_online) == (1, 2, 2)
    assert summarise_accounts([]).total == 0
