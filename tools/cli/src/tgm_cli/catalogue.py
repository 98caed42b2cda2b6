"""The registry as the gateway publishes it: look a command up (with a suggestion for a typo), and
read a request schema as a table of fields (name, type, required, default, what it says).

`GET /api/v1/commands` is large (every request and reply schema: about 0.8 MB) and takes the gateway
a while to build, so `load` keeps a copy per gateway URL in the cache dir for `MAX_AGE` seconds. A
stale copy can never refuse a payload the gateway would take: `tgm call` refuses only on the
verdict of a fresh catalogue (fetched less than `FRESH_FOR` seconds ago; an older copy that says no,
or does not know the command, is fetched again first); a stale copy that accepts is harmless, since
the gateway validates again.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import json
import os
import time
from typing import Any

from . import config
from .client import ApiError, Gateway

#: Seconds a cached catalogue is used without asking the gateway again.
MAX_AGE = 600.0
#: A copy younger than this counts as fresh: it may refuse a payload without another fetch.
FRESH_FOR = 60.0


class Catalogue:
    def __init__(self, commands: list[dict[str, Any]], *, fresh: bool = True) -> None:
        self.commands = {c["command"]: c for c in commands}
        #: Fetched from the gateway just now (not read from the cache).
        self.fresh = fresh

    def get(self, name: str) -> dict[str, Any]:
        """The command `name`; NOT_FOUND (with the closest names) when the gateway has none."""
        if name in self.commands:
            return self.commands[name]
        close = difflib.get_close_matches(name, self.commands, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `tgm commands` lists them"
        raise ApiError("NOT_FOUND", f"unknown command {name!r}{hint}")

    def matching(self, pattern: str | None) -> list[dict[str, Any]]:
        """Commands whose name (or domain) matches a glob, or contains `pattern` when it has no glob."""
        if not pattern:
            return list(self.commands.values())
        glob = pattern if any(ch in pattern for ch in "*?[") else f"*{pattern}*"
        return [
            c
            for name, c in self.commands.items()
            if fnmatch.fnmatchcase(name, glob) or fnmatch.fnmatchcase(c.get("domain", ""), glob)
        ]


def _cache_file(url: str) -> Any:
    return config.cache_dir() / f"catalogue-{hashlib.sha256(url.encode()).hexdigest()[:16]}.json"


def load(gw: Gateway, *, refresh: bool = False) -> Catalogue:
    """The gateway's catalogue: the cached copy when younger than `MAX_AGE`, else fetched (and cached)."""
    path = _cache_file(gw.url)
    if not refresh:
        try:
            age = time.time() - path.stat().st_mtime
            if age < MAX_AGE:
                return Catalogue(json.loads(path.read_text()), fresh=age < FRESH_FOR)
        except (OSError, ValueError):
            pass
    commands = gw.catalogue()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(commands))
        os.replace(tmp, path)
    except OSError:
        pass  # no cache: every call asks the gateway
    return Catalogue(commands)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_of(schema: dict[str, Any]) -> str:
    """A short type for a property schema: `string`, `integer ≥ 1`, `list[AccountState]`, `A | null`."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return " | ".join(repr(v) for v in schema["enum"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(type_of(alt) for alt in schema[key])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"list[{type_of(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {type_of(schema['additionalProperties'])}]"
    return str(kind)


_LIMITS = (
    ("minimum", "≥"),
    ("exclusiveMinimum", ">"),
    ("maximum", "≤"),
    ("exclusiveMaximum", "<"),
    ("minLength", "length ≥"),
    ("maxLength", "length ≤"),
    ("minItems", "items ≥"),
    ("maxItems", "items ≤"),
    ("pattern", "matches"),
    ("format", "format"),
)


def limits_of(schema: dict[str, Any]) -> str:
    parts = [f"{label} {schema[key]}" for key, label in _LIMITS if key in schema]
    for alt in schema.get("anyOf", []):
        if isinstance(alt, dict) and alt.get("type") != "null":
            parts.append(limits_of(alt))
    return ", ".join(p for p in parts if p)


def fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per property of an object schema (a `$ref` at the top is followed)."""
    if "$ref" in schema:
        schema = {**schema.get("$defs", {}).get(_ref_name(schema["$ref"]), {}), "$defs": schema.get("$defs")}
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        rows.append(
            {
                "field": name,
                "type": type_of(prop),
                "required": name in required,
                "default": prop.get("default"),
                "limits": limits_of(prop),
                "description": prop.get("description", ""),
            }
        )
    return rows


def definitions(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The named sub-schemas a request refers to (objects and enums), by name."""
    return dict(schema.get("$defs", {}))
