"""Model bases: snake_case in Python, camelCase on the wire (the seed client's field names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Base of every contract model. Accepts snake_case or camelCase, writes camelCase."""

    # Enums stay enum members in Python (pydantic's default: no use_enum_values).
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def wire(self) -> dict:
        """The JSON-ready dict of this model, as it travels on the wire."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)


class Request(WireModel):
    """A command's payload. Unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


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
