"""A command's payload from the command line, and its check against the registry's JSON Schema.

`key=value` pairs: the value is JSON when it parses as JSON (`limit=5`, `ids='["a","b"]'`,
`wait=false`), else the text itself (`phone=+15550100001`, `text=hello`); quote a number to keep it
text (`label='"2024"'`). Dotted keys nest (`filters.state=active` -> `{"filters": {"state": "active"}}`).
Pairs are applied over a `--json` document, so a file can hold the bulk and the line the changes.

The schema is the one `GET /api/v1/commands` publishes for the command's request (pydantic's
validation schema, camelCase field names). It is checked with fastjsonschema; the `format` keyword
is not asserted (the gateway's own parsing of dates and the like is more lenient than a regex, and
the gateway validates again anyway): a check here only spares a round trip and names the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import fastjsonschema  # small, pure Python, no dependencies; compiled per check (a few ms)


class PayloadError(ValueError):
    """A payload that cannot be built or does not match the command's request schema."""

    def __init__(self, message: str, field: str | None = None, command: str | None = None) -> None:
        super().__init__(message)
        self.field, self.command = field, command


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def merge_pairs(base: Any, pairs: Iterable[str]) -> dict[str, Any]:
    """`base` (a JSON object, or None) with every `key=value` of `pairs` set into it."""
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise PayloadError(f"the payload must be a JSON object, not {type(base).__name__}")
    payload: dict[str, Any] = base
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise PayloadError(f"{pair!r} is not key=value")
        parts = key.split(".")
        if not all(parts):
            raise PayloadError(f"{key!r} has an empty part", key)
        node = payload
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError(
                    f"{'.'.join(parts[: i + 1])} is already set to a value, not an object", key
                )
            node = child
        node[parts[-1]] = parse_value(raw)
    return payload


def _formats(schema: Any, found: set[str]) -> set[str]:
    if isinstance(schema, dict):
        if isinstance(schema.get("format"), str):
            found.add(schema["format"])
        for value in schema.values():
            _formats(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _formats(value, found)
    return found


def _accept(_value: Any) -> bool:
    return True


def _field(path: list[Any]) -> str:
    """`['data', 'filters', 0, 'state']` -> `filters[0].state` (empty for the payload itself)."""
    out = ""
    for part in path[1:]:
        index = isinstance(part, int) or (isinstance(part, str) and part.isdigit())
        out += f"[{part}]" if index else (f".{part}" if out else str(part))
    return out


def _compile(schema: dict[str, Any]) -> Any:
    # use_default=False: the check must not fill the schema's defaults into the payload sent.
    formats = dict.fromkeys(_formats(schema, set()), _accept)
    return fastjsonschema.compile(schema, formats=formats, use_default=False)


def _first_error(schema: dict[str, Any], value: Any) -> tuple[list[Any], str] | None:
    """Where `value` first fails `schema` and why (None when it passes). For an `anyOf`/`oneOf`
    (an optional field is `anyOf [X, null]`), the reason is the one the closest alternative gives,
    not fastjsonschema's "cannot be validated by any definition"."""
    try:
        _compile(schema)(value)
    except fastjsonschema.JsonSchemaValueException as exc:
        path = list(exc.path or ["data"])
        message = exc.message
        prefix = exc.name if isinstance(exc.name, str) else "data"
        if message.startswith(prefix):
            message = message[len(prefix) :].lstrip()
        if exc.rule == "additionalProperties" and isinstance(exc.value, dict):
            # "must not contain {'x'} properties": name the first unknown field itself.
            known = set(exc.definition.get("properties", {})) if isinstance(exc.definition, dict) else set()
            unknown = sorted(str(k) for k in exc.value if k not in known)
            if unknown:
                return [*path, unknown[0]], "is not a field of this command" + (
                    f" (nor {', '.join(unknown[1:])})" if len(unknown) > 1 else ""
                )
        if exc.rule in ("anyOf", "oneOf") and isinstance(exc.rule_definition, list):
            defs: dict[str, Any] = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
            for alt in exc.rule_definition:
                if not isinstance(alt, dict) or alt.get("type") == "null":
                    continue
                inner = _first_error({**alt, **defs}, exc.value)
                if inner is not None:
                    return path + inner[0][1:], inner[1]
        return path, message
    return None


def validate(command: str, schema: dict[str, Any], payload: Any) -> None:
    """Raise `PayloadError` naming the first field that does not match `schema`."""
    error = _first_error(schema, payload)
    if error is not None:
        field = _field(error[0])
        raise PayloadError(f"{command}: {field or 'payload'} {error[1]}", field or None, command)
