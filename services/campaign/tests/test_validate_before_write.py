"""Validate before write for campaign (issue 13): every save/add/create/update/bind command the service
owns, given invalid payloads made from its request schema (`tgm_testing.invalid`), answers within
seconds with an error envelope that is not INTERNAL/TIMEOUT, and a refused payload writes nothing
(seen through the database's change stream; the scheduler's leases aside); afterwards every read
of the command's domain without required fields still answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tgm_contracts import REGISTRY, Service
from tgm_contracts.commands import ads as AD
from tgm_contracts.commands import automation as A
from tgm_contracts.commands import collaboration as C
from tgm_contracts.commands import crm as CRM
from tgm_contracts.commands import messaging as M
from tgm_testing.invalid import Writes, refused_by_contract, schema_cases, walk, write_commands

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

NOW = datetime.now(UTC).isoformat()

#: Renewed by the scheduler's lease loop whatever the commands do.
BACKGROUND = {"leases"}


async def bases(campaign: Any) -> dict[str, dict[str, Any]]:
    """A valid payload of each command, naming things that exist."""
    ks = await campaign.data(A.AddKeywordSet, {"name": "pricing", "keywords": ["price"]})
    tpl = (
        await campaign.data(M.AddTemplate, {"name": "hello", "content": "Hi {first_name}", "category": "ad"})
    )["template"]
    group = await campaign.data(A.AddGroup, {"group": -1001001, "name": "Deals"})
    lead = await campaign.data(CRM.AddLead, {"userId": 9901, "firstName": "Dan"})
    ad = await campaign.data(
        AD.CreateAdCampaign,
        {
            "name": "Ads",
            "templateIds": [tpl["id"]],
            "targets": [{"chat": -1001001}],
            "schedule": {"type": "once", "startAt": NOW},
            "accounts": {"accountIds": ["acct0"]},
        },
    )
    expert = await campaign.data(C.SaveRole, {"name": "Expert", "boundAccountId": "acct0", "type": "expert"})
    script = await campaign.data(
        C.SaveScript,
        {
            "name": "Intro",
            "roles": [{"key": "expert", "roleType": "expert"}],
            "stages": [{"name": "open", "lines": [{"slot": "expert", "text": "Hello"}]}],
        },
    )
    return {
        "add-campaign": {
            "name": "Spring",
            "audience": {"leadIds": [lead["id"]]},
            "steps": [{"text": "hello", "delaySeconds": 3}],
            "accountId": "acct0",
            "dailyLimit": 10,
            "tags": ["s"],
        },
        "add-group": {
            "group": -1001002,
            "name": "More",
            "keywordSetIds": [ks["id"]],
            "listenerAccountIds": ["acct0"],
        },
        "add-keyword": {"setId": ks["id"], "keyword": "cost", "matchType": "contains"},
        "add-keyword-set": {
            "name": "other",
            "keywords": ["a"],
            "excludeKeywords": ["b"],
            "fuzzyThreshold": 0.8,
        },
        "add-lead": {"userId": 9902, "firstName": "Eve", "tags": ["t"], "customFields": {"k": "v"}},
        "add-template": {"name": "bye", "content": "Bye {first_name}", "category": "ad"},
        "bind-keyword-set": {"groupId": group["id"], "keywordSetId": ks["id"]},
        "create-ad-campaign": {
            "name": "More ads",
            "templateIds": [tpl["id"]],
            "targets": [{"chat": -1001002}],
            "schedule": {"type": "once", "startAt": NOW},
            "accounts": {"accountIds": ["acct1"]},
            "minGroupIntervalMinutes": 5,
        },
        "save-chat-history": {
            "accountId": "acct0",
            "peer": 9901,
            "messages": [{"direction": "in", "text": "hi", "date": NOW, "messageId": 5}],
        },
        "save-chat-template": {"name": "chat", "content": "Hello there", "category": "greeting"},
        "save-keyword-set": {
            "id": ks["id"],
            "name": "pricing",
            "keywords": ["price", "cost"],
            "isActive": True,
        },
        "save-role": {
            "id": expert["id"],
            "name": "Expert",
            "type": "expert",
            "boundAccountId": "acct0",
            "personality": {"speakingStyle": "calm", "traits": ["precise"]},
            "aiConfig": {"emojiFrequency": "none", "typingSpeed": 300},
        },
        "save-scenario": {
            "name": "Warm",
            "scriptId": script["id"],
            "roleBindings": {"expert": expert["id"]},
            "where": "existing_group",
            "chat": "@deals",
        },
        "save-script": {
            "id": script["id"],
            "name": "Intro",
            "roles": [{"key": "expert", "roleType": "expert"}],
            "stages": [{"name": "open", "lines": [{"slot": "expert", "text": "Hello again"}]}],
        },
        "save-trigger-rule": {
            "name": "price",
            "keywordSetIds": [ks["id"]],
            "actions": [{"type": "reply_template", "templateId": tpl["id"]}],
            "delayMin": 1,
            "delayMax": 2,
            "dailyLimit": 3,
            "cooldownSeconds": 60,
        },
        "update-ad-campaign": {"id": ad["id"], "name": "Ads v2", "minGroupIntervalMinutes": 10},
        "update-funnel-stage": {"leadIds": [lead["id"]], "stage": "contacted", "reason": "walk"},
        "update-lead": {
            "leadId": lead["id"],
            "notes": "n",
            "tags": ["x"],
            "intentScore": 5,
            "doNotContact": False,
        },
        "update-lead-stage": {"leadId": lead["id"], "stage": "replied", "reason": "walk"},
    }


async def test_invalid_writes_change_nothing_stored(campaign: Any) -> None:
    base = await bases(campaign)
    commands = write_commands(REGISTRY.owned_by(Service.CAMPAIGN))
    assert {c.NAME for c in commands} == set(base), "every campaign write command needs a base here"
    assert not [c.NAME for c in commands if refused_by_contract(c, base[c.NAME])], "a base must be valid"
    reads = [
        c
        for c in REGISTRY.owned_by(Service.CAMPAIGN)
        if c.NAME.split("-")[0] == "get" and not c.Request.model_json_schema().get("required")
    ]
    db = campaign.rt.db
    async with Writes(db.client, [db.name], ignore=BACKGROUND) as writes:
        walked = await walk(
            [(cmd, schema_cases(cmd, base[cmd.NAME])) for cmd in commands],
            campaign.call,
            writes.state,
            reads=lambda cmd: [r for r in reads if r.DOMAIN is cmd.DOMAIN],
        )
    assert walked.tried > 500, walked.tried
    assert not walked.failures, "\n".join(walked.failures)
