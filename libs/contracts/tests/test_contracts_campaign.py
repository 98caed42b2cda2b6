"""Contracts of the campaign service: its 87 commands and its events.

Checks the catalogue against COMMANDS.md (owner and domain), the least-role rules, that every model
builds a JSON schema, that bad input fails with field-level errors, and a few schema details that
callers rely on.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import tgm_contracts  # noqa: F401  (registers every command)
from pydantic import BaseModel, ValidationError
from tgm_contracts import EVENTS, REGISTRY, Domain, Role, Service
from tgm_contracts.command import Command, validation_details
from tgm_contracts.events import Event
from tgm_contracts.models import campaign as m

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

ev = importlib.import_module("tgm_contracts.events_campaign")

MODULES = {
    "messaging": Domain.MESSAGING,
    "automation": Domain.AUTOMATION,
    "crm": Domain.CONTACTS,
    "ads": Domain.ADS,
    "collaboration": Domain.MULTI_ROLE,
}
EXPECTED_COUNTS = {
    Domain.MESSAGING: 18,
    Domain.AUTOMATION: 30,
    Domain.CONTACTS: 15,
    Domain.ADS: 9,
    Domain.MULTI_ROLE: 15,
}


def _commands_md() -> Path | None:
    candidates: list[Path] = []
    for parent in Path(__file__).resolve().parents:
        candidates += [parent / "docs/COMMANDS.md", parent / "shared/design/COMMANDS.md"]
    return next((p for p in candidates if p.is_file()), None)


def _catalogue_rows() -> list[tuple[str, str, str]]:
    path = _commands_md()
    if path is None:
        pytest.skip("COMMANDS.md not found")
    row = re.compile(r"^\|\s*([a-z-]+)\s*\|\s*([a-z_]+)\s*\|\s*`([a-z0-9-]+)`\s*\|")
    rows = [
        (mt[1], mt[2], mt[3])
        for line in path.read_text(encoding="utf-8").splitlines()
        if (mt := row.match(line))
    ]
    assert len(rows) == 193, f"COMMANDS.md should list 193 commands, parsed {len(rows)}"
    return rows


def _campaign_commands() -> list[type[Command]]:
    return [c for c in REGISTRY.all() if c.OWNER is Service.CAMPAIGN]


def _module_commands(module: str) -> list[type[Command]]:
    return [c for c in _campaign_commands() if c.__module__ == f"tgm_contracts.commands.{module}"]


def _fail(name: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    cmd = REGISTRY.get(name)
    assert cmd is not None, name
    with pytest.raises(ValidationError) as exc:
        # destructive commands are confirmed here: these cases are about the other fields
        cmd.parse({"confirm": True, **payload} if cmd.destructive() else payload)
    return validation_details(exc.value)


def _locs(details: list[dict[str, Any]]) -> list[list[str]]:
    return [d["loc"] for d in details]


# --- catalogue -----------------------------------------------------------------------------------


def test_every_campaign_row_of_commands_md_is_declared_with_its_owner_and_domain() -> None:
    rows = [(o, d, n) for (o, d, n) in _catalogue_rows() if o == "campaign"]
    assert len(rows) == 87
    problems = []
    for _owner, domain, name in rows:
        cmd = REGISTRY.get(name)
        if cmd is None:
            problems.append(f"{name}: not declared")
        elif cmd.OWNER is not Service.CAMPAIGN or cmd.DOMAIN.value != domain:
            problems.append(
                f"{name}: declared {cmd.OWNER.value}/{cmd.DOMAIN.value}, catalogue campaign/{domain}"
            )
    assert problems == []
    declared = {c.NAME for c in _campaign_commands()}
    assert declared == {n for (_o, _d, n) in rows}, "campaign declares commands the catalogue does not list"


def test_no_campaign_module_declares_a_command_the_catalogue_gives_another_owner() -> None:
    owners = {n: o for (o, _d, n) in _catalogue_rows()}
    for module in MODULES:
        for cmd in _module_commands(module):
            assert owners.get(cmd.NAME) == "campaign", cmd.NAME


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_holds_exactly_its_domain(module: str) -> None:
    cmds = _module_commands(module)
    domain = MODULES[module]
    assert {c.DOMAIN for c in cmds} == {domain}
    assert len(cmds) == EXPECTED_COUNTS[domain]


def test_subjects_and_summaries() -> None:
    for cmd in _campaign_commands():
        assert f"tgm.campaign.cmd.{cmd.NAME}.v1" == cmd.SUBJECT
        assert cmd.describe()["summary"], f"{cmd.NAME} has no docstring"


def test_least_roles_follow_the_rules() -> None:
    admin_verbs = ("delete-", "clear-")
    admin_removals = {"remove-template", "remove-keyword-set", "remove-campaign"}
    for cmd in _campaign_commands():
        if cmd.NAME.startswith("get-") or cmd.NAME in {"preview-ad", "test-trigger-rule"}:
            assert cmd.ROLE is Role.VIEWER, cmd.NAME
        elif cmd.NAME.startswith(admin_verbs) or cmd.NAME in admin_removals:
            assert cmd.ROLE is Role.ADMIN, cmd.NAME
        else:
            assert cmd.ROLE is Role.OPERATOR, cmd.NAME


# --- schemas -------------------------------------------------------------------------------------


def _campaign_models() -> list[type[BaseModel]]:
    models: set[type[BaseModel]] = set()
    for cmd in _campaign_commands():
        models.update((cmd.Request, cmd.Response))
    for mod in (m, ev, *(importlib.import_module(f"tgm_contracts.commands.{n}") for n in MODULES)):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == mod.__name__:
                models.add(obj)
    return sorted(models, key=lambda t: (t.__module__, t.__qualname__))


def test_every_model_builds_a_json_schema_in_both_modes() -> None:
    models = _campaign_models()
    assert len(models) > 150
    for model in models:
        for mode in ("validation", "serialization"):
            schema = model.model_json_schema(mode=mode)
            assert schema.get("type") == "object" or "$ref" in schema or "properties" in schema, model


def test_request_schemas_use_camel_case_and_forbid_extras() -> None:
    for cmd in _campaign_commands():
        schema = cmd.Request.model_json_schema()
        assert schema.get("additionalProperties") is False, cmd.NAME
        for prop in schema.get("properties", {}):
            assert "_" not in prop, f"{cmd.NAME}: {prop} is not camelCase"


def test_send_message_schema_spot_check() -> None:
    schema = REGISTRY.get("send-message").Request.model_json_schema()
    props = schema["properties"]
    for name in ("accountId", "pool", "peer", "leadId", "text", "templateId", "variables", "idempotencyKey"):
        assert name in props
    assert props["waitSeconds"]["maximum"] == 55
    assert REGISTRY.get("send-message").TIMEOUT == 60


def test_job_view_schema_lists_the_job_states() -> None:
    schema = m.JobView.model_json_schema(mode="serialization")
    states = schema["$defs"]["JobState"]["enum"]
    assert states == ["pending", "scheduled", "in_flight", "sent", "failed", "skipped", "cancelled"]
    for name in (
        "attempts",
        "lastError",
        "idempotencyKey",
        "priority",
        "notBefore",
        "accountId",
        "pool",
        "peer",
    ):
        assert name in schema["properties"], name


def test_queue_message_schema_limits_recipients_and_priorities() -> None:
    schema = REGISTRY.get("queue-message").Request.model_json_schema()
    rec = schema["properties"]["recipients"]
    assert (rec["minItems"], rec["maxItems"]) == (1, 10_000)
    assert schema["properties"]["priority"]["enum"] == ["high", "normal", "low"]


def test_trigger_rule_actions_are_a_tagged_union() -> None:
    schema = REGISTRY.get("save-trigger-rule").Request.model_json_schema()
    mapping = schema["properties"]["actions"]["items"]["discriminator"]["mapping"]
    assert set(mapping) == {"reply_template", "ai_reply", "add_lead", "notify", "start_scenario"}


def test_keyword_match_types() -> None:
    schema = REGISTRY.get("add-keyword").Request.model_json_schema()
    match_type = schema["properties"]["matchType"]["anyOf"][0]["enum"]
    assert match_type == ["exact", "contains", "regex", "fuzzy"]


# --- bad input gives field-level errors ----------------------------------------------------------

PEER = 42

BAD: list[tuple[str, dict[str, Any], list[str], str]] = [
    ("send-message", {"peer": PEER, "text": "hi", "mesage": "x"}, ["mesage"], "extra_forbidden"),
    (
        "send-message",
        {"peer": "ab!", "text": "hi"},
        ["peer"],
        "value_error",
    ),
    ("send-message", {"peer": PEER, "text": "x" * 9000}, ["text"], "string_too_long"),
    ("send-message", {"peer": PEER, "text": "hi", "waitSeconds": 120}, ["waitSeconds"], "less_than_equal"),
    ("send-group-message", {"groupId": "g", "text": "hi", "replyToMessageId": 0}, ["replyToMessageId"], ""),
    ("queue-message", {"recipients": [], "text": "hi"}, ["recipients"], "too_short"),
    ("queue-message", {"recipients": [{"peer": PEER}], "text": "hi", "priority": "urgent"}, ["priority"], ""),
    (
        "queue-message",
        {"recipients": [{"peer": PEER}], "text": "hi", "notBefore": "2030-01-01T10:00:00"},
        ["notBefore"],
        "timezone_aware",
    ),
    ("queue-message", {"recipients": [{"peer": PEER}], "text": "hi", "maxAttempts": 0}, ["maxAttempts"], ""),
    (
        "queue-message",
        {"recipients": [{"peer": PEER}], "text": "hi", "variables": {"1x": "a"}},
        ["variables", "1x", "[key]"],
        "",
    ),
    ("get-queue-status", {"limit": 0}, ["limit"], "greater_than_equal"),
    ("get-queue-status", {"states": ["done"]}, ["states", "0"], "enum"),
    ("clear-queue", {"states": ["in_flight"]}, ["states", "0"], "literal_error"),
    ("pause-queue", {"scope": "everything"}, ["scope"], "literal_error"),
    (
        "add-template",
        {"name": "t", "content": "hi", "variables": [{"name": "1bad"}]},
        ["variables", "0", "name"],
        "string_pattern_mismatch",
    ),
    ("add-template", {"name": "", "content": "hi"}, ["name"], "string_too_short"),
    ("save-chat-template", {"name": "t", "content": "hi", "category": "Not Ok"}, ["category"], ""),
    ("get-chat-history", {"peer": 0}, ["peer"], "value_error"),
    (
        "save-chat-history",
        {
            "accountId": "a",
            "peer": PEER,
            "messages": [{"direction": "up", "text": "x", "date": "2030-01-01T00:00:00Z"}],
        },
        ["messages", "0", "direction"],
        "literal_error",
    ),
    ("add-keyword", {"setId": "s", "keyword": "(", "matchType": "regex"}, ["keyword"], "value_error"),
    ("add-keyword", {"setId": "s", "keyword": "x", "matchType": "glob"}, ["matchType"], "literal_error"),
    (
        "save-keyword-set",
        {"name": "k", "matchMode": "regex", "keywords": ["[a-"]},
        ["keywords"],
        "value_error",
    ),
    (
        "save-keyword-set",
        {"name": "k", "keywords": [{"keyword": "(", "matchType": "regex"}]},
        ["keywords", "0", "keyword"],
        "value_error",
    ),
    ("save-keyword-set", {"name": "k", "keywords": ["dup", "DUP"]}, ["keywords"], "value_error"),
    ("add-group", {"url": "https://example.com/x"}, ["url"], "value_error"),
    (
        "save-trigger-rule",
        {"name": "r", "keywordSetIds": [], "actions": [{"type": "notify"}]},
        ["keywordSetIds"],
        "too_short",
    ),
    (
        "save-trigger-rule",
        {"name": "r", "keywordSetIds": ["k"], "actions": [{"type": "nope"}]},
        ["actions", "0"],
        "union_tag_invalid",
    ),
    (
        "save-trigger-rule",
        {
            "name": "r",
            "keywordSetIds": ["k"],
            "actions": [{"type": "notify"}],
            "conditions": {"timeRange": {"start": "25:00", "end": "07:00"}},
        },
        ["conditions", "timeRange", "start"],
        "string_pattern_mismatch",
    ),
    ("test-trigger-rule", {"ruleId": "r", "message": {"text": ""}}, ["message", "text"], "string_too_short"),
    (
        "add-campaign",
        {"name": "c", "audience": {"leadStages": ["won"]}, "steps": [{"text": "hi"}]},
        ["audience", "leadStages", "0"],
        "enum",
    ),
    ("get-campaigns", {"statuses": ["going"]}, ["statuses", "0"], "enum"),
    ("add-lead", {"userId": 5, "tags": ["x" * 41]}, ["tags", "0"], "string_too_long"),
    ("update-lead-stage", {"leadId": "l", "stage": "won"}, ["stage"], "enum"),
    ("update-lead", {"leadId": "l", "intentScore": 101}, ["intentScore"], "less_than_equal"),
    ("get-leads", {"sort": "name"}, ["sort"], "literal_error"),
    ("blacklist-user", {"telegramId": -5}, ["telegramId"], "greater_than"),
    ("track-user", {"userId": 5, "valueLevel": "vip"}, ["valueLevel"], "literal_error"),
    ("get-user-activity", {"userId": 5, "kinds": ["sneeze"]}, ["kinds", "0"], "literal_error"),
    (
        "create-ad-campaign",
        {
            "name": "a",
            "templateIds": ["t"],
            "targets": [{"groupId": "g"}],
            "schedule": {"type": "interval", "intervalMinutes": 5},
        },
        ["schedule", "intervalMinutes"],
        "",
    ),
    (
        "create-ad-campaign",
        {
            "name": "a",
            "templateIds": ["t"],
            "targets": [{"groupId": "g"}],
            "schedule": {"type": "daily", "times": ["9:00"]},
        },
        ["schedule", "times", "0"],
        "string_pattern_mismatch",
    ),
    ("preview-ad", {"templateId": "t", "samples": 50}, ["samples"], "less_than_equal"),
    ("save-role", {"name": "r", "type": "villain"}, ["type"], "literal_error"),
    (
        "save-script",
        {"name": "s", "roles": [{"key": "a"}], "stages": [{"lines": [{"slot": "b", "text": "x"}]}]},
        ["stages"],
        "value_error",
    ),
    (
        "save-script",
        {"name": "s", "roles": [{"key": "Bad Key"}], "stages": [{"lines": [{"slot": "a", "text": "x"}]}]},
        ["roles", "0", "key"],
        "string_pattern_mismatch",
    ),
    ("start-swarm", {"groupId": "g", "roleIds": ["only-one"]}, ["roleIds"], "too_short"),
    ("start-swarm", {"groupId": "g", "roleIds": ["a", "b"], "replyProbability": 2}, ["replyProbability"], ""),
]


@pytest.mark.parametrize(
    ("name", "payload", "loc", "type_"), BAD, ids=[f"{b[0]}:{'.'.join(b[2])}" for b in BAD]
)
def test_bad_input_is_rejected_at_the_field(
    name: str, payload: dict[str, Any], loc: list[str], type_: str
) -> None:
    details = _fail(name, payload)
    assert loc in _locs(details), details
    if type_:
        assert type_ in [d["type"] for d in details if d["loc"] == loc], details


CROSS_FIELD: list[tuple[str, dict[str, Any], str]] = [
    ("send-message", {"text": "hi"}, "exactly one of peer or leadId"),
    ("send-message", {"peer": PEER, "leadId": "l", "text": "hi"}, "exactly one of peer or leadId"),
    ("send-message", {"peer": PEER}, "give text, templateId or attachment"),
    ("send-message", {"peer": PEER, "text": "hi", "templateId": "t"}, "not both"),
    ("send-message", {"peer": PEER, "text": "hi", "accountId": "a", "pool": {}}, "accountId or pool"),
    ("send-private-message", {"accountId": "a", "peer": -1001234, "text": "hi"}, "must be a user"),
    ("send-group-message", {"groupId": "g", "group": "@somegroup", "text": "hi"}, "one of groupId or group"),
    (
        "queue-message",
        {
            "recipients": [{"peer": PEER}],
            "text": "x",
            "notBefore": "2030-01-02T00:00:00Z",
            "expiresAt": "2030-01-01T00:00:00Z",
        },
        "expiresAt must be after notBefore",
    ),
    ("pause-queue", {"scope": "account"}, "takes accountId"),
    ("resume-queue", {"scope": "all", "campaignId": "c"}, "takes no accountId"),
    (
        "save-trigger-rule",
        {"name": "r", "keywordSetIds": ["k"], "actions": [{"type": "notify"}], "sourceType": "specific"},
        "needs sourceGroupIds",
    ),
    (
        "save-trigger-rule",
        {
            "name": "r",
            "keywordSetIds": ["k"],
            "actions": [{"type": "notify"}],
            "delayMin": 60,
            "delayMax": 10,
        },
        "delayMax must be >= delayMin",
    ),
    (
        "save-trigger-rule",
        {
            "name": "r",
            "keywordSetIds": ["k"],
            "actions": [{"type": "ai_reply"}, {"type": "reply_template", "templateId": "t"}],
        },
        "at most one reply action",
    ),
    ("add-campaign", {"name": "c", "audience": {}, "steps": [{"text": "hi"}]}, "audience selector"),
    ("update-lead", {"leadId": "l"}, "at least one field"),
    ("update-funnel-stage", {"stage": "replied"}, "exactly one of leadIds or userIds"),
    ("assign-lead", {"leadIds": ["l"]}, "accountId and/or assignee"),
    (
        "create-ad-campaign",
        {"name": "a", "templateIds": ["t"], "targets": [{"groupId": "g"}], "schedule": {"type": "interval"}},
        "needs intervalMinutes",
    ),
    ("start-collaboration", {"scriptId": "s", "roleBindings": {"a": "r"}}, "give chat or newGroup"),
    ("save-scenario", {"name": "x", "scriptId": "s", "roleBindings": {"a": "r"}}, "needs newGroup"),
]


@pytest.mark.parametrize(
    ("name", "payload", "text"), CROSS_FIELD, ids=[f"{c[0]}:{c[2]}" for c in CROSS_FIELD]
)
def test_cross_field_rules_say_what_is_wrong(name: str, payload: dict[str, Any], text: str) -> None:
    details = _fail(name, payload)
    assert any(text in d["msg"] for d in details), details


def test_validation_details_never_echo_the_input() -> None:
    details = _fail("send-message", {"peer": PEER, "text": "SECRET-" + "x" * 9000})
    assert "SECRET" not in repr(details)


# --- good input ----------------------------------------------------------------------------------


def test_queue_message_accepts_camel_and_snake_case_and_writes_camel_case() -> None:
    payload = {
        "recipients": [
            {"peer": "t.me/alice_1"},
            {"lead_id": "lead-1", "variables": {"first_name": "A"}},
        ],
        "templateId": "tpl-1",
        "pool": {"groups": ["sales"], "roles": ["Sender"], "strategy": "round_robin"},
        "priority": "high",
        "not_before": "2030-01-01T09:00:00+08:00",
        "idempotencyKey": "batch-7",
    }
    req = REGISTRY.get("queue-message").parse(payload)
    wire = req.wire()
    assert wire["recipients"][0]["peer"] == "@alice_1"  # normalised as tg-session writes peers
    assert wire["recipients"][1]["leadId"] == "lead-1"
    assert wire["pool"]["strategy"] == "round_robin"
    assert wire["pool"]["roles"] == ["sender"]  # the earlier client's capitalised role names
    assert wire["notBefore"].startswith("2030-01-01T09:00:00")
    assert REGISTRY.get("queue-message").parse(wire) == req


def test_keyword_strings_become_keyword_objects() -> None:
    req = REGISTRY.get("save-keyword-set").parse(
        {"name": "k", "matchMode": "regex", "keywords": [r"^buy\s+now"]}
    )
    assert req.keywords[0].keyword == r"^buy\s+now"
    assert req.keywords[0].match_type is None  # the set's matchMode applies


def test_update_lead_distinguishes_null_from_absent() -> None:
    req = REGISTRY.get("update-lead").parse({"leadId": "l", "notes": None})
    assert "notes" in req.model_fields_set and req.notes is None
    assert "tags" not in req.model_fields_set


def test_blacklist_accepts_the_earlier_clients_field_name() -> None:
    cmd = REGISTRY.get("blacklist-user")
    assert cmd.parse({"telegramId": 77, "blacklist": True}).user_id == 77
    assert cmd.parse({"userId": 78}).user_id == 78


def test_trigger_rule_defaults_match_the_earlier_system() -> None:
    req = REGISTRY.get("save-trigger-rule").parse(
        {"name": "r", "keywordSetIds": ["k"], "actions": [{"type": "reply_template", "templateId": "t"}]}
    )
    assert (req.priority, req.delay_min, req.delay_max, req.daily_limit) == (2, 30, 120, 50)
    assert req.actions[0].target == "private"


def test_views_ignore_unknown_fields() -> None:
    now = "2030-01-01T00:00:00Z"
    view = m.JobView.model_validate(
        {
            "jobId": "j",
            "state": "sent",
            "priority": "urgent",
            "peer": PEER,
            "idempotencyKey": "k",
            "createdAt": now,
            "updatedAt": now,
            "addedLater": 1,
        }
    )
    assert view.state is m.JobState.SENT and view.state.terminal


# --- shared model behaviour ----------------------------------------------------------------------


def test_peer_keys_and_kinds() -> None:
    assert m.peer_key(5) == "id:5"
    assert m.peer_key(-1001234) == "id:-1001234"
    assert m.peer_key("@SomeOne") == "@someone"
    assert m.peer_key("+886912345678") == "+886912345678"
    assert m.is_chat_peer(-1001234) and not m.is_chat_peer("@somegroup") and not m.is_chat_peer(5)
    assert m.is_user_peer(5) and m.is_user_peer("+886912345678") and not m.is_user_peer("@someone")


def test_priority_order_and_terminal_states() -> None:
    assert sorted(m.Priority, key=lambda p: p.rank) == [
        m.Priority.URGENT,
        m.Priority.HIGH,
        m.Priority.NORMAL,
        m.Priority.LOW,
    ]
    assert {s for s in m.JobState if s.terminal} == {"sent", "failed", "skipped", "cancelled"}
    assert not m.JobState.IN_FLIGHT.terminal


def test_lead_stages_agree_with_the_ai_models_if_present() -> None:
    try:
        ai = importlib.import_module("tgm_contracts.models.ai")
    except ImportError:
        pytest.skip("models.ai not present")
    funnel = getattr(ai, "FunnelStage", None)
    if funnel is None:
        pytest.skip("models.ai has no FunnelStage")
    values = list(funnel.__args__) if hasattr(funnel, "__args__") else [s.value for s in funnel]
    assert values == [s.value for s in m.LeadStage]


# --- events --------------------------------------------------------------------------------------


def test_events_are_registered_under_campaign_subjects() -> None:
    names = [e.NAME for e in ev.CAMPAIGN_EVENTS]
    assert len(names) == len(set(names))
    for event in ev.CAMPAIGN_EVENTS:
        assert issubclass(event, Event)
        assert event.OWNER is Service.CAMPAIGN
        assert f"tgm.campaign.evt.{event.NAME}.v1" == event.SUBJECT
        assert EVENTS[event.SUBJECT] is event
    declared = {
        obj
        for obj in vars(ev).values()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event and "NAME" in obj.__dict__
    }
    assert declared == set(ev.CAMPAIGN_EVENTS), "an event class is missing from CAMPAIGN_EVENTS"
    for required in (
        "job-state-changed",
        "queue-progress",
        "message-queued",
        "lead-captured",
        "keyword-matched",
        "trigger-fired",
        "campaign-state-changed",
        "collaboration-progress",
    ):
        assert required in names


def test_job_state_changed_round_trips_on_the_wire() -> None:
    event = ev.JobStateChanged(
        job_id="j1",
        state=m.JobState.SCHEDULED,
        previous_state=m.JobState.IN_FLIGHT,
        reason=m.JobReason.FLOOD_WAIT,
        peer=9,
        retry_at="2030-01-01T00:00:30Z",
    )
    wire = event.wire()
    assert wire["previousState"] == "in_flight" and wire["reason"] == "flood_wait"
    assert wire["eventId"] and wire["occurredAt"]
    back = ev.JobStateChanged.model_validate(wire)
    assert back == event
