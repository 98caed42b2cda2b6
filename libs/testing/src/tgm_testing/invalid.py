"""Invalid payloads made from a command's request JSON Schema, for "validate fully, then write" tests.

`invalid_payloads(schema, base)` yields `(label, payload)`: the valid `base` payload with one change
each — null for every optional field at the top level and one level down (inside objects, and the
first item of arrays of objects), a value of the wrong type for every field, and out-of-range values
where the schema states a range (minimum/maximum, lengths, item counts), integers beyond 64 bits and
NUL in text, and an unknown field where the schema forbids one. Some are legitimately valid (a nullable field): the test decides from the reply.

`walk(...)` sends such payloads to a running service and checks what issue 13 asks of each: an error
envelope in time that is not INTERNAL, and nothing stored changed by a refused payload (`snapshot`
compares every document; `Writes` counts writes through a change stream, several times cheaper).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson

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
    if top.get("additionalProperties") is False:
        yield "an unknown field", {**base, "noSuchField": 1}
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


# --- the walk: invalid payloads against a running service ---------------------------------------

#: Codes an invalid payload must never get: a bug (INTERNAL) or no answer in time.
BAD_CODES = frozenset({"INTERNAL", "TIMEOUT", "UNAVAILABLE"})

Call = Callable[[Any, Payload], Awaitable[dict[str, Any]]]

#: A command whose name has one of these words writes something (`save-ai-settings`, `add-lead`, ...).
WRITE_VERBS = frozenset({"save", "update", "set", "add", "create", "bind", "edit"})


def write_commands(commands: Iterable[Any]) -> list[Any]:
    """The commands of `commands` (classes with a `NAME`) that save, add, create or update."""
    return [
        c
        for c in commands
        if WRITE_VERBS & set(c.NAME.split("-")) and c.NAME.split("-")[0] not in {"delete", "remove", "unbind"}
    ]


def schema_cases(cmd: Any, base: Payload) -> Iterator[tuple[str, Payload]]:
    """`invalid_payloads` of a command class (anything with a `Request` model)."""
    return invalid_payloads(cmd.Request.model_json_schema(by_alias=True), base)


async def snapshot(*dbs: Any, ignore: Iterable[str] = ()) -> dict[str, list[bytes]]:
    """Every document of every collection of `dbs` (async pymongo databases), as BSON bytes in `_id`
    order: equal snapshots mean nothing stored changed. Collections named in `ignore` (written by
    background work on its own clock) are left out."""
    skip = set(ignore)

    async def read(db: Any, name: str) -> tuple[str, list[bytes]]:
        docs = await db[name].find({}).sort("_id", 1).to_list()
        return f"{db.name}.{name}", [bson.encode(d) for d in docs]

    names = await asyncio.gather(*(db.list_collection_names() for db in dbs))
    reads = [
        read(db, n) for db, found in zip(dbs, names, strict=True) for n in sorted(found) if n not in skip
    ]
    return dict(await asyncio.gather(*reads))


class Writes:
    """The writes to some databases, seen through the server's change stream, as a cheap `state` for
    `walk`: `await writes.state()` is the number of changes per collection so far, read once a
    marker write of its own (to a database of its own) has come through the stream, so every write
    made before the call is counted. A refused payload must add none (stricter than a `snapshot`: a
    write put back, or one that stores the same bytes again, counts too). Use `async with`."""

    def __init__(self, client: Any, databases: Iterable[str], *, ignore: Iterable[str] = ()) -> None:
        self.client = client
        self.databases = set(databases)
        self.ignore = set(ignore)
        self.marker = f"walk_marker_{uuid.uuid4().hex[:8]}"
        self.counts: Counter[str] = Counter()
        self._sent = self._seen = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> Writes:
        pipeline = [{"$match": {"ns.db": {"$in": [*self.databases, self.marker]}}}]
        self._stream = await self.client.watch(pipeline)
        self._task = asyncio.create_task(self._pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._stream.close()
        await self.client.drop_database(self.marker)

    async def _pump(self) -> None:
        async for change in self._stream:
            ns = change.get("ns") or {}
            if ns.get("db") == self.marker:
                async with self._cond:
                    self._seen = change["documentKey"]["_id"]
                    self._cond.notify_all()
            elif ns.get("coll") not in self.ignore:
                self.counts[f"{ns.get('db')}.{ns.get('coll')}"] += 1

    async def state(self, timeout: float = 10.0) -> dict[str, int]:
        self._sent += 1
        mark = self._sent
        await self.client[self.marker]["marks"].insert_one({"_id": mark})
        async with self._cond:
            await asyncio.wait_for(self._cond.wait_for(lambda: self._seen >= mark), timeout)
        return dict(self.counts)


@dataclass
class Walked:
    """What a walk saw: how many payloads it sent, the codes they got, the labels answered ok (a
    payload can be legitimately valid, e.g. null for a nullable field) and what went wrong."""

    tried: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def accepted_non_null(self) -> list[str]:
        """Accepted payloads that were not a null: a wrong type or an out-of-range value taken."""
        return [label for label in self.accepted if not label.endswith(": null")]


def _changed(before: Any, after: Any) -> str:
    """Which part of a state changed: the names of a snapshot's collections, else `the stored state`."""
    parts = zip(before, after, strict=True) if isinstance(before, tuple) else [(before, after)]
    names = [
        k
        for b, a in parts
        if isinstance(b, dict) and isinstance(a, dict)
        for k in sorted(set(b) | set(a))
        if b.get(k) != a.get(k)
    ]
    return f"the stored state ({', '.join(names) or 'not a snapshot'})"


