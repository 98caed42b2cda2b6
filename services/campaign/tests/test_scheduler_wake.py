"""A new job wakes a scheduler round only when it is due before the round the loop waits for anyway:
a trigger rule's reply, queued with its delay, made a round (four reads, two of them sorting the
waiting jobs) per matching message (bench/automation/decision.py). The loop's next round reads the
due set afresh, so a job due later is planned by it; a job due now, or before that round, wakes
one at once; during a round (what it read may miss the job), or before the first, every new job
wakes one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tgm_campaign.bootstrap import build
from tgm_campaign.settings import CampaignSettings
from tgm_contracts.models.campaign import AccountChoice, MessageBody
from tgm_runtime import RuntimeSettings
from tgm_runtime.testing import runtime_client

pytestmark = [pytest.mark.component, pytest.mark.timeout(60)]


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("TGM_CAMPAIGN_SCHEDULER", "false")  # no loop: the test plays it
    return build(CampaignSettings(runtime=RuntimeSettings(replica_id="campaign-wake")))


async def test_a_job_due_after_the_next_round_wakes_none(rt: Any, mongo_server: Any) -> None:
    async with runtime_client(rt, mongo_server.uri):
        app = rt.app
        sched, queue = app.scheduler, app.queue
        woken: list[float] = []
        sched.waker = lambda: woken.append(time.time())
        queue.events.wake = sched.wake  # as bootstrap wires a replica that dispatches

        async def reply(n: int, delay: float | None) -> dict[str, Any]:
            at = datetime.now(UTC) + timedelta(seconds=delay) if delay is not None else None
            result = await queue.reply(
                peer=70_000 + n,
                key=f"wake:{n}",
                body=MessageBody(text="hello"),
                choice=AccountChoice(account_id="acct0"),
                not_before=at,
            )
            return await rt.db["jobs"].find_one({"_id": result.job_id})

        # before the loop's first round: every new job wakes it
        job = await reply(1, 3600)
        assert job["state"] == "scheduled" and len(woken) == 1
        # a round (nothing due), its wait not asked for yet: what it read may miss a new job
        await sched.tick()
        await reply(2, 3600)
        assert len(woken) == 2

        # between rounds: the loop asks its wait, the next round 5 s away (nothing due before)
        assert sched.next_wait() == 5.0
        job = await reply(3, 3600)  # due in an hour: that round plans it
        assert job["state"] == "scheduled" and len(woken) == 2
        await reply(4, 1.0)  # due before the next round: woken now
        assert len(woken) == 3
        job = await reply(5, None)  # due now
        assert job["state"] == "pending" and len(woken) == 4
        await reply(3, 3600)  # the same key again: no new job, nothing to wake for
        assert len(woken) == 4
        # a wake with no due time (a resumed queue, an outcome) always runs a round
        sched.wake()
        assert len(woken) == 5
