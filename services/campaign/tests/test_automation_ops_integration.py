"""The database operations of the inbound path, counted (bench/automation/decision.py measures its
latency: the embedded database serves one operation at a time, so each one a matching message makes
is time every other message waits, and each round trip one after another is latency of its own).

A pymongo `CommandListener` counts the commands sent while a message is processed (`on_message`
called directly, in a context the tasks it gathers inherit; crm's consumers likewise for the events
it published), and how many round trips they took one after another (`Log`: a command's round
trip is one more than the highest of those ended when it was sent). Reads of the short-TTL caches (the group, monitoring,
the matcher's version, the rules, settings) are left out: they are made once a second or so, not
per message.

- an unmatched group message: no operation;
- a matching one (a reply rule, as the bench's): 17 operations, 11 of them up to and including the
  reply job's insert in 3 round trips (claim ‖ lead ‖ the rule's day and cooldown; the day's
  reservation ‖ the cooldown's ‖ the reply's reads made ahead: the template ‖ the peer's aliases ‖
  its blocks; the firing's insert ‖ the job), then 6 after it, in 5 (the template's use, the
  rule's counters, the firing's end, the match counters ‖ the group's, the claim's end);
- crm's consumers of its `keyword-matched` and `trigger-fired`: the lead's read each, for a sender
  nobody tracks (the tracked users from the cached set); its `message-received`: nothing.

Before the two reservations were made at once, the job came after 4 round trips; before the
reply's reads were made ahead (beside the day's reservation), after 5; before the change before that, after 8 (the firing's insert, the template, the aliases and
the blocks each waited for the one before), and crm made 4 operations.
"""

from __future__ import annotations

from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo import monitoring
from tgm_contracts.commands import automation as A
from tgm_contracts.events_campaign import KeywordMatched, TriggerFired

from .test_automation_inbound_integration import CHAT, message, world

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: (command, collection) of the short-TTL caches' reads: not per message
CACHE_READS = {
    ("find", "groups"),
    ("find", "monitoring"),
    ("find", "automation_meta"),
    ("find", "keyword_sets"),
    ("find", "trigger_rules"),
    ("find", "_settings"),
    ("find", "tracked_users"),
    ("distinct", "collaboration_runs"),
    ("find", "swarms"),
    ("find", "ad_posts"),
}


@dataclass
class Log:
    """The commands one piece of work sent: (command, collection, its round trip's number). A
    command's round trip is one more than the highest of those that had ended when it was sent: the
    length of the longest chain of commands each sent after the one before it ended, up to and
    including it (commands sent side by side share a number, whatever order they end in)."""

    ops: list[tuple[str, str, int]] = field(default_factory=list)
    ended: int = 0  # the highest round trip of the commands ended so far
    depth: dict[int, int] = field(default_factory=dict)  # in flight: request id -> round trip

    def per_message(self) -> list[tuple[str, str, int]]:
        return [o for o in self.ops if (o[0], o[1]) not in CACHE_READS]

    def round_trips(self) -> int:
        return max((r for _, _, r in self.per_message()), default=0)


COUNTING: ContextVar[Log | None] = ContextVar("counting", default=None)


