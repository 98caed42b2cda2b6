"""The queue and the scheduler against a real nats-server and database, with FakeFleet as tg-session."""

from __future__ import annotations

from collections import Counter

import pytest
from tgm_contracts.commands import messaging as M

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def sent(docs):
    return [d for d in docs if d["state"] == "sent"]


async def test_bulk_queue_is_delivered_exactly_once_across_a_pool(campaign) -> None:
    recipients = [{"peer": 1000 + i} for i in range(40)]
    out = await campaign.data(M.QueueMessage, {"text": "{Hi|Hello} there", "recipients": recipients})
    assert out["created"] == 40 and out["duplicates"] == 0 and len(out["jobs"]) == 40
    docs = await campaign.wait_jobs(lambda d: len(sent(d)) == 40)
    per_job = Counter(d.job_id for d in campaign.fleet.deliveries)
    assert len(per_job) == 40 and set(per_job.values()) == {1}
    assert {d.account_id for d in campaign.fleet.deliveries} == {"acct0", "acct1", "acct2"}
    assert all(d["text"] in ("Hi there", "Hello there") for d in docs)
    assert all(d["message_id"] and d["history"][-1]["outcome"] == "sent" for d in docs)
    # the same batch again (same request idempotency key) creates nothing
    again = await campaign.data(
        M.QueueMessage,
        {"text": "{Hi|Hello} there", "recipients": recipients, "idempotencyKey": "batch-1"},
    )
    assert again["created"] == 40
    dup = await campaign.data(
        M.QueueMessage,
        {"text": "{Hi|Hello} there", "recipients": recipients, "idempotencyKey": "batch-1"},
    )
    assert dup["created"] == 0 and dup["duplicates"] == 40 and dup["batchId"] == again["batchId"]
    assert all(j["duplicate"] for j in dup["jobs"])


async def test_immediate_send_answers_with_the_message_id(campaign) -> None:
    out = await campaign.data(M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1"})
    assert out["state"] == "sent" and out["accountId"] == "acct1" and out["messageId"] > 0
    assert campaign.fleet.deliveries[-1].text == "hello"
    again = await campaign.data(
        M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1", "idempotencyKey": "k1"}
    )
    same = await campaign.data(
        M.SendMessage, {"peer": "@alice_w", "text": "hello", "accountId": "acct1", "idempotencyKey": "k1"}
    )
    assert same["duplicate"] and same["jobId"] == again["jobId"] and same["messageId"] == again["messageId"]
    assert len(campaign.fleet.deliveries) == 2
    evt = await campaign.wait_event(lambda e: e.get("jobId") == out["jobId"] and e.get("state") == "sent")
    assert evt["messageId"] == out["messageId"]
