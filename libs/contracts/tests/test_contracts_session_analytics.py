"""The tg-session (54) and analytics (15) contracts: registered as COMMANDS.md says, requests that refuse
bad input with field-level errors, and no secret in any view, event or internal reply."""

from __future__ import annotations

import base64
import re
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError
from tgm_contracts import ACCOUNT_RPCS, EVENTS, REGISTRY, RPCS, Domain, Role, Service, validation_details
from tgm_contracts import events_analytics as EA
from tgm_contracts import events_session as ES
from tgm_contracts import rpc_session as R
from tgm_contracts.commands import accounts as A
from tgm_contracts.commands import analytics as AN
from tgm_contracts.commands import telegram_ops as T
from tgm_contracts.models.analytics import ExportFile, StatsWindow
from tgm_contracts.models.session import AccountState, ProxyConfig, mask_secret

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

COMMANDS_MD = Path(__file__).resolve().parents[3] / "docs" / "COMMANDS.md"  # copy of the design catalogue
ROW = re.compile(r"^\|\s*(tg-session|analytics)\s*\|\s*(\S+)\s*\|\s*`([a-z0-9-]+)`\s*\|", re.M)
OWNERS = (Service.TG_SESSION, Service.ANALYTICS)


def _mine() -> list:
    """The seed's commands of these owners (analytics' rebuild commands are not seed ones)."""
    return [c for owner in OWNERS for c in REGISTRY.owned_by(owner) if c.SEED]


def _errors(cmd_name: str, payload: dict) -> list[dict]:
    cmd = REGISTRY.get(cmd_name)
    assert cmd is not None, cmd_name
    with pytest.raises(ValidationError) as info:
        # destructive commands are confirmed here: these cases are about the other fields
        cmd.parse({"confirm": True, **payload} if cmd.destructive() else payload)
    return validation_details(info.value)


# --- registration --------------------------------------------------------------------------------


def test_every_command_is_registered_with_the_owner_and_domain_of_commands_md() -> None:
    if not COMMANDS_MD.exists():
        pytest.skip(f"{COMMANDS_MD} not present")
    expected = {name: (owner, domain) for owner, domain, name in ROW.findall(COMMANDS_MD.read_text())}
    assert sum(1 for o, _ in expected.values() if o == "tg-session") == 54
    assert sum(1 for o, _ in expected.values() if o == "analytics") == 15
    declared = {c.NAME: (c.OWNER.value, c.DOMAIN.value) for c in _mine()}
    assert declared == expected


def test_counts_modules_and_subjects() -> None:
    assert len([c for c in REGISTRY.owned_by(Service.TG_SESSION) if c.SEED]) == 54  # + 4 bot commands
    assert len([c for c in REGISTRY.owned_by(Service.ANALYTICS) if c.SEED]) == 15  # + 2 rebuild commands
    modules = {c.__module__.rsplit(".", 1)[-1] for c in _mine()}
    assert modules == {"accounts", "telegram_ops", "analytics"}
    assert sum(c.DOMAIN is Domain.ACCOUNT for c in REGISTRY.owned_by(Service.TG_SESSION)) == 39
    for cmd in _mine():
        assert f"tgm.{cmd.OWNER.value}.cmd.{cmd.NAME}.v1" == cmd.SUBJECT
        assert cmd.__doc__ and cmd.__doc__.strip(), cmd.NAME


def test_least_roles() -> None:
    admin = {
        "remove-account", "bulk-delete-accounts", "logout-account", "credential-start-scrape",
        "credential-submit-code", "save-api-credential", "delete-api-credential", "clear-alerts", "clear-logs",
    }  # fmt: skip
    for cmd in _mine():
        if cmd.NAME in admin:
            assert cmd.ROLE is Role.ADMIN, cmd.NAME
        elif cmd.NAME.startswith(("get-", "ip-get-", "credential-get-", "export-")):
            assert cmd.ROLE is Role.VIEWER, cmd.NAME
        else:
            assert cmd.ROLE in (Role.OPERATOR, Role.VIEWER), cmd.NAME


