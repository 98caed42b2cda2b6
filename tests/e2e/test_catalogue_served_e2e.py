"""Every command of the catalogue is served on a healthy stack: `GET /api/v1/commands` lists the 193
seed commands and the `channels` ones, and each one, called through the gateway, is answered by its owner's handler — never
`UNAVAILABLE` (503: nobody subscribed), `TIMEOUT` (504: nobody answered) or `INTERNAL` (500: a crash).

How a reply is known to come from the handler, not the gateway: the gateway validates a payload against
the contract before it sends it on, so every payload here is first checked to pass that same contract
(`Command.parse`) — a refusal seen here (VALIDATION_ERROR for a rule the service checks, NOT_FOUND for
an id that does not exist, CONFLICT, FAILED_PRECONDITION...) was written by the owner's handler.

Nothing is skipped. Payloads are minimal: an id that does not exist (`MISSING`) wherever the command
acts on one, so deletes, logouts, extractions, restores and sends prove they are served without doing
anything. Commands that would be destructive or slow even when valid are scoped to nothing
(`reset-settings` of an unknown section, `clear-*` of an empty scope or of records before 2000,
`start-monitoring` as a dry run, `one-click-start` of a missing campaign). `graceful-shutdown` is the
one command whose effect cannot be avoided: it is called last, without the gateway
(`includeGateway: false`), and must be acknowledged by every backend service; the stack is this
module's own, stopped afterwards. The stack has the Telegram emulator (and its developer site), so the
commands that reach Telegram reach a Telegram.

One stack for the module; about 193 round trips, most answered in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_contracts import BACKEND_SERVICES, REGISTRY, Command
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]

#: An id that names nothing, in every command that acts on one.
MISSING = "e2e-missing-0"

#: Commands not called, with the reason. Empty: every command of the catalogue is called.
EXCLUDED: dict[str, str] = {}

#: Called after every other command, in this order.
LAST = ("graceful-shutdown",)

#: Codes that mean no handler answered (or one crashed).
NOT_SERVED = {"UNAVAILABLE", "TIMEOUT", "INTERNAL"}

#: The payload of each command that needs more than `{}` (or whose `{}` would do harm).
PAYLOADS: dict[str, dict[str, Any]] = {
    "add-account": {"phone": "+15550000001"},
    "add-campaign": {"name": "probe", "audience": {"leadIds": [MISSING]}, "steps": [{"text": "hi"}]},
    "add-group": {"group": "@e2e_missing_group"},
    "add-keyword": {"keyword": "k", "setId": MISSING},
    "add-keyword-set": {"name": "probe"},
    "add-template": {"name": "probe", "content": "hello"},
    "ai-analyze-conversation": {"messages": [{"role": "user", "content": "hello"}], "provider": "local"},
    "ai-apply-strategy": {"strategyId": MISSING, "accountIds": [MISSING]},
    "ai-generate-group-names": {"keywords": ["coffee"], "provider": "local"},
    "ai-generate-message": {"topic": "coffee", "provider": "local"},
    "ai-generate-response": {"accountId": MISSING, "userId": "1", "message": "hi", "provider": "local"},
    "ai-generate-welcome": {"provider": "local"},
    "ai-memory-clear": {"accountId": MISSING},
    "ai-memory-get": {"accountId": MISSING, "userId": "1"},
    "ai-memory-save": {"accountId": MISSING, "userId": "1"},
    "ai-save-strategy": {"name": "probe"},
    "ai-suggest-reply": {"accountId": MISSING, "userId": "1", "message": "hi", "provider": "local"},
    "assign-lead": {"leadIds": [MISSING], "assignee": "ops"},
    "batch-update-accounts": {"accountIds": [MISSING], "updates": {"tags": {"tags": ["x"]}}},
    "bind-keyword-set": {"groupId": MISSING, "keywordSetId": MISSING},
    "bulk-assign-group": {"accountIds": [MISSING], "group": None},
    "bulk-assign-role": {"accountIds": [MISSING], "role": "sender"},
    "bulk-delete-accounts": {"accountIds": [MISSING]},
    "cancel-extraction": {"jobId": MISSING},
    "check-account-status": {"accountId": MISSING},
    "create-ad-campaign": {
        "name": "probe",
        "templateIds": [MISSING],
        "targets": [{"groupId": MISSING}],
        "schedule": {"type": "once", "startAt": "2030-01-01T00:00:00Z"},
    },
    "create-group": {"accountId": MISSING, "title": "probe"},
    "credential-cancel-scrape": {"accountId": MISSING},
    "credential-get-status": {"accountId": MISSING},
    "credential-start-scrape": {"accountId": MISSING},
    "credential-submit-code": {"accountId": MISSING, "code": "abcd1"},
    "delete-ad-campaign": {"id": MISSING},
    "delete-api-credential": {"id": MISSING},
    "delete-chat-template": {"id": MISSING},
    "delete-keyword-set": {"id": MISSING},
    "delete-lead": {"leadId": MISSING},
    "delete-role": {"id": MISSING},
    "delete-scenario": {"id": MISSING},
    "delete-script": {"id": MISSING},
    "delete-trigger-rule": {"id": MISSING},
    "dismiss-alert": {"alertId": MISSING},
    "export-collected-users": {"jobId": MISSING},
    "extract-members": {"accountId": MISSING, "group": "@e2e_missing"},
    "get-analytics": {"metrics": ["messages_sent"]},
    "get-group-members": {"accountId": MISSING, "group": "@e2e_missing"},
    "get-lead-details": {"leadId": MISSING},
    "ip-bind": {
        "accountId": MISSING,
        "proxy": {"type": "socks5", "host": "127.0.0.1", "port": 1},
        "verify": False,
    },
    "ip-unbind": {"accountId": MISSING},
    "ip-verify-binding": {"accountId": MISSING},
    "ip-get-binding": {"accountId": MISSING},
    "join-group": {"accountId": MISSING, "group": "@e2e_missing"},
    "leave-group": {"accountId": MISSING, "group": "@e2e_missing"},
    "learn-from-history": {"conversations": [{"messages": [{"role": "user", "content": "hi"}]}]},
    "login-account": {"accountId": MISSING},
    "logout-account": {"accountId": MISSING},
    "pause-monitoring": {"groupId": MISSING},
    "qr-login-cancel": {"sessionId": MISSING},
    "qr-login-refresh": {"sessionId": MISSING},
    "qr-login-status": {"sessionId": MISSING},
    "qr-login-submit-2fa": {"sessionId": MISSING, "password": "x"},
    "queue-message": {"accountId": MISSING, "text": "hi", "recipients": [{"peer": "@e2e_missing"}]},
    "rag-search": {"query": "hello"},
    "remove-account": {"accountId": MISSING},
    "remove-campaign": {"id": MISSING},
    "remove-group": {"id": MISSING},
    "remove-keyword": {"setId": MISSING, "keyword": "k"},
    "remove-keyword-set": {"id": MISSING},
    "remove-template": {"id": MISSING},
    "remove-knowledge": {"ids": [MISSING]},
    "resend-code": {"accountId": MISSING},
    "restore-database": {"backupId": MISSING},
    "resume-monitoring": {"groupId": MISSING},
    "save-chat-history": {
        "accountId": MISSING,
        "peer": "@e2e_missing",
        "messages": [{"text": "hi", "direction": "in", "date": "2024-01-01T00:00:00Z"}],
    },
    "save-chat-template": {"name": "probe", "content": "hello"},
    "save-groups": {"groups": []},
    "save-keyword-set": {"name": "probe"},
    "save-personas": {"personas": []},
    "save-role": {"name": "probe", "boundAccountId": MISSING},
    "save-scenario": {
        "name": "probe",
        "scriptId": MISSING,
        "roleBindings": {"a": MISSING},
        "where": "existing_group",
        "chat": "@e2e_missing",
    },
    "save-script": {
        "name": "probe",
        "roles": [{"key": "a"}],
        "stages": [{"trigger": {"type": "manual"}, "lines": [{"slot": "a", "text": "hi"}]}],
    },
    "save-settings": {"settings": {}},
    "save-tags": {"tags": []},
    "save-trigger-rule": {"name": "probe", "keywordSetIds": [MISSING], "actions": [{"type": "notify"}]},
    "search-groups": {"accountId": MISSING, "keyword": "coffee"},
    "search-knowledge": {"query": "hello"},
    "send-direct-message": {"accountId": MISSING, "peer": "@e2e_missing", "text": "hi"},
    "send-group-message": {"accountId": MISSING, "group": "@e2e_missing", "text": "hi"},
    "send-message": {"accountId": MISSING, "peer": "@e2e_missing", "text": "hi"},
    "send-private-message": {"accountId": MISSING, "peer": "@e2e_missing", "text": "hi"},
    "start-ad-campaign": {"id": MISSING},
    "start-campaign": {"campaignId": MISSING},
    "start-collaboration": {"scenarioId": MISSING},
    "start-swarm": {"groupId": MISSING, "roleIds": [MISSING, MISSING + "b"]},
    "stop-ad-campaign": {"id": MISSING},
    "stop-campaign": {"campaignId": MISSING},
    "stop-collaboration": {"runId": MISSING},
    "stop-swarm": {"swarmId": MISSING},
    "submit-2fa-password": {"accountId": MISSING, "password": "x"},
    "sync-account-info": {"accountId": MISSING},
    "test-ai-connection": {"provider": "local"},
    "test-api-credential": {"id": MISSING},
    "test-proxy": {"host": "127.0.0.1", "port": 1},
    "test-trigger-rule": {"ruleId": MISSING, "message": {"text": "hello"}},
    "toggle-template-status": {"id": MISSING},
    "toggle-trigger-rule": {"id": MISSING},
    "unbind-keyword-set": {"groupId": MISSING, "keywordSetId": MISSING},
    "update-account": {"accountId": MISSING, "label": "x"},
    "update-account-data": {"accountId": MISSING, "bio": "x"},
    "update-ad-campaign": {"id": MISSING, "name": "x"},
    "update-funnel-stage": {"leadIds": [MISSING], "stage": "contacted"},
    "update-lead": {"leadId": MISSING, "notes": "x"},
    "update-lead-stage": {"leadId": MISSING, "stage": "contacted"},
    "verify-code": {"accountId": MISSING, "phoneCode": "12345"},
    "add-knowledge": {"question": "What are the opening hours?", "answer": "9 to 18."},
    "add-lead": {"userId": 990001, "firstName": "Probe"},
    "blacklist-user": {"userId": 990002, "reason": "probe"},
    "clear-logs": {"before": "2000-01-01T00:00:00Z"},
    "export-report": {"reportId": MISSING},
    "get-chat-history": {"leadId": MISSING},
    "get-user-activity": {"leadId": MISSING},
    "preview-ad": {"content": "Hello {first_name|friend}, {try|taste} our coffee"},
    "rag-add-document": {"text": "Opening hours are 9 to 18.", "title": "probe"},
    "save-api-credential": {"id": MISSING, "name": "x"},
    "schedule-report": {"action": "delete", "scheduleId": MISSING},
    "track-user": {"userId": 990003},
    "untrack-user": {"userId": 990004},
    # Destructive (confirmed by `payload`) or slow with an empty payload: scoped to nothing, or to an id that does not exist.
    "reset-settings": {"sections": ["e2e-no-such-section"]},
    "clear-knowledge": {"scope": "e2e-no-such-scope"},
    "clear-alerts": {"before": "2000-01-01T00:00:00Z"},
    "clear-queue": {"scope": "account", "accountId": MISSING},
    "pause-queue": {"scope": "account", "accountId": MISSING},
    "resume-queue": {"scope": "account", "accountId": MISSING},
    "one-click-start": {"campaignIds": [MISSING], "resumeQueue": False},
    "one-click-stop": {"disableAiAutoReply": False},
    "start-monitoring": {"dryRun": True},
    "backup-database": {"label": "catalogue probe"},
    "get-ai-models": {"provider": "local"},
    # Last of all (the order below): every backend replica drains and stops; the gateway stays up.
    "graceful-shutdown": {"includeGateway": False},
    # channels (tailchat; not seed commands): an app that does not exist, or one registered unchecked
    "register-tailchat-app": {
        "serverUrl": "http://127.0.0.1:9",
        "appId": "e2eprobe",
        "appSecret": "e2eprobe:not-a-real-secret",
        "check": False,
    },
    "check-tailchat-app": {"appId": MISSING},
    "remove-tailchat-app": {"appId": MISSING},
    "rotate-tailchat-callback-token": {"appId": MISSING},
    "set-tailchat-bot-info": {"appId": MISSING, "allowGroup": True},
    "get-tailchat-commands": {"appId": MISSING},
    "send-channel-message": {"appId": MISSING, "converseId": MISSING, "text": "hi"},
    "edit-channel-message": {"appId": MISSING, "messageId": MISSING, "text": "hi"},
    "delete-channel-message": {"appId": MISSING, "messageId": MISSING},
    "answer-callback": {"appId": MISSING, "traceId": MISSING, "userId": MISSING, "text": "hi"},
    # Telegram bot accounts (tg-session): a token the emulator does not know, a bot that does not exist
    "add-telegram-bot": {"token": "123456789:" + "A" * 35},
    "remove-telegram-bot": {"botId": "tg-1"},
    "send-bot-message": {"botId": "tg-1", "chatId": "1", "text": "hi"},
}


@pytest.fixture(scope="module")
def stack(start_module_stack: Callable[..., Stack], module_emulator: EmulatorThread) -> Stack:
    """The whole system pointed at the emulator; this module's own (graceful-shutdown ends it)."""
    return start_module_stack(emulator=module_emulator)


