"""`tgm` against the real process stack: one test per subcommand, each checking what the command did
(the stored file, the reply, the account created, the file written, the event printed) and, for a
failing command, its exit code and its error on stderr.

One stack for the module (about 20-30 s to start on a busy 2-core machine); the tests themselves
take a few seconds together.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import select
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from tgm_cli.app import _complete_command
from tgm_cli.exits import Exit
from tgm_testing.gateway import GatewayClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]


def data(result: Any) -> Any:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


# ----------------------------------------------------------------------------- login / logout


def test_login_stores_url_and_key_with_mode_0600_and_logout_forgets_them(tgm: Any, cli_stack: Any) -> None:
    config = Path(tgm.env["TGM_CONFIG_DIR"])
    url, key = cli_stack.gateway_url, cli_stack.admin_key

    bad = tgm.run("login", "--url", url, "--key", "not-a-key", TGM_URL=None, TGM_KEY=None)
    assert bad.exit_code == Exit.AUTH
    assert "UNAUTHORIZED" in bad.stderr
    assert not (config / "config.json").exists(), "a refused key is not stored"

    # The key is typed at the prompt (hidden), not given on the command line.
    ok = tgm.run("login", "--url", url, input=key + "\n", TGM_URL=None, TGM_KEY=None)
    assert ok.exit_code == 0, ok.stderr
    stored = config / "config.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.stat().st_mode) == 0o700
    assert json.loads(stored.read_text()) == {"url": url, "key": key}
    assert key not in ok.stdout + ok.stderr, "the key is never echoed"

    # Without TGM_URL / TGM_KEY the stored ones are used.
    settings = data(tgm.run("call", "get-settings", TGM_URL=None, TGM_KEY=None))
    assert isinstance(settings, dict) and settings

    # The environment wins over the file.
    wrong = tgm.run("call", "get-settings", TGM_URL=None, TGM_KEY="wrong-key")
    assert wrong.exit_code == Exit.AUTH and "UNAUTHORIZED" in wrong.stderr

    out = tgm.run("logout")
    assert out.exit_code == 0 and not stored.exists()
    gone = tgm.run("call", "get-settings", TGM_URL=None, TGM_KEY=None)
    assert gone.exit_code == Exit.AUTH and "tgm login" in gone.stderr


# ----------------------------------------------------------------------------- call


def test_call_sends_key_values_and_json_and_prints_the_reply(
    tgm: Any, gw: GatewayClient, tmp_path: Path
) -> None:
    phone = "+15550107001"
    created = data(tgm.run("call", "add-account", f"phone={phone}", "label=cli one"))
    assert created["phone"] == phone and created["label"] == "cli one"

    # --json from a file, a key=value over it (dotted keys nest; JSON values parse).
    body = tmp_path / "payload.json"
    body.write_text(json.dumps({"text": "0107001", "limit": 5}))
    page = data(tgm.run("call", "get-accounts", "--json", str(body), "limit=2"))
    assert [a["phone"] for a in page["items"]] == [phone]

    # --json - reads stdin; YAML on request.
    listed = tgm.run("call", "get-accounts", "--json", "-", "-o", "yaml", input='{"text": "0107001"}')
    assert listed.exit_code == 0 and f"phone: '{phone}'" in listed.stdout

    # The gateway holds what the CLI sent.
    assert gw.ok("get-accounts", {"text": "0107001"})["items"][0]["label"] == "cli one"

    again = tgm.run("call", "add-account", f"phone={phone}")
    assert again.exit_code == Exit.CONFLICT, again.stderr
    assert "CONFLICT" in again.stderr


def test_call_refuses_a_bad_payload_before_sending_and_names_the_field(tgm: Any, gw: GatewayClient) -> None:
    before = gw.ok("get-accounts", {})["total"]
    bad = tgm.run("call", "add-account", "phone=+15550107002", "lable=typo")
    assert bad.exit_code == Exit.VALIDATION
    assert "lable is not a field" in bad.stderr and "payload refused before sending" in bad.stderr
    assert gw.ok("get-accounts", {})["total"] == before, "nothing was sent"

    typed = tgm.run("call", "get-accounts", "limit=many")
    assert typed.exit_code == Exit.VALIDATION and "limit must be integer" in typed.stderr

    # A rule the schema cannot say (one of report / reportId) is the gateway's refusal: same exit code,
    # and with --output json the error envelope on stdout.
    both = tgm.run("call", "export-report", "report=dashboard", "reportId=r1", "-o", "json")
    assert both.exit_code == Exit.VALIDATION, both.stderr
    assert json.loads(both.stdout)["error"]["code"] == "VALIDATION_ERROR"
    assert "give report" in both.stderr


def test_call_of_a_destructive_command_needs_confirm_and_shows_the_gateways_refusal(
    tgm: Any, gw: GatewayClient
) -> None:
    bare = tgm.run("call", "clear-logs", "before=2000-01-01T00:00:00Z")
    assert bare.exit_code == Exit.VALIDATION, bare.stderr
    assert "clear-logs deletes every matching log entry: send confirm: true to go ahead" in bare.stderr
    done = tgm.run("call", "clear-logs", "before=2000-01-01T00:00:00Z", "confirm=true", "-o", "json")
    assert done.exit_code == Exit.OK, done.stderr


def test_call_exit_codes_for_unknown_missing_forbidden_and_unreachable(tgm: Any, gw: GatewayClient) -> None:
    unknown = tgm.run("call", "get-acounts")
    assert unknown.exit_code == Exit.NOT_FOUND and "did you mean get-accounts" in unknown.stderr

    missing = tgm.run("call", "get-lead-details", "leadId=cli-missing-0")
    assert missing.exit_code == Exit.NOT_FOUND, missing.stderr
    assert "NOT_FOUND" in missing.stderr

    viewer = gw.create_key("cli-viewer", "viewer")["key"]
    refused = tgm.run("call", "add-account", "phone=+15550107003", TGM_KEY=viewer)
    assert refused.exit_code == Exit.AUTH
    assert "FORBIDDEN" in refused.stderr and "operator" in refused.stderr
    assert gw.ok("get-accounts", {"text": "0107003"})["items"] == []
    assert data(tgm.run("call", "get-accounts", TGM_KEY=viewer))["items"] is not None  # reads are allowed

    down = tgm.run("call", "get-settings", "--no-validate", TGM_URL="http://127.0.0.1:9")
    assert down.exit_code == Exit.UNAVAILABLE and "cannot reach the gateway" in down.stderr


# ----------------------------------------------------------------------------- commands


def test_commands_lists_with_least_role_and_describes_fields(tgm: Any) -> None:
    rows = data(tgm.run("commands", "account"))
    by_name = {r["command"]: r for r in rows}
    assert by_name["get-accounts"]["role"] == "viewer" and by_name["add-account"]["role"] == "operator"
    assert all(r["domain"] == "account" or "account" in r["command"] for r in rows)

    every = data(tgm.run("commands", "--refresh"))
    assert len(every) >= 190

    table = tgm.run("commands", "describe", "get-accounts", "-o", "table")
    assert table.exit_code == 0
    for word in ("least role viewer", "limit", "state", "nextCursor", "≥ 1, ≤ 500"):
        assert word in table.stdout, word
    schema = data(tgm.run("commands", "describe", "add-account"))
    assert "phone" in schema["request"]["properties"]

    nope = tgm.run("commands", "describe", "no-such-command")
    assert nope.exit_code == Exit.NOT_FOUND and "unknown command" in nope.stderr


def test_shell_completion_offers_the_catalogue_names(tgm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in tgm.env.items():
        monkeypatch.setenv(name, value)
    assert "get-accounts" in _complete_command("get-acc")
    assert all(name.startswith("get-acc") for name in _complete_command("get-acc"))
    monkeypatch.setenv("TGM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TGM_CACHE_DIR", str(Path(tgm.env["TGM_CONFIG_DIR"]) / "no-cache"))
    assert _complete_command("get-acc") == [], "no gateway: no completions, no error"


# ----------------------------------------------------------------------------- events


def _line(stream: Any, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, f"nothing within {timeout}s"
    return str(stream.readline())


def test_events_follow_prints_pushed_events_as_json_lines_and_ctrl_c_exits_0(
    tgm: Any, gw: GatewayClient
) -> None:
    proc = tgm.spawn("events", "--follow", "--json", "settings-changed")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert "subscribed to tgm.*.evt.settings-changed.*" in _line(proc.stderr, 60)
        gw.ok("save-settings", {"settings": {"pacing": {"jitterMinSeconds": 0.0, "jitterMaxSeconds": 0.0}}})
        event = json.loads(_line(proc.stdout, 30))
        assert event["event"] == "settings-changed" and event["subject"].startswith("tgm.gateway.evt.")
        assert event["data"]["section"] == "pacing"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_events_needs_follow_count_or_timeout(tgm: Any) -> None:
    r = tgm.run("events")
    assert r.exit_code == Exit.USAGE and "--follow" in r.stderr
    quiet = tgm.run("events", "no-such-event", "--timeout", "1")
    assert quiet.exit_code == 0 and quiet.stdout == ""


# ----------------------------------------------------------------------------- shortcuts


def test_accounts_and_queue_shortcuts(tgm: Any, gw: GatewayClient) -> None:
    phone = "+15550107004"
    gw.ok("add-account", {"phone": phone, "label": "cli four"})
    page = data(tgm.run("accounts", "--search", "0107004"))
    assert [a["phone"] for a in page["items"]] == [phone]
    table = tgm.run("accounts", "--all", "-o", "table", COLUMNS="200")
    assert table.exit_code == 0 and phone in table.stdout and "cli four" in table.stdout

    status = data(tgm.run("queue"))
    assert status["paused"] is False and "pending" in status["totals"]
    assert "queue running" in tgm.run("queue", "-o", "table").stdout


def test_export_writes_the_downloaded_file(tgm: Any, tmp_path: Path) -> None:
    meta = data(tgm.run("export", "report", "dashboard", "--format", "csv", "--out", str(tmp_path)))
    written = Path(meta["path"])
    assert written.parent == tmp_path and written.name == meta["filename"]
    content = written.read_bytes()
    assert hashlib.sha256(content).hexdigest() == meta["sha256"] and len(content) == meta["sizeBytes"]
    assert len(list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))) >= 2

    logs = data(
        tgm.run("export", "logs", "--format", "json", "maxRows=5", "--out", str(tmp_path / "logs.json"))
    )
    assert json.loads((tmp_path / "logs.json").read_text()) is not None and logs["rows"] <= 5

    stdout = tgm.run("export", "report", "dashboard", "--format", "json", "--out", "-")
    assert stdout.exit_code == 0 and json.loads(stdout.stdout) is not None
    assert "wrote -" in stdout.stderr

    bad = tgm.run("export", "report", "no-such-report")
    assert bad.exit_code == Exit.VALIDATION and "report must be one of" in bad.stderr


def test_backup_shows_progress_and_ends_completed(tgm: Any, gw: GatewayClient) -> None:
    started = time.time()
    r = tgm.run("backup", "--label", "cli-backup")
    status = data(r)
    assert status["state"] == "completed" and status["label"] == "cli-backup" and status["progress"] == 1.0
    assert "100%" in r.stderr
    listed = gw.ok("get-backup-status", {"backupId": status["backupId"]})["items"][0]
    assert listed["state"] == "completed" and set(listed["services"]) >= {"gateway", "campaign"}
    assert time.time() - started < 120