def test_every_schema_builds() -> None:
    for cmd in _mine():
        assert cmd.Request.model_json_schema(mode="validation")["type"] == "object"
        assert cmd.Response.model_json_schema(mode="serialization")["type"] == "object"
    for rpc in [*RPCS, *ACCOUNT_RPCS]:
        rpc.Request.model_json_schema()
        rpc.Response.model_json_schema(mode="serialization")
    for evt in EVENTS.values():
        evt.model_json_schema(mode="serialization")


def test_events_and_internal_calls_are_declared() -> None:
    session_events = {e.NAME for e in EVENTS.values() if e.OWNER is Service.TG_SESSION}
    assert {
        "account-status-changed", "login-code-sent", "login-password-needed", "qr-login-updated",
        "account-logged-in", "login-failed", "message-received", "message-sent", "message-edited",
        "member-joined", "extraction-progress", "extraction-finished", "lease-moved", "flood-wait-recorded",
    } <= session_events  # fmt: skip
    analytics_events = {e.NAME for e in EVENTS.values() if e.OWNER is Service.ANALYTICS}
    assert {"alert-raised", "report-ready"} <= analytics_events
    assert ES.MessageReceived.SUBJECT == "tgm.tg-session.evt.message-received.v1"
    assert EA.AlertRaised.SUBJECT == "tgm.analytics.evt.alert-raised.v1"
    assert R.Send.subject("acc_1") == "tgm.acct.acc_1.send.v1"
    assert R.PickAccounts.SUBJECT == "tgm.tg-session.rpc.pick-accounts.v1"
    assert {R.Send, R.ResolvePeer, R.GetHistory, R.MarkRead} <= set(ACCOUNT_RPCS)


# --- bad input is refused with field errors ------------------------------------------------------

