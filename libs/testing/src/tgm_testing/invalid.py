"""Invalid payloads made from a command's request JSON Schema, for "validate fully, then write" tests.

`invalid_payloads(schema, base)` yields `(label, payload)`: the valid `base` payload with one change
each — null for every optional field at the top level and one level down (inside objects, and the
first item of arrays of objects), a value of the wrong type for every field, and out-of-range values
where the schema states a range (minimum/maximum, lengths, item counts), integers beyond 64 bits and
NUL in text. Some are legitimately valid (a nullable field): the test decides from the reply.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

Payload = dict[str, Any]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The schema with `$ref` followed and a nullable `anyOf` reduced to its non-null branch."""
    while True:
        if "$ref" in schema:
            schema = root.get("$defs", {})[schema["$ref"].rsplit("/", 1)[-1]]
            continue
        branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            schema = branches[0]
            continue
        return schema


def _wrong(schema: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = schema.get("type")
    if kind in ("object", "array"):
        return [("a string", "not-a-container"), ("a number", 7)]
    if kind in ("integer", "number"):
        return [("a string", "seven"), ("a boolean", True), ("an object", {"n": 7})]
    if kind == "boolean":
        return [("a string", "yes"), ("a number", 1)]
    return [("an object", {"$wrong": 1}), ("a list", ["x"])]


def _out_of_range(schema: dict[str, Any], base_value: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    kind = schema.get("type")
    if kind == "integer":
        out += [("2**70", 2**70), ("-(2**70)", -(2**70))]
    if kind in ("integer", "number"):
        if "minimum" in schema:
            out.append(("below minimum", schema["minimum"] - 1))
        if "maximum" in schema:
            out.append(("above maximum", schema["maximum"] + 1))
        if "exclusiveMinimum" in schema:
            out.append(("at exclusiveMinimum", schema["exclusiveMinimum"]))
    if kind == "string":
        out.append(("NUL in text", "a\u0000b"))
        if schema.get("maxLength"):
            out.append(("over maxLength", "x" * (schema["maxLength"] + 1)))
        if schema.get("minLength"):
            out.append(("under minLength", ""))
        if schema.get("enum"):
            out.append(("not in enum", "no-such-value"))
    if kind == "array":
        if schema.get("minItems"):
            out.append(("under minItems", []))
        if schema.get("maxItems") and isinstance(base_value, list) and base_value:
            out.append(("over maxItems", [base_value[0]] * (schema["maxItems"] + 1)))
    return out


def _field_cases(
    schema: dict[str, Any], root: dict[str, Any], base: Payload, path: str
) -> Iterator[tuple[str, Payload]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    for name, raw in props.items():
        sub = _resolve(raw, root)
        where = f"{path}{name}"
        if name not in required:
            yield f"{where}: null", {**base, name: None}
        for label, value in _wrong(sub) + _out_of_range(sub, base.get(name)):
            yield f"{where}: {label}", {**base, name: value}


def invalid_payloads(schema: dict[str, Any], base: Payload) -> Iterator[tuple[str, Payload]]:
    root = schema
    top = _resolve(schema, root)
    yield from _field_cases(top, root, base, "")
    # One level down; a nested object the base lacks is given with only the changed field.
    for name, raw in top.get("properties", {}).items():
        sub = _resolve(raw, root)
        inner, container = sub, "object"
        if sub.get("type") == "array":
            inner, container = _resolve(sub.get("items", {}), root), "array"
        if not inner.get("properties"):
            continue
        value = base.get(name)
        nested = value[0] if container == "array" and isinstance(value, list) and value else value
        nested = nested if isinstance(nested, dict) else {}
        for label, changed in _field_cases(inner, root, nested, f"{name}."):
            payload = copy.deepcopy(base)
            payload[name] = (
                [changed, *(value[1:] if isinstance(value, list) else [])]
                if container == "array"
                else changed
            )
            yield label, payload