class Ops(monitoring.CommandListener):
    """Counts the commands sent in a `counted` context (and the tasks started in it)."""

    def __init__(self) -> None:
        self.sent: dict[int, Log] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        log = COUNTING.get()
        if log is None:
            return
        depth = log.ended + 1
        log.depth[event.request_id] = depth
        self.sent[event.request_id] = log
        target = event.command.get(event.command_name)
        log.ops.append((event.command_name, target if isinstance(target, str) else "", depth))

    def _done(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        log = self.sent.pop(event.request_id, None)
        if log is not None:
            log.ended = max(log.ended, log.depth.pop(event.request_id, 0))

    succeeded = _done
    failed = _done


_LISTENER = Ops()
_REGISTERED: list[bool] = []


async def counted(work: Awaitable[Any]) -> Log:
    log = Log()
    token = COUNTING.set(log)
    try:
        await work
    finally:
        COUNTING.reset(token)
    return log


@pytest.fixture(scope="module")
def listening() -> Ops:
    """The listener, registered before the `campaign` fixture builds its database client (pymongo
    gives a global listener to the clients created after it; a module fixture comes before a
    function's)."""
    if not _REGISTERED:
        monitoring.register(_LISTENER)
        _REGISTERED.append(True)
    return _LISTENER


def event_of(campaign: Any, suffix: str, message_id: int) -> dict[str, Any]:
    for e in campaign.events:
        if e["_subject"].endswith(suffix) and e.get("messageId", message_id) == message_id:
            return {k: v for k, v in e.items() if k != "_subject"}
    raise AssertionError(f"no {suffix} for message {message_id}")


async def test_a_matching_message_costs_17_operations_11_before_its_job_in_3_round_trips(
    listening: Ops, campaign: Any
) -> None:
    rule_id, _, ks_id = await world(campaign)
    template_id = (await campaign.rt.db["templates"].find_one({}))["_id"]
    # the bench's rule: a reply by template (60 s later, in the queue), no cooldown, a high limit
    await campaign.data(
        A.SaveTriggerRule,
        {
            "id": rule_id,
            "name": "price",
            "keywordSetIds": [ks_id],
            "actions": [{"type": "reply_template", "templateId": template_id}],
            "delayMin": 60,
            "delayMax": 60,
            "dailyLimit": 10_000,
            "cooldownSeconds": 0,
        },
    )
    svc = campaign.m.automation
    # warm: the caches filled, the admins learnt from tg-session, the pool's connections open
    await svc.on_message(message("acct0", 1, 201, "price?"))
    await campaign.wait_jobs(lambda jobs: len(jobs) == 1)

    quiet = await counted(svc.on_message(message("acct0", 2, 202, "hello there")))
    assert quiet.per_message() == [], quiet.ops

    log = await counted(svc.on_message(message("acct0", 3, 203, "what's the price?")))
    ops = log.per_message()
    print("matching message:", ops)
    jobs = await campaign.rt.db["jobs"].find({"key": f"trg:{rule_id}:{CHAT}:3"}).to_list()
    assert len(jobs) == 1 and jobs[0]["state"] == "scheduled"
    insert = next(i for i, o in enumerate(ops) if o[:2] == ("insert", "jobs"))
    before, after = ops[: insert + 1], ops[insert + 1 :]
    assert sorted(o[:2] for o in before) == sorted(
        [
            ("insert", "automation_seen"),  # the claim
            ("find", "leads"),  # the sender's lead
            ("find", "rule_days"),
            ("find", "rule_users"),  # the rule's state
            ("update", "rule_days"),  # the day's reservation
            ("update", "rule_users"),  # the cooldown's
            ("insert", "firings"),
            ("find", "templates"),  # the template's check
            ("find", "peers"),  # the peer's aliases
            ("find", "blocked"),  # its bans and opt-outs
            ("insert", "jobs"),
        ]
    ), before
    rounds = {(o[0], o[1]): o[2] for o in before}
    # one after another: the claim ‖ the reads; the day's reservation ‖ the cooldown's ‖ the
    # reply's reads; the firing ‖ the job
    assert rounds == {
        ("insert", "automation_seen"): 1,
        ("find", "leads"): 1,
        ("find", "rule_days"): 1,
        ("find", "rule_users"): 1,
        ("update", "rule_days"): 2,
        ("find", "templates"): 2,
        ("find", "peers"): 2,
        ("find", "blocked"): 2,
        ("update", "rule_users"): 2,
        ("insert", "firings"): 3,
        ("insert", "jobs"): 3,
    }, before
    assert sorted(o[:2] for o in after) == sorted(
        [
            ("update", "templates"),  # its use
            ("update", "trigger_rules"),  # the rule's counters
            ("update", "firings"),  # the firing's end
            ("update", "keyword_counts"),
            ("update", "groups"),  # the match counters
            ("update", "automation_seen"),  # the claim's end
        ]
    ), after
    assert len(ops) == 17 and log.round_trips() == 8, ops

    # crm's consumers of what the message published: a sender with no lead, nobody tracks
    crm = campaign.m.crm_consumers
    await campaign.wait_event(lambda e: e["_subject"].endswith("trigger-fired.v1") and e["userId"] == 203)
    matched = KeywordMatched.model_validate(event_of(campaign, "keyword-matched.v1", 3))
    trigger = next(
        e for e in campaign.events if e["_subject"].endswith("trigger-fired.v1") and e["userId"] == 203
    )
    fired = TriggerFired.model_validate({k: v for k, v in trigger.items() if k != "_subject"})
    await crm.tracked_ids()  # the cached set, read (once per few seconds, not per message)
    for work in (crm.on_keyword(matched), crm.on_trigger(fired)):
        crm_log = await counted(work)
        assert [o[:2] for o in crm_log.per_message()] == [("find", "leads")], crm_log.ops
    received = await counted(crm.on_received(message("acct0", 4, 204, "price?")))
    assert received.per_message() == [], received.ops