FIELD_ERRORS = [
    ("add-account", {"phone": "call me"}, ["phone"]),
    ("add-account", {"phone": "+886912345678", "proxy": {"host": "h", "port": 0}}, ["proxy", "port"]),
    ("add-account", {"phone": "+886912345678", "proxy": {"type": "ftp", "host": "h", "port": 1}}, ["proxy", "type"]),
    ("add-account", {"phone": "+886912345678", "apiId": 1, "apiHash": "nothex"}, ["apiHash"]),
    ("add-account", {"phone": "+886912345678", "role": "captain"}, ["role"]),
    ("get-accounts", {"limit": 0}, ["limit"]),
    ("get-accounts", {"state": ["sleeping"]}, ["state", "0"]),
    ("update-account", {"accountId": "a1", "dailySendLimit": -1}, ["dailySendLimit"]),
    ("update-account-data", {"accountId": "a1", "username": "a b"}, ["username"]),
    ("verify-code", {"accountId": "a1", "phoneCode": "12ab"}, ["phoneCode"]),
    ("verify-code", {"accountId": "a1"}, ["phoneCode"]),
    ("bulk-assign-role", {"accountIds": [], "role": "sender"}, ["accountIds"]),
    ("bulk-delete-accounts", {"accountIds": ["a.b"]}, ["accountIds", "0"]),
    ("qr-login-status", {"sessionId": "../etc"}, ["sessionId"]),
    ("qr-login-create", {"imageSize": 4096}, ["imageSize"]),
    ("test-proxy", {"host": "h", "port": 70000}, ["port"]),
    ("ip-bind", {"accountId": "a1"}, ["proxy"]),
    ("ip-bind", {"accountId": "a1", "proxy": "ftp://h:21"}, ["proxy"]),
    ("credential-submit-code", {"accountId": "a1", "code": "no spaces!"}, ["code"]),
    ("join-group", {"accountId": "a1", "group": "not a chat!"}, ["group"]),
    ("join-group", {"accountId": "a.b", "group": "@python"}, ["accountId"]),
    ("extract-members", {"accountId": "a1", "group": "@python", "filters": {"activeWithinDays": 0}},
     ["filters", "activeWithinDays"]),
    ("get-group-members", {"group": "@python", "limit": 201}, ["limit"]),
    ("export-collected-users", {"format": "pdf"}, ["format"]),
    ("export-collected-users", {"columns": ["password"]}, ["columns", "0"]),
    ("create-group", {"accountId": "a1", "title": ""}, ["title"]),
    ("save-api-credential", {"apiId": 0, "apiHash": "0" * 32}, ["apiId"]),
    ("delete-api-credential", {}, ["id"]),
    ("get-analytics", {"metrics": ["nope"]}, ["metrics", "0"]),
    ("get-analytics", {"metrics": []}, ["metrics"]),
    ("get-message-stats", {"bucket": "week"}, ["bucket"]),
    ("schedule-report", {"name": "x", "report": "messages", "cron": "61 * * * *"}, ["cron"]),
    ("schedule-report", {"name": "x", "report": "messages", "intervalSeconds": 10}, ["intervalSeconds"]),
    ("schedule-report", {"name": "x", "report": "messages", "cron": "@daily",
                         "recipients": [{"kind": "email", "target": "a@b"}]}, ["recipients", "0", "kind"]),
    ("get-alerts", {"level": ["loud"]}, ["level", "0"]),
    ("dismiss-alert", {}, ["alertId"]),
    ("get-logs", {"level": "verbose"}, ["level", "0"]),
    ("export-logs", {"format": "pdf"}, ["format"]),
    ("clear-logs", {"keepDays": -1}, ["keepDays"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "payload", "loc"), FIELD_ERRORS, ids=[f"{c[0]}-{i}" for i, c in enumerate(FIELD_ERRORS)]
)
def test_bad_field_is_named(command: str, payload: dict, loc: list[str]) -> None:
    errors = _errors(command, payload)
    assert any(e["loc"][: len(loc)] == loc for e in errors), errors


WHOLE_REQUEST_ERRORS = [
    ("add-account", {"phone": "+886912345678", "apiId": 123}, "apiId and apiHash go together"),
    ("add-account", {"phone": "+886912345678", "apiCredentialId": "c1", "apiId": 1, "apiHash": "a" * 32}, "not both"),
    ("add-account", {"phone": "+1555000111", "proxy": {"type": "mtproxy", "host": "h", "port": 443}}, "secret"),
    ("add-account", {"phone": "+1555000111", "proxy": {"host": "h", "port": 1, "password": "p"}}, "username"),
    ("sync-account-info", {}, "accountId or phone is required"),
    ("update-account-data", {"accountId": "a1"}, "at least one"),
    ("batch-update-accounts", {"accountIds": ["a1"], "updates": {}}, "updates is empty"),
    ("save-groups", {"groups": [{"name": "A"}, {"name": "a"}]}, "unique"),
    ("create-group", {"accountId": "a1", "title": "t", "kind": "group"}, "at least one member"),
    ("get-group-members", {"group": "@python", "filter": "search"}, "needs a query"),
    ("save-api-credential", {"name": "x"}, "needs apiId and apiHash"),
    ("test-api-credential", {}, "either id or apiId"),
    ("delete-api-credential", {"id": "c1", "reassignTo": "c1"}, "itself"),
    ("get-message-stats", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "before"),
    ("get-message-stats", {"bucket": "hour", "since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
     "at most"),
    ("export-report", {}, "reportId"),
    ("schedule-report", {"name": "x", "report": "users", "cron": "@daily", "intervalSeconds": 3600}, "not both"),
    ("schedule-report", {"name": "x"}, "needs report, cron or intervalSeconds"),
    ("schedule-report", {"action": "delete"}, "needs scheduleId"),
    ("clear-logs", {}, "exactly one"),
    ("clear-logs", {"keepDays": 7, "all": True}, "exactly one"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "payload", "message"), WHOLE_REQUEST_ERRORS)
def test_inconsistent_request_is_refused_with_a_clear_message(
    command: str, payload: dict, message: str
) -> None:
    errors = _errors(command, payload)
    assert any(message in e["msg"] for e in errors), errors


# --- accepted shapes and normalisation -----------------------------------------------------------


def test_phone_and_account_selector_forms() -> None:
    req = A.AddAccountRequest.model_validate({"phone": "886 (912) 345-678"})
    assert req.phone == "+886912345678"
    assert A.SyncAccountInfo.parse({"id": "acc_1"}).account_id == "acc_1"  # the earlier client's `id`
    assert A.SyncAccountInfo.parse({"account_id": "acc_1"}).wire() == {"accountId": "acc_1", "phone": None}
    assert A.SyncAccountInfo.parse({"phone": "0044 20 7946 0000"}).phone == "+442079460000"


def test_proxy_urls_and_links() -> None:
    p = ProxyConfig.model_validate("socks5://user:p%40ss@10.0.0.1:1081")
    assert (p.type, p.host, p.port, p.username, p.password.get_secret_value()) == (
        "socks5", "10.0.0.1", 1081, "user", "p@ss",
    )  # fmt: skip
    assert ProxyConfig.model_validate("http://proxy.local").port == 8080
    assert ProxyConfig.model_validate("socks4://h").port == 1080
    mt = ProxyConfig.model_validate("tg://proxy?server=mt.example&port=443&secret=" + "ab" * 16)
    assert (mt.type, mt.host, mt.port) == ("mtproxy", "mt.example", 443)
    assert (
        ProxyConfig.model_validate("https://t.me/proxy?server=x.y&port=8443&secret=" + "cd" * 16).port == 8443
    )
    with pytest.raises(ValidationError):
        ProxyConfig.model_validate("tg://proxy?server=x.y")
    # host names the resolver can take (schemathesis: a 256-character label was an INTERNAL 500)
    assert ProxyConfig.model_validate({"host": "[2001:db8::1]", "port": 1}).host == "[2001:db8::1]"
    for host in ("0" * 250, "a" * 64 + ".example", "a..b", ".lead"):
        with pytest.raises(ValidationError, match="valid host name"):
            ProxyConfig.model_validate({"host": host, "port": 1080})


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("@python", "@python"),
        ("python", "@python"),
        ("https://t.me/python", "@python"),
        ("t.me/python/123", "@python"),
        ("https://t.me/+AbCdEf12345", "+AbCdEf12345"),
        ("https://t.me/joinchat/AbCdEf12345", "+AbCdEf12345"),
        ("+AbCdEf12345", "+AbCdEf12345"),
        ("9bCdEf12345-xyz", "+9bCdEf12345-xyz"),  # a bare hash no username could be
        ("AbCdEf12345xyzQR", "@AbCdEf12345xyzQR"),  # could be both: join-group tries the hash after
        ("-1001234567890", -1001234567890),
        (-1001234567890, -1001234567890),
    ],
)
def test_chat_references_normalise(raw: object, normalised: object) -> None:
    assert T.JoinGroupRequest.model_validate({"accountId": "a1", "groupUrl": raw}).group == normalised