def payload(name: str) -> dict[str, Any]:
    """The probe payload; destructive commands get `confirm: true` (the rule of `tgm_contracts.base`)."""
    confirm = {"confirm": True} if command(name).destructive() else {}
    return {**PAYLOADS.get(name, {}), **confirm}


def command(name: str) -> type[Command]:
    cmd = REGISTRY.get(name)
    assert cmd is not None, name
    return cmd


def test_every_payload_passes_the_contract_so_the_owner_answers() -> None:
    assert not set(PAYLOADS) - set(REGISTRY.names()), "payloads of commands that do not exist"
    for name in REGISTRY.names():
        command(name).parse(payload(name))  # raises on a payload the gateway would refuse


def test_catalogue_lists_the_193_seed_commands_and_the_channels(stack: Stack) -> None:
    r = httpx.get(f"{stack.gateway_url}/api/v1/commands", timeout=30)
    assert r.status_code == 200
    catalogue = r.json()
    listed = {c["command"]: c for c in catalogue["commands"]}
    assert catalogue["count"] == len(listed) == len(REGISTRY)
    assert sum(1 for c in listed.values() if c["seed"]) == len(REGISTRY.seed()) == 193
    assert set(listed) == set(REGISTRY.names())
    assert all(c["owner"] == command(n).OWNER.value for n, c in listed.items())


