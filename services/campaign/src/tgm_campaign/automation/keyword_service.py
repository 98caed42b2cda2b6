"""PLACEHOLDER (being written): keyword sets and the matcher cache."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd

from ..messaging.clock import Clock
from .matcher import Hit, Matcher
from .ports import Emit
from .store import AutomationStores


class KeywordSetService:
    def __init__(self, stores: AutomationStores, emit: Emit, clock: Clock) -> None:
        self.stores, self.emit, self.clock = stores, emit, clock

    async def add(self, req: cmd.KeywordSetSpec, by: str | None) -> cmd.KeywordSetView:
        raise NotImplementedError

    async def save(self, req: cmd.SaveKeywordSetRequest, by: str | None) -> cmd.KeywordSetView:
        raise NotImplementedError

    async def delete(self, req: cmd.DeleteKeywordSetRequest, by: str | None) -> Ack:
        raise NotImplementedError

    async def list(self, req: cmd.GetKeywordSetsRequest) -> Page[cmd.KeywordSetView]:
        raise NotImplementedError

    async def add_keyword(self, req: cmd.AddKeywordRequest, by: str | None) -> cmd.KeywordSetView:
        raise NotImplementedError

    async def remove_keyword(self, req: cmd.RemoveKeywordRequest, by: str | None) -> cmd.KeywordSetView:
        raise NotImplementedError

    async def matcher(self) -> Matcher:
        """The compiled matcher of every active set; rebuilt when a set changed (on any replica: the
        `automation_meta` version is read at most once a second)."""
        raise NotImplementedError

    async def count_matches(self, hits: Sequence[Hit], at: datetime) -> None:
        """Add the hits to their keywords' and sets' match counters."""
        raise NotImplementedError

    async def missing(self, ids: Sequence[str]) -> list[str]:
        """Those of `ids` that are not keyword sets."""
        raise NotImplementedError