def test_peer_references_normalise_and_refuse_junk() -> None:
    def peer(value: object) -> object:
        return R.SendRequest.model_validate({"jobId": "j1", "peer": value, "text": "hi"}).peer

    assert peer("alice") == "@alice"
    assert peer("+886 912 345 678") == "+886912345678"
    assert peer("777000") == 777000
    for bad in ("", "a", "hello world", 0, True, "https://example.com/x"):
        with pytest.raises(ValidationError):
            peer(bad)


def test_earlier_client_field_names_are_accepted() -> None:
    assert A.SaveTagsRequest.model_validate({"tags": ["vip", "warm"]}).tags[1].name == "warm"
    data = A.UpdateAccountDataRequest.model_validate({"id": "a1", "updates": {"bio": "hello"}})
    assert data.bio == "hello" and "bio" in data.model_fields_set
    pw = A.SubmitTwoFactorPasswordRequest.model_validate({"accountId": "a1", "twoFactorPassword": "pw"})
    assert pw.password.get_secret_value() == "pw"
    logs = AN.GetLogsRequest.model_validate(
        {"type": "error", "startDate": "2026-01-01T00:00:00Z", "search": "x"}
    )
    assert logs.level == ["error"] and logs.text == "x" and logs.since is not None
    assert AN.DismissAlertRequest.model_validate({"id": "al1"}).alert_id == "al1"
    assert A.BulkAssignRoleRequest.model_validate(
        {"accountIds": ["a", "a", "b"], "role": "Sender"}
    ).account_ids == [
        "a",
        "b",
    ]
    group = T.CreateGroupRequest.model_validate({"accountId": "a1", "name": "G", "type": "channel"})
    assert (group.title, group.kind) == ("G", "channel")


