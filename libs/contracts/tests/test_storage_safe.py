"""Contracts are storage-safe by construction (issue 13, finding 5): 64-bit integers, no NUL in text or
keys, true/false booleans, ISO datetimes, validated URLs — at every depth, visible in the JSON Schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from pydantic import Field, ValidationError
from tgm_contracts import ACCOUNT_RPCS, REGISTRY, RPCS
from tgm_contracts.base import INT64_MAX, INT64_MIN, Confirmed, HttpUrlStr, Request, Response
from tgm_contracts.models.analytics import ReportRecipientInput
from tgm_contracts.schemas import generate

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _nodes(value)


def _types(prop: dict[str, Any]) -> set[str]:
    out = {prop.get("type")} if isinstance(prop.get("type"), str) else set()
    for alt in prop.get("anyOf", []):
        out |= _types(alt)
    return out


def _formats(prop: dict[str, Any]) -> set[str]:
    out = {prop["format"]} if "format" in prop else set()
    for alt in prop.get("anyOf", []):
        out |= _formats(alt)
    return out


def test_every_integer_of_every_schema_fits_in_64_bits() -> None:
    unbounded = []
    for path, doc in generate().items():
        for node in _nodes(doc):
            if node.get("type") == "integer" or "integer" in (node.get("type") or []):
                low = node.get("minimum", node.get("exclusiveMinimum", INT64_MIN - 1))
                high = node.get("maximum", node.get("exclusiveMaximum", INT64_MAX + 1))
                if low < INT64_MIN or high > INT64_MAX:
                    unbounded.append(path)
    assert not unbounded, f"integers without 64-bit bounds in {sorted(set(unbounded))[:10]}"


def _request_models() -> Iterator[tuple[str, type[Request]]]:
    for cmd in REGISTRY.all():
        yield cmd.NAME, cmd.Request
    for rpc in [*RPCS, *ACCOUNT_RPCS]:
        yield rpc.NAME, rpc.Request


def _fails_at(model: type[Request], field: str, value: Any) -> bool:
    confirmed = issubclass(model, Confirmed)
    try:
        # a destructive request is confirmed, so its other fields are reached (`confirm` has its own test)
        model.model_validate({"confirm": True, field: value} if confirmed else {field: value})
    except ValidationError as exc:
        whole = confirmed and field == "confirm"
        return any(err["loc"][:1] == (field,) or (whole and err["loc"] == ()) for err in exc.errors())
    return False


def test_every_request_field_refuses_what_storage_cannot_hold() -> None:
    """Each top-level request field of every command and RPC, by its JSON type: an integer refuses
    2**70 and `true`, a boolean refuses 0, 1 and "yes", a date-time refuses 0 and "0", a string
    refuses a NUL character."""
    accepted: list[str] = []
    for name, model in _request_models():
        props = model.model_json_schema(by_alias=True)["properties"] if model.model_fields else {}
        for field, prop in props.items():
            types, formats = _types(prop), _formats(prop)
            bad: list[Any] = []
            if "integer" in types:
                bad += [2**70, -(2**70)]
            if "boolean" in types and not types & {"integer", "number", "string"}:
                bad += [0, 1, "yes"]
            if "date-time" in formats:
                bad += [0, "0", 1700000000]
            if types == {"string"} or types == {"string", "null"}:
                bad += ["a\x00b"]
            accepted += [f"{name}.{field}={v!r}" for v in bad if not _fails_at(model, field, v)]
    assert not accepted, f"accepted: {accepted[:20]}"


def test_url_fields_are_validated_urls() -> None:
    """Every request field named like a URL is an HttpUrlStr (a `format: uri` in its schema), and the
    finding's `http://\\x13x` is refused by rag-add-document."""
    loose = []
    for name, model in _request_models():
        for node in _nodes(model.model_json_schema(by_alias=True)):
            for field, prop in (node.get("properties") or {}).items():
                named_url = field.lower().endswith("url") and field != "dataUrl"
                if named_url and isinstance(prop, dict) and "uri" not in _formats(prop):
                    loose.append(f"{name}.{field}")
    assert not loose, f"URL fields that are plain strings: {loose}"
    rag = REGISTRY.get("rag-add-document")
    assert rag is not None
    for url in ("http://\u0013x", "http://exa mple.com", "javascript:alert(1)", "http://", "http://h:99999"):
        with pytest.raises(ValidationError):
            rag.Request.model_validate({"url": url})
    ok = rag.Request.model_validate({"url": "https://docs.example.com/a/b?c=d#e"})
    assert ok.url == "https://docs.example.com/a/b?c=d#e"
    with pytest.raises(ValidationError):
        ReportRecipientInput.model_validate({"kind": "webhook", "target": "http://\u0013x"})