def test_every_command_is_answered_by_its_handler(stack: Stack, gw: GatewayClient) -> None:
    names = sorted(n for n in REGISTRY.names() if n not in EXCLUDED and n not in LAST) + list(LAST)
    answers: dict[str, tuple[int, str, float]] = {}
    replies: dict[str, dict[str, Any]] = {}
    for name in names:
        started = time.monotonic()
        r = gw.post(name, payload(name))
        body = r.json()
        assert isinstance(body.get("ok"), bool), (name, r.status_code, body)
        code = "OK" if body["ok"] else body["error"]["code"]
        answers[name] = (r.status_code, code, time.monotonic() - started)
        replies[name] = body
        if code == "VALIDATION_ERROR":
            # The gateway's own refusal names the contract; the payload passed it, so this is the owner's.
            assert body["error"]["message"] != f"invalid payload for {name}", (name, body)

    not_served = {n: (a, replies[n]) for n, a in answers.items() if a[1] in NOT_SERVED or a[0] >= 500}
    assert not not_served, not_served
    assert len(answers) + len(EXCLUDED) == len(REGISTRY) and not EXCLUDED

    # The last command's effect: every backend service acknowledged the shutdown.
    assert answers["graceful-shutdown"][:2] == (200, "OK")
    acknowledged = {a["service"] for a in replies["graceful-shutdown"]["data"]["acknowledged"]}
    assert acknowledged == {s.value for s in BACKEND_SERVICES}, replies["graceful-shutdown"]
    slowest = sorted(answers.items(), key=lambda kv: -kv[1][2])[:5]
    print("slowest:", [(n, round(a[2], 2)) for n, a in slowest])
    print(
        "codes:", {c: sum(1 for a in answers.values() if a[1] == c) for c in {a[1] for a in answers.values()}}
    )