def test_login_code_tolerates_spaces() -> None:
    req = A.VerifyCodeRequest.model_validate({"accountId": "a1", "phoneCode": "12 345"})
    assert req.phone_code.get_secret_value() == "12345"


def test_cron_and_schedule() -> None:
    for ok in ("*/15 * * * *", "0 9 * * mon-fri", "30 8 1,15 jan-jun 0", "@daily", "0 0 * * 7"):
        assert AN.ScheduleReportRequest.model_validate({"name": "n", "report": "messages", "cron": ok}).cron
    for bad in ("* * * *", "0 24 * * *", "0 0 0 * *", "*/0 * * * *", "0 0 * foo *"):
        with pytest.raises(ValidationError):
            AN.ScheduleReportRequest.model_validate({"name": "n", "report": "messages", "cron": bad})
    assert AN.ScheduleReportRequest.model_validate({"action": "list"}).action == "list"
    with pytest.raises(ValidationError, match="accountId"):
        AN.ScheduleReportRequest.model_validate(
            {
                "name": "n",
                "report": "users",
                "cron": "@daily",
                "recipients": [{"kind": "telegram", "target": "@me"}],
            }
        )


def test_stats_window_defaults_and_naive_times() -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert StatsWindow(bucket="hour").resolved(now) == (now - timedelta(hours=24), now)
    assert StatsWindow().resolved(now) == (now - timedelta(days=30), now)
    naive = StatsWindow.model_validate({"since": "2026-01-01T00:00:00"})
    assert naive.since is not None and naive.since.tzinfo is not None


def test_clear_logs_cutoff() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert AN.ClearLogsRequest(keep_days=7, confirm=True).cutoff(now) == now - timedelta(days=7)
    assert AN.ClearLogsRequest(all=True, confirm=True).cutoff(now) is None


def test_send_request_content_rules() -> None:
    ok = R.SendRequest.model_validate({"jobId": "j", "peer": "@alice", "mediaUrl": "https://x/y.png"})
    assert ok.text == "" and ok.parse_mode == "md"
    with pytest.raises(ValidationError, match="text is required"):
        R.SendRequest.model_validate({"jobId": "j", "peer": "@alice", "text": "   "})
    with pytest.raises(ValidationError, match="not both"):
        R.SendRequest.model_validate({"jobId": "j", "peer": "@alice", "mediaUrl": "https://x", "fileId": "f"})
    with pytest.raises(ValidationError):
        R.SendRequest.model_validate({"jobId": "", "peer": "@alice", "text": "x"})
    with pytest.raises(ValidationError):
        R.SendRequest.model_validate({"jobId": "j", "peer": "@alice", "text": "x" * 4097})


def test_export_file_has_exactly_one_location() -> None:
    now = datetime.now(UTC)
    common = {
        "format": "csv",
        "filename": "u.csv",
        "mimeType": "text/csv",
        "rows": 1,
        "sizeBytes": 4,
        "generatedAt": now,
    }
    f = ExportFile.model_validate({**common, "contentBase64": base64.b64encode(b"a,b\n").decode()})
    assert f.content() == b"a,b\n"
    with pytest.raises(ValidationError):
        ExportFile.model_validate(common)
    with pytest.raises(ValidationError):
        ExportFile.model_validate({**common, "contentBase64": "", "objectName": "x"})
    with pytest.raises(ValueError, match="stored as"):
        ExportFile.model_validate({**common, "objectName": "exports/u.csv"}).content()


# --- secrets -------------------------------------------------------------------------------------

SECRET_FIELDS = {
    "password", "two_factor_password", "api_hash", "secret", "session", "session_string", "string_session",
    "phone_code", "login_code", "site_code", "token", "auth_key", "access_hash", "proxy_password",
}  # fmt: skip


