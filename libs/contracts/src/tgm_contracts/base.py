"""Model bases: snake_case in Python, camelCase on the wire (the seed client's field names).

Every contract model is storage-safe by construction (`WireModel.__get_pydantic_core_schema__` applies
`storage_safe` to its schema), so no field needs to remember it and a new field cannot forget it:

- every integer, at any depth (fields, lists, dict values, `Any`), is a signed 64-bit integer — what
  MongoDB stores and what a Telegram id is; the JSON Schemas show it as `minimum`/`maximum`;
- no string and no dict key holds a NUL character (BSON cannot store one in a key, and no text needs it);
- booleans are `true`/`false` only (pydantic would take `0`, `1`, `"yes"`, `"off"`), and numbers are
  never `true`/`false` (pydantic would read `true` as 1);
- datetimes and dates are ISO 8601 strings (or datetime objects in Python), never numbers or numeric
  strings: pydantic reads `0` or `"1700000000"` as a Unix time, which no client of this API sends.

URL fields use `HttpUrlStr` (below): a `str` that must parse as an absolute http(s) URL with a host and no
whitespace or control characters.

Destructive commands take `confirm: true` (`Confirmed`, below). The rule: a command needs it when it
erases many records at once (`clear-queue`, `clear-logs`, `clear-alerts`, `clear-knowledge`,
`reset-settings`, `ai-memory-clear`, `bulk-delete-accounts`), replaces the database (`restore-database`),
ends an account's Telegram session (`remove-account`, `logout-account`), or stops the whole system
(`graceful-shutdown`). A bare call, a typo or a replayed empty body must not do that; the refusal names
what the command destroys. Single-record deletes of things an operator made (a template, a rule, a
keyword set, a lead, an API credential) do not: they are one at a time, name the record by id, and are
in the audit log, so a mistake is small, visible and can be made again by hand. The catalogue shows
`"destructive": true` for every command whose request is `Confirmed`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetCoreSchemaHandler, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import CoreSchema, PydanticCustomError
from pydantic_core import core_schema as cs

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Marks a schema node storage_safe wrapped, so a model schema walked twice (a nested model inlined into
# its parent's schema) is not wrapped twice.
_GUARD = "tgm_storage_safe"


def _check_deep(value: Any) -> Any:
    """Walk a free-form value (`Any`, bare `dict`/`list`): the same rules as typed fields."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, bool) or v is None or isinstance(v, float):
            continue
        if isinstance(v, int):
            if not INT64_MIN <= v <= INT64_MAX:
                raise ValueError("integers must fit in 64 bits (signed)")
        elif isinstance(v, str):
            if "\x00" in v:
                raise ValueError("text must not contain NUL characters")
        elif isinstance(v, Mapping):
            for k, item in v.items():
                if isinstance(k, str) and "\x00" in k:
                    raise ValueError("keys must not contain NUL characters")
                stack.append(k)
                stack.append(item)
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("give a number, not true/false")
    return value


_NUMERIC = re.compile(r"\s*[-+]?\d+(\.\d*)?\s*")


def _no_number_time(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMERIC.fullmatch(value)):
        raise ValueError("give an ISO 8601 date/time string, not a number")
    return value


def _wrap(node: CoreSchema, after: Callable[[Any], Any] | None, before: Callable[[Any], Any] | None) -> Any:
    meta = {_GUARD: True}
    if after is not None:
        return cs.no_info_after_validator_function(after, node, metadata=meta)
    assert before is not None
    return cs.no_info_before_validator_function(before, node, metadata=meta)


# Keys of a core schema node whose values are (or hold) schemas; everything else (defaults, literal
# values, metadata, serializers) is data and left alone.
_SCHEMA_KEYS = frozenset(
    {
        "schema",
        "items_schema",
        "keys_schema",
        "values_schema",
        "extras_schema",
        "choices",
        "fields",
        "definitions",
        "lax_schema",
        "strict_schema",
        "json_schema",
        "python_schema",
    }
)


def storage_safe(node: Any) -> Any:
    """A copy of core schema `node` with the storage rules of this module applied at every depth."""
    if isinstance(node, list | tuple):
        return type(node)(storage_safe(n) for n in node)
    if not isinstance(node, dict):
        return node
    if "type" not in node or not isinstance(node.get("type"), str):
        # A mapping of schemas (model fields, tagged-union choices).
        return {k: storage_safe(v) for k, v in node.items()}
    if (node.get("metadata") or {}).get(_GUARD):
        return node
    out = {k: (storage_safe(v) if k in _SCHEMA_KEYS else v) for k, v in node.items()}
    kind = out["type"]
    if kind == "int":
        lows = [out["ge"]] if "ge" in out else []
        lows += [out["gt"] + 1] if "gt" in out else []
        if not lows or max(lows) < INT64_MIN:
            out.pop("gt", None)
            out["ge"] = INT64_MIN
        highs = [out["le"]] if "le" in out else []
        highs += [out["lt"] - 1] if "lt" in out else []
        if not highs or min(highs) > INT64_MAX:
            out.pop("lt", None)
            out["le"] = INT64_MAX
        return _wrap(out, None, _not_bool)
    if kind == "float":
        return _wrap(out, None, _not_bool)
    if kind == "bool":
        return {**out, "strict": True}
    if kind == "str":
        return _wrap(out, _no_nul, None)
    if kind in ("datetime", "date"):
        return _wrap(out, None, _no_number_time)
    if (
        kind == "any"
        or (kind == "dict" and "values_schema" not in out)
        or (kind in ("list", "set", "frozenset", "tuple") and "items_schema" not in out)
    ):
        return _wrap(out, _check_deep, None)
    return out


