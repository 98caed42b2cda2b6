"""JSON Schemas of every contract, generated into `libs/contracts/schemas/` and committed.

`tgm-schemas write` regenerates them; it refuses a change that breaks a published major version
(removed field, newly required field, changed type) unless `--allow-breaking` is given.
`tgm-schemas check` exits non-zero when the committed files are stale or a change is breaking;
the test suite runs the same check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from . import ACCOUNT_RPCS, EVENTS, REGISTRY, RPCS

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _schema(model: Any, mode: str) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True, mode=mode)


def generate() -> dict[str, dict[str, Any]]:
    """Relative file path -> schema document."""
    out: dict[str, dict[str, Any]] = {}
    for cmd in REGISTRY.all():
        out[f"commands/{cmd.NAME}.v{cmd.VERSION}.json"] = {
            "command": cmd.NAME,
            "owner": cmd.OWNER.value,
            "domain": cmd.DOMAIN.value,
            "role": cmd.ROLE.label,
            "version": cmd.VERSION,
            "subject": cmd.SUBJECT,
            "request": _schema(cmd.Request, "validation"),
            "response": _schema(cmd.Response, "serialization"),
        }
    for subject, evt in sorted(EVENTS.items()):
        out[f"events/{evt.OWNER.value}.{evt.NAME}.v{evt.VERSION}.json"] = {
            "event": evt.NAME,
            "owner": evt.OWNER.value,
            "version": evt.VERSION,
            "subject": subject,
            "payload": _schema(evt, "serialization"),
        }
    for rpc in RPCS:
        out[f"rpc/{rpc.OWNER.value}.{rpc.NAME}.v{rpc.VERSION}.json"] = {
            "rpc": rpc.NAME,
            "subject": rpc.SUBJECT,
            "request": _schema(rpc.Request, "validation"),
            "response": _schema(rpc.Response, "serialization"),
        }
    for arpc in ACCOUNT_RPCS:
        out[f"rpc/acct.{arpc.NAME}.v{arpc.VERSION}.json"] = {
            "rpc": arpc.NAME,
            "subject": arpc.subject("{accountId}"),
            "request": _schema(arpc.Request, "validation"),
            "response": _schema(arpc.Response, "serialization"),
        }
    from .asyncapi import document  # the NATS side in one document, from the same contracts

    out["asyncapi.json"] = document()
    return out


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return root.get("$defs", {}).get(ref.split("/")[-1], schema)
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return set().union(*(_types(s, root) for s in schema["anyOf"]))
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    if "$ref" in schema:
        return {schema["$ref"]}
    if "enum" in schema or "const" in schema:
        return {"enum"}
    return {"any"}


def breaking_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    where: str = "",
    old_root: dict[str, Any] | None = None,
    new_root: dict[str, Any] | None = None,
    reading: bool = False,
) -> list[str]:
    """What in `new` breaks a caller written against `old`.

    For requests (reading=False): a removed property, a property that became required, or a changed
    type breaks callers. For responses (reading=True): a removed or no-longer-required property breaks
    readers. Both: a type that no longer accepts what it accepted.
    """
    old_root = old_root or old
    new_root = new_root or new
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)
    problems: list[str] = []
    if _types(old, old_root) - _types(new, new_root) - {"any"} and "any" not in _types(new, new_root):
        problems.append(
            f"{where or '<root>'}: type changed {sorted(_types(old, old_root))} -> "
            f"{sorted(_types(new, new_root))}"
        )
        return problems
    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    old_req = set(old.get("required", []))
    new_req = set(new.get("required", []))
    for name, sub in old_props.items():
        path = f"{where}.{name}" if where else name
        if name not in new_props:
            problems.append(f"{path}: removed")
            continue
        problems += breaking_changes(sub, new_props[name], path, old_root, new_root, reading)
    if reading:
        for name in old_req - new_req:
            problems.append(f"{where}.{name}: no longer always present")
    else:
        for name in new_req - old_req:
            problems.append(f"{where}.{name}: newly required")
    if "enum" in old and "enum" in new:
        lost = [v for v in old["enum"] if v not in new["enum"]]
        if lost and not reading:
            problems.append(f"{where}: enum values removed {lost}")
    return problems


def compare(directory: Path) -> tuple[list[str], list[str]]:
    """(stale files, breaking changes) of the committed schemas against the code."""
    generated = generate()
    stale: list[str] = []
    breaking: list[str] = []
    existing = {p.relative_to(directory).as_posix() for p in directory.rglob("*.json")}
    for rel, doc in generated.items():
        path = directory / rel
        if not path.exists():
            stale.append(f"{rel}: missing")
            continue
        committed = json.loads(path.read_text())
        if committed != doc:
            stale.append(f"{rel}: differs")
            for part, reading in (("request", False), ("response", True), ("payload", True)):
                if part in committed and part in doc:
                    breaking += [
                        f"{rel} {part}: {p}"
                        for p in breaking_changes(committed[part], doc[part], reading=reading)
                    ]
    for rel in sorted(existing - set(generated)):
        stale.append(f"{rel}: no longer declared")
        breaking.append(f"{rel}: contract removed within its major version")
    return stale, breaking


def write(directory: Path, allow_breaking: bool = False) -> int:
    _, breaking = compare(directory) if directory.exists() else ([], [])
    if breaking and not allow_breaking:
        print("refusing to write: breaking changes within a major version (declare a new version instead):")
        for b in breaking:
            print("  " + b)
        return 1
    generated = generate()
    for rel in {p.relative_to(directory).as_posix() for p in directory.rglob("*.json")} - set(generated):
        (directory / rel).unlink()
    for rel, doc in generated.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {len(generated)} schema files to {directory}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tgm-schemas", description=__doc__)
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--allow-breaking", action="store_true")
    args = parser.parse_args(argv)
    if args.action == "write":
        return write(args.dir, args.allow_breaking)
    stale, breaking = compare(args.dir)
    for b in breaking:
        print("BREAKING " + b)
    for s in stale:
        print("STALE " + s)
    return 1 if stale or breaking else 0


if __name__ == "__main__":
    sys.exit(main())
