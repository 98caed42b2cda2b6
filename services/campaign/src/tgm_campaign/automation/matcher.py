"""PLACEHOLDER (being written): every active keyword set compiled into one matcher."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hit:
    set_id: str
    keyword_id: str | None
    keyword: str
    match_type: str
    start: int
    end: int
    score: float | None = None


def check_pattern(pattern: str) -> None:
    """Raise ValueError (with a message for the operator) for a regex that does not compile or that
    could backtrack catastrophically."""
    raise NotImplementedError


class Matcher:
    @classmethod
    def build(cls, sets: Iterable[Mapping[str, Any]]) -> Matcher:
        """From `keyword_sets` documents (inactive ones ignored)."""
        raise NotImplementedError

    def match(self, text: str, set_ids: Collection[str] | None = None) -> list[Hit]:
        """Hits of the given sets (all when None), excludes applied per set, ordered by set then start."""
        raise NotImplementedError