def refuse_null(cls: Any, value: Any) -> Any:
    """A `mode="before"` field validator for a field of a partial update that may be left out but
    has no null value where it is stored (a switch, a limit): an explicit null is refused rather
    than stored and then failing every read. Use as
    `_not_null = field_validator("a", "b", mode="before")(refuse_null)`."""
    if value is None:
        raise ValueError("null is not a value of this field; leave the field out to keep it unchanged")
    return value


def check_http_url(value: str) -> str:
    """`value` if it is an absolute http(s) URL with a host and no whitespace or control characters."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give an absolute http(s) URL with a host")
    return value


#: An absolute http(s) URL, kept as the string the client gave (adapters pass it on as is).
HttpUrlStr = Annotated[
    str,
    Field(max_length=2000, pattern=r"^https?://", json_schema_extra={"format": "uri"}),
    AfterValidator(check_http_url),
]


class WireModel(BaseModel):
    """Base of every contract model. Accepts snake_case or camelCase, writes camelCase; storage-safe
    (see the module docstring)."""

    # Enums stay enum members in Python (pydantic's default: no use_enum_values).
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return storage_safe(handler(source))

    def wire(self) -> dict:
        """The JSON-ready dict of this model, as it travels on the wire."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


class Request(WireModel):
    """A command's payload. Unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


#: The error `type` of a refused destructive call without `confirm: true` (see `Confirmed`).
CONFIRM_REQUIRED = "confirm_required"


class Confirmed(Request):
    """The request of a destructive command (the rule is in the module docstring): `confirm: true` is
    required, and anything else is refused with a message naming what the command destroys.

    A subclass says what that is in `DESTROYS` (a phrase after the command's name: "deletes every
    waiting job of the scope"); the command binds its name when it is declared (`Command`), so the
    message reads "clear-queue deletes every waiting job of the scope: send confirm: true to go ahead".
    """

    #: What the command destroys, as a verb phrase; every subclass sets it.
    DESTROYS: ClassVar[str] = ""
    #: The command this request belongs to; set by `Command.__init_subclass__`.
    COMMAND: ClassVar[str] = ""

    confirm: Literal[True] = Field(
        description="Must be true: this command destroys data or sessions and never runs on a bare call.",
    )

    @classmethod
    def refusal(cls) -> str:
        """The message of a call without `confirm: true`."""
        return f"{cls.COMMAND or cls.__name__} {cls.DESTROYS}: send confirm: true to go ahead"

    @model_validator(mode="before")
    @classmethod
    def _confirmed(cls, data: Any) -> Any:
        # Before the fields, so a bare call gets this one message, not "field required" and others.
        if isinstance(data, Mapping) and data.get("confirm") is not True:
            raise PydanticCustomError(CONFIRM_REQUIRED, cls.refusal())
        return data


class Response(WireModel):
    """A command's `data`. Readers ignore fields they do not know, so new optional fields are safe."""


class Empty(Request):
    """A payload with no fields."""


class Ack(Response):
    """A plain acknowledgement for commands whose effect is the whole answer."""

    ok: bool = True
    affected: int = Field(0, description="How many records the command changed.")


def utcnow() -> datetime:
    return datetime.now(UTC)


Id = Annotated[str, Field(min_length=1, max_length=128, description="An identifier.")]
NonEmptyStr = Annotated[str, Field(min_length=1)]
#: The key of a call that must act at most once (an internal send): the caller's firing or job id.
IdempotencyKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        description="The idempotency key (the caller's firing or job id): one message per key, ever.",
    ),
]

T = TypeVar("T")


class PageRequest(Request):
    """Cursor pagination: pass back `nextCursor` of the previous page; `limit` caps the page."""

    cursor: str | None = Field(None, description="Opaque cursor from the previous page's nextCursor.")
    limit: int = Field(50, ge=1, le=500)


class IndexPageRequest(Request):
    """Index pagination for screens that jump to a page."""

    page: int = Field(1, ge=1)
    page_size: int = Field(50, ge=1, le=500)


class Page(Response, Generic[T]):
    """A page of items; `nextCursor` is null on the last page."""

    items: list[T] = Field(default_factory=list)
    next_cursor: str | None = None
    total: int | None = Field(None, description="Total matching items, where cheap to count.")


class TimeRange(Request):
    """A closed-open time window; both ends optional."""

    since: datetime | None = None
    until: datetime | None = None