def _models_in(annotation: object) -> typing.Iterator[object]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _secret_fields(model: type[BaseModel], seen: set[type]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    found = []
    for name, field in model.model_fields.items():
        for part in _models_in(field.annotation):
            if part is SecretStr:
                found.append(f"{model.__name__}.{name}: SecretStr")
            if isinstance(part, type) and issubclass(part, BaseModel):
                found += _secret_fields(part, seen)
        if name in SECRET_FIELDS:
            found.append(f"{model.__name__}.{name}")
    return found


def test_no_view_event_or_reply_carries_a_secret() -> None:
    outputs: list[type[BaseModel]] = [c.Response for c in _mine()]
    outputs += [r.Response for r in [*RPCS, *ACCOUNT_RPCS] if r.__module__.endswith("rpc_session")]
    outputs += [e for e in EVENTS.values() if e.OWNER in OWNERS]
    leaks = [leak for model in outputs for leak in _secret_fields(model, set())]
    assert not leaks


def test_secret_inputs_are_masked_but_travel() -> None:
    payload = {
        "phone": "+886912345678",
        "apiId": 12345,
        "apiHash": "0123456789ABCDEF0123456789abcdef",
        "proxy": "socks5://bob:hunter2@10.0.0.1:1080",
    }
    req = A.AddAccount.parse(payload)
    assert "hunter2" not in repr(req) and "0123456789abcdef" not in repr(req).lower()
    wire = req.wire()
    # The request must reach tg-session intact, so the wire form carries the secrets (hash lower-cased).
    assert wire["apiHash"] == "0123456789abcdef0123456789abcdef"
    assert wire["proxy"]["password"] == "hunter2"
    assert A.AddAccount.parse(wire).wire() == wire
    view = req.proxy.view().wire()
    assert view["hasPassword"] is True and "hunter2" not in str(view)


def test_validation_errors_do_not_echo_secrets() -> None:
    with pytest.raises(ValidationError) as info:
        A.AddAccount.parse({"phone": "+886912345678", "apiId": 1, "apiHash": "topsecret-not-hex"})
    assert "topsecret" not in str(info.value)
    with pytest.raises(ValidationError) as info:
        A.SubmitTwoFactorPassword.parse({"accountId": "a1", "password": "x" * 300})
    assert "xxxx" not in str(info.value)
    with pytest.raises(ValidationError) as info:
        ProxyConfig.model_validate({"host": "h", "port": 99999, "password": "hunter2", "username": "u"})
    assert "hunter2" not in str(info.value)


def test_mask_secret() -> None:
    assert mask_secret("0123456789abcdef0123456789abcdef") == "********cdef"
    assert mask_secret("short") == "********"
    assert mask_secret(None) is None


def test_account_state_vocabulary() -> None:
    assert [s.value for s in AccountState] == [
        "new", "code_sent", "password_needed", "active", "flood_wait", "peer_flood", "frozen",
        "unauthorized", "banned", "proxy_error", "disconnected",
    ]  # fmt: skip
    assert AccountState.ACTIVE.usable and not AccountState.FLOOD_WAIT.usable
    assert AccountState.UNAUTHORIZED.needs_login


@pytest.mark.parametrize(
    ("model", "base", "fields"),
    [
        (
            A.UpdateAccountRequest,
            {"accountId": "a1"},
            ["role", "dailySendLimit", "warmupEnabled", "aiEnabled"],
        ),
        (A.BatchAccountUpdates, {"notes": "n"}, ["dailySendLimit", "warmupEnabled", "aiEnabled"]),
    ],
)
def test_account_updates_refuse_null_where_an_account_has_no_null(model, base, fields) -> None:
    # Stored as given, `{"updates": {"warmupEnabled": null}}` made every later read of the account fail
    # (AccountView's switches are booleans): found by the tg-session validate-before-write walk.
    for name in fields:
        with pytest.raises(ValidationError) as exc:
            model.model_validate({**base, name: None})
        assert [d["loc"] for d in validation_details(exc.value)] == [[name]]
    assert "warmup_enabled" not in model.model_validate(base).model_fields_set  # left out: unchanged
