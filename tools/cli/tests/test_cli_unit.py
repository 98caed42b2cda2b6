"""The pieces of `tgm` that need no gateway: payloads from key=value pairs, the schema check's
messages, exit codes per error code, event patterns, and that the CLI talks to the public API only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from tgm_cli import app as cli
from tgm_cli.catalogue import fields, type_of
from tgm_cli.client import PUBLIC_ROUTES
from tgm_cli.exits import Exit, for_code
from tgm_cli.payload import PayloadError, merge_pairs, validate

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

SRC = Path(cli.__file__).parent

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["phone"],
    "properties": {
        "phone": {"type": "string", "minLength": 3},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "state": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/State"}}, {"type": "null"}]},
        "at": {"type": "string", "format": "date-time"},
    },
    "$defs": {"State": {"enum": ["new", "active"], "type": "string"}},
}


def test_pairs_parse_json_values_nest_dotted_keys_and_apply_over_the_json_document() -> None:
    got = merge_pairs(
        {"keep": 1, "filter": {"a": 1}},
        ["limit=5", "wait=false", "phone=+15550100001", 'ids=["a","b"]', "filter.b.c=x", "text=hi there"],
    )
    assert got == {
        "keep": 1,
        "filter": {"a": 1, "b": {"c": "x"}},
        "limit": 5,
        "wait": False,
        "phone": "+15550100001",
        "ids": ["a", "b"],
        "text": "hi there",
    }
    assert merge_pairs(None, ['label="2024"']) == {"label": "2024"}
    for bad in (["novalue"], ["=x"], ["a..b=1"]):
        with pytest.raises(PayloadError):
            merge_pairs(None, bad)
    with pytest.raises(PayloadError, match="already set"):
        merge_pairs(None, ["a=1", "a.b=2"])
    with pytest.raises(PayloadError, match="JSON object"):
        merge_pairs([1, 2], [])


def test_validation_names_the_field_and_never_fills_defaults() -> None:
    payload = {"phone": "+1555"}
    validate("add-account", SCHEMA, payload)
    assert payload == {"phone": "+1555"}, "defaults are the gateway's business"
    validate("add-account", SCHEMA, {"phone": "+1555", "at": "yesterday-ish"})  # formats are not asserted
    cases = {
        "limit must be integer": {"phone": "+1555", "limit": "x"},
        "limit must be smaller than or equal to 500": {"phone": "+1555", "limit": 501},
        "state[0] must be one of ['new', 'active']": {"phone": "+1555", "state": ["gone"]},
        "lable is not a field of this command": {"phone": "+1555", "lable": "x"},
        "payload must contain ['phone'] properties": {},
    }
    for message, payload in cases.items():
        with pytest.raises(PayloadError) as caught:
            validate("add-account", SCHEMA, payload)
        assert message in str(caught.value), (message, str(caught.value))


def test_describe_reads_types_and_limits() -> None:
    rows = {r["field"]: r for r in fields(SCHEMA)}
    assert rows["phone"]["required"] and rows["phone"]["limits"] == "length ≥ 3"
    assert rows["limit"]["type"] == "integer" and rows["limit"]["default"] == 50
    assert rows["state"]["type"] == "list[State] | null"
    assert type_of({"type": "object", "additionalProperties": {"type": "integer"}}) == "dict[str, integer]"


def test_each_error_class_has_its_exit_code() -> None:
    expected = {
        "VALIDATION_ERROR": Exit.VALIDATION,
        "LOGIN_REJECTED": Exit.VALIDATION,
        "UNAUTHORIZED": Exit.AUTH,
        "FORBIDDEN": Exit.AUTH,
        "NOT_FOUND": Exit.NOT_FOUND,
        "CONFLICT": Exit.CONFLICT,
        "RATE_LIMITED": Exit.RATE_LIMITED,
        "FLOOD_WAIT": Exit.RATE_LIMITED,
        "UNAVAILABLE": Exit.UNAVAILABLE,
        "TIMEOUT": Exit.UNAVAILABLE,
        "TELEGRAM_ERROR": Exit.OTHER,
        "INTERNAL": Exit.OTHER,
    }
    codes = cli_codes()
    assert set(expected) <= set(codes)
    # Any other code (UPSTREAM_AUTH: an AI provider refused TG-Matrix's key, not the caller's) is "other".
    assert {c: for_code(c) for c in codes} == {c: expected.get(c, Exit.OTHER) for c in codes}
    assert len(set(Exit)) == 9


def cli_codes() -> list[str]:
    """Every error code the gateway can answer (the test may read the contracts; the CLI does not)."""
    from tgm_contracts import ErrorCode

    return [code.value for code in ErrorCode]


def test_event_patterns() -> None:
    assert cli._subscription([])[0] == ["tgm.*.evt.>"]
    assert cli._subscription(["tgm.gateway.evt.>"])[0] == ["tgm.gateway.evt.>"]
    assert cli._subscription(["backup-progress"])[0] == ["tgm.*.evt.backup-progress.*"]
    subjects, keep = cli._subscription(["send-*", "tgm.gateway.evt.>"])
    assert subjects == ["tgm.*.evt.>"], "one subscription: overlapping ones would push an event twice"
    assert keep({"event": "send-completed", "subject": "tgm.tg-session.evt.send-completed.v1"})
    assert keep({"event": "settings-changed", "subject": "tgm.gateway.evt.settings-changed.v1"})
    assert not keep({"event": "lead-created", "subject": "tgm.campaign.evt.lead-created.v1"})
    assert cli._nats_match("tgm.*.evt.x.*", "tgm.ai.evt.x.v1")
    assert not cli._nats_match("tgm.*.evt.x.*", "tgm.ai.evt.x")
    assert not cli._nats_match("tgm.ai.evt.>", "tgm.ai.evt")


def test_the_cli_uses_the_public_api_only() -> None:
    """No service, runtime or bus import anywhere in tgm_cli; httpx and websockets only in the
    client module; every URL path in the source is one of the public routes it declares."""
    banned = {"nats", "faststream", "pymongo", "telethon", "tgm_runtime", "tgm_gateway", "tgm_session"}
    banned |= {"tgm_campaign", "tgm_ai", "tgm_analytics", "tgm_contracts"}
    routes: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module.split(".")[0]]
            assert not set(names) & banned, (path.name, names)
            if {"httpx", "websockets"} & set(names):
                assert path.name == "client.py", (path.name, names)
        # Every route named in the source, spelt out or as {API}/...: its first segment.
        routes.update(re.findall(r"/api/v1/([\w-]+)", text))
        routes.update(re.findall(r"\{API\}/([\w-]+)", text))
    assert routes == {"commands", "exports", "ws"}, routes
    assert {r.split("/")[3] for r in PUBLIC_ROUTES} == {"commands", "exports", "ws"}


class FakeDownloads:
    def __init__(self, content: bytes) -> None:
        self.content, self.asked = content, []

    def download(self, name: str, sink: object) -> int:
        self.asked.append(name)
        sink.write(self.content[:3])  # type: ignore[attr-defined]
        sink.write(self.content[3:])  # type: ignore[attr-defined]
        return len(self.content)


def test_an_export_kept_in_the_object_store_is_downloaded_and_checked(tmp_path: Path) -> None:
    import hashlib

    content = b"id,name\n1,alice\n"
    reply = {"filename": "../users.csv", "objectName": "operator/x/users.csv", "sha256": ""}
    reply["sha256"] = hashlib.sha256(content).hexdigest()
    gw = FakeDownloads(content)
    where, size = cli._write_export(gw, reply, str(tmp_path))  # type: ignore[arg-type]
    assert where == str(tmp_path / "users.csv") and size == len(content)  # only the name's last part
    assert (tmp_path / "users.csv").read_bytes() == content and gw.asked == ["operator/x/users.csv"]
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(cli.ApiError, match="sha256"):
        cli._write_export(FakeDownloads(b"tampered"), reply, str(tmp_path / "other.csv"))  # type: ignore[arg-type]
    assert not (tmp_path / "other.csv").exists() and not list(tmp_path.glob("*.part"))