def refused_by(model: Any, payload: Payload) -> bool:
    """Whether pydantic `model` refuses `payload`; False when there is no model."""
    if model is None:
        return False
    try:
        model.model_validate(payload)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return True
    return False


def refused_by_contract(cmd: Any, payload: Payload) -> bool:
    """Whether the command's own request model refuses `payload`, so the service must refuse it
    before its handler runs."""
    return refused_by(getattr(cmd, "Request", None), payload)


async def walk(
    groups: Iterable[tuple[Any, Iterable[tuple[str, Payload]]]],
    call: Call,
    state: Callable[[], Awaitable[Any]],
    *,
    reads: Sequence[Any] | Callable[[Any], Sequence[Any]] = (),
    timeout: float = 10.0,
    refused: Callable[[Any, Payload], bool] = refused_by_contract,
    batch: int = 16,
) -> Walked:
    """Send each `(command, cases)` group's payloads with `call(command, payload)` and check that each
    answer is an envelope within `timeout` seconds, an error is never one of `BAD_CODES`, and no
    refused payload changed `state()` (e.g. a `snapshot`). After each group every command of `reads`
    (or of `reads(command)`, e.g. the reads of the command's domain) is called with `{}` and must not
    answer INTERNAL (nothing stored that a read cannot serve).

    A payload the contract does not refuse (`refused(cmd, payload)` False: the service's own code
    decides, which is where a write before validation hides) is sent alone with `state()` read
    around it. Those the contract refuses must all be refused with nothing written: they are sent up
    to `batch` at a time, and `state()` is read once after each run of them; a change is reported
    with the run's labels."""
    out = Walked()

    def record(where: str, reply: Any, by_contract: bool) -> str | None:
        """Count one answer and note what is wrong with it; its error code, or None for ok."""
        if not isinstance(reply, dict) or "ok" not in reply:
            out.failures.append(f"{where}: {reply}" if isinstance(reply, str) else f"{where}: {reply!r:.200}")
            return "no envelope"
        if reply["ok"]:
            out.codes["ok"] += 1
            out.accepted.append(where)
            if by_contract:
                out.failures.append(f"{where}: accepted though its contract refuses it")
            return None
        code = str(reply["error"]["code"])
        out.codes[code] += 1
        if code in BAD_CODES:
            out.failures.append(f"{where}: {code} {reply['error'].get('message')}")
        return code

    async def send(cmd: Any, payload: Payload) -> Any:
        out.tried += 1
        try:
            return await asyncio.wait_for(call(cmd, payload), timeout)
        except TimeoutError:
            return f"no answer within {timeout} s"

    async def send_run(cmd: Any, name: str, run: list[tuple[str, Payload]], before: Any) -> Any:
        """Send a run of payloads the contract refuses; the state after it, checked against `before`."""
        for i in range(0, len(run), batch):
            part = run[i : i + batch]
            replies = await asyncio.gather(*(send(cmd, payload) for _, payload in part))
            for (label, _), reply in zip(part, replies, strict=True):
                record(f"{name} {label}", reply, True)
        now = await state()
        if run and now != before:
            out.failures.append(f"{name}: {_changed(before, now)} changed during {[lbl for lbl, _ in run]}")
        run.clear()
        return now

    for cmd, cases in groups:
        name = getattr(cmd, "NAME", str(cmd))
        before = await state()
        run: list[tuple[str, Payload]] = []
        for label, payload in cases:
            if refused(cmd, payload):
                run.append((label, payload))
                continue
            if run:
                before = await send_run(cmd, name, run, before)
            code = record(f"{name} {label}", await send(cmd, payload), False)
            after = await state()
            if code is not None and after != before:
                out.failures.append(f"{name} {label}: {code} but {_changed(before, after)} changed")
            before = after
        await send_run(cmd, name, run, before)
        after_group = reads(cmd) if callable(reads) else reads
        answers = await asyncio.gather(*(send(read, {}) for read in after_group))
        out.tried -= len(after_group)
        for read, reply in zip(after_group, answers, strict=True):
            if not isinstance(reply, dict) or (not reply["ok"] and reply["error"]["code"] in BAD_CODES):
                out.failures.append(f"after {name}: {getattr(read, 'NAME', read)} answers {reply}")
    return out