def test_memory_save_refuses_nul_keys_and_huge_numbers_in_maps() -> None:
    cmd = REGISTRY.get("ai-memory-save")
    assert cmd is not None
    base = {"accountId": "a1", "userId": "u1"}
    for bad in (
        {"preferences": {"lang\x00": "en"}},
        {"preferences": {"lang": "e\x00n"}},
        {"fields": {"k\x00": 1}},
        {"facts": [{"text": "x\x00"}]},
    ):
        with pytest.raises(ValidationError):
            cmd.Request.model_validate({**base, **bad})
    got = cmd.Request.model_validate({**base, "fields": {"big": 2**70, "n": 5, "flag": True}})
    # 2**70 is no 64-bit integer: the union's float takes it, which storage holds.
    assert got.fields == {"big": float(2**70), "n": 5, "flag": True}


class _Nested(Request):
    n: int


class _Shape(Request):
    items: list[_Nested] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    free: dict[str, Any] = Field(default_factory=dict)
    anything: Any = None
    when: datetime | None = None
    on: bool = False
    site: HttpUrlStr | None = None


class _View(Response):
    total: int = 0
    free: dict[str, Any] = Field(default_factory=dict)


@pytest.mark.parametrize(
    "payload",
    [
        {"items": [{"n": 2**64}]},
        {"counts": {"a": -(2**63) - 1}},
        {"counts": {"a\x00": 1}},
        {"free": {"deep": [{"x": 2**70}]}},
        {"free": {"deep": {"k\x00": 1}}},
        {"free": {"deep": ["a\x00"]}},
        {"anything": [[2**64]]},
        {"when": 0},
        {"when": 0.0},
        {"when": "1700000000"},
        {"on": 1},
        {"on": "true"},
        {"on": "yes"},
        {"site": "http://\u0013x"},
        {"site": "ftp://host/file"},
    ],
)
def test_the_rules_hold_at_every_depth(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        _Shape.model_validate(payload)


def test_legitimate_values_pass_and_keep_their_form() -> None:
    got = _Shape.model_validate(
        {
            "items": [{"n": INT64_MAX}, {"n": INT64_MIN}],
            "counts": {"a": -1001234567890},
            "free": {"nested": {"list": [1, 2.5, "x", None, True]}},
            "anything": {"k": [2**63 - 1]},
            "when": "2024-05-01T12:00:00Z",
            "on": True,
            "site": "http://127.0.0.1:8080/hook",
        }
    )
    assert got.items[0].n == INT64_MAX and got.when == datetime.fromisoformat("2024-05-01T12:00:00+00:00")
    assert got.site == "http://127.0.0.1:8080/hook" and got.on is True
    assert _Shape.model_validate({"when": datetime(2024, 5, 1)}).when == datetime(2024, 5, 1)
    # Responses and events follow the same rules (they are stored by their readers too).
    with pytest.raises(ValidationError):
        _View.model_validate({"total": 2**64})
    with pytest.raises(ValidationError):
        _View.model_validate({"free": {"k\x00": 1}})
