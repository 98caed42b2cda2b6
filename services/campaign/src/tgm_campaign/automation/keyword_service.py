"""Keyword sets (add, save, delete, list, add/remove one keyword) and the matcher every replica keeps.

Decisions:
- A keyword's identity across saves is its text: save-keyword-set keeps the id and counters of a
  keyword whose text is unchanged (exact text first, then case-folded), whatever else changed.
- Two keywords of one set are duplicates when their effective match type and text (case-folded
  unless case-sensitive) are equal: a CONFLICT for add-keyword (the contract refuses it in a save).
- Regex keywords are checked with `matcher.check_pattern` (compiles, no catastrophic backtracking):
  a bad one is VALIDATION_ERROR naming the field, never a crash at match time.
- Counters: `count_matches` takes the hits of ONE message: each set hit gets `total_matches` +1 and
  each distinct keyword hit +1 (a keyword occurring twice in a message counts once), exact under
  concurrency: small counter documents of their own (keyword_store.py), one bulk of upserts per
  matched set, never a write of the (large) set document; views add them to what a set document
  embeds from before. Measured, not batched in memory: a per-message bulk costs ~1.6 ms of the
  database where a batch would save that at the price of losing counts on a crash (the e2e tests
  count matches exactly across a SIGKILL of campaign).
- Matcher cache: every change bumps the `automation_meta` version; `matcher()` re-reads that version
  at most once a second (`RECHECK_SECONDS`) and rebuilds from the active sets when it moved, so a set
  saved on replica A is matched on replica B within about a second. A change made on this replica
  invalidates its cache at once.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from tgm_contracts.base import Ack, Page
from tgm_contracts.commands import automation as cmd
from tgm_contracts.events_campaign import EntityChanged
from tgm_runtime import Conflict, Invalid, NotFound
from tgm_runtime.routes import answers

from ..messaging.clock import Clock, utc
from . import matcher as matching
from .keyword_store import SetNameTaken, new_keyword_id
from .matcher import Hit, Matcher
from .ports import Emit
from .store import AutomationStores

RECHECK_SECONDS = 1.0
#: compare-and-set attempts of a keyword list write racing other writes (and match counts)
WRITE_ATTEMPTS = 8
MAX_KEYWORDS = 2000

Keywords = list[dict[str, Any]]
"""A set's stored keyword list (the methods' `list` shadows the builtin inside the class)."""


def _key(keyword: str, match_type: str, case_sensitive: bool) -> tuple[str, str]:
    return match_type, keyword if case_sensitive else keyword.casefold()


def _effective(kw: Mapping[str, Any], mode: str) -> str:
    return str(kw.get("match_type") or mode)


def _check_regex(keyword: str, field: str) -> None:
    try:
        matching.check_pattern(keyword)
    except ValueError as exc:
        raise Invalid(f"{field}: {exc}", {"field": field}) from None


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None or b is None:
        return a or b
    return max(a, b)


def keyword_set_view(
    doc: Mapping[str, Any],
    group_ids: Sequence[str] = (),
    rule_ids: Sequence[str] = (),
    counts: Mapping[str, tuple[int, datetime | None]] | None = None,
) -> cmd.KeywordSetView:
    """The view of a set document; `counts` the set's counter documents (keyword id, "" the set's
    total -> (count, last matched at)), added to the counts the document embeds from before."""
    mode = doc.get("match_mode", "contains")
    counts = counts or {}
    none: tuple[int, datetime | None] = (0, None)
    return cmd.KeywordSetView(
        id=doc["_id"],
        name=doc["name"],
        description=doc.get("description"),
        match_mode=mode,
        fuzzy_threshold=doc.get("fuzzy_threshold", 0.85),
        keywords=[
            cmd.KeywordView(
                id=k["id"],
                keyword=k["keyword"],
                match_type=_effective(k, mode),
                case_sensitive=k.get("case_sensitive", False),
                match_count=k.get("match_count", 0) + counts.get(k["id"], none)[0],
                last_matched_at=_latest(k.get("last_matched_at"), counts.get(k["id"], none)[1]),
            )
            for k in doc.get("keywords") or []
        ],
        exclude_keywords=doc.get("exclude_keywords") or [],
        is_active=doc.get("is_active", True),
        total_matches=doc.get("total_matches", 0) + counts.get("", none)[0],
        group_ids=list(group_ids),
        trigger_rule_ids=list(rule_ids),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


class KeywordSetService:
    def __init__(self, stores: AutomationStores, emit: Emit, clock: Clock) -> None:
        self.stores, self.emit, self.clock = stores, emit, clock
        self._matcher: Matcher | None = None
        self._version: int | None = None
        self._checked = -float("inf")
        self._lock = asyncio.Lock()
        #: set by MonitoringService: republish the watched chats when a forced delete unbound groups
        self.on_groups_changed: Callable[[], Awaitable[None]] | None = None

    # --- commands ---------------------------------------------------------------------------------

    @answers(cmd.AddKeywordSet, principal=True)
    async def add(self, req: cmd.KeywordSetSpec, by: str | None) -> cmd.KeywordSetView:
        fields = self._fields(req, previous=None)
        try:
            doc = await self.stores.keyword_sets.create(fields, utc(self.clock()))
        except SetNameTaken:
            raise Conflict(
                f"a keyword set named {req.name.strip()!r} already exists", {"field": "name"}
            ) from None
        await self._changed(doc["_id"], "created", by)
        return keyword_set_view(doc)

    @answers(cmd.SaveKeywordSet, principal=True)
    async def save(self, req: cmd.SaveKeywordSetRequest, by: str | None) -> cmd.KeywordSetView:
        if req.id is None:
            return await self.add(req, by)
        for _ in range(WRITE_ATTEMPTS):
            current = await self.stores.keyword_sets.get(req.id)
            if current is None:
                raise NotFound(f"keyword set {req.id} does not exist")
            fields = self._fields(req, previous=current)
            try:
                doc = await self.stores.keyword_sets.replace(
                    req.id, current["rev"], fields, utc(self.clock())
                )
            except SetNameTaken:
                raise Conflict(
                    f"a keyword set named {req.name.strip()!r} already exists", {"field": "name"}
                ) from None
            if doc is not None:
                await self._changed(req.id, "updated", by)
                return await self._view(doc)
        raise Conflict(f"keyword set {req.id} kept changing while it was saved; try again")

    @answers(cmd.DeleteKeywordSet, principal=True)
    @answers(cmd.RemoveKeywordSet, principal=True)
    async def delete(self, req: cmd.DeleteKeywordSetRequest, by: str | None) -> Ack:
        if await self.stores.keyword_sets.get(req.id) is None:
            raise NotFound(f"keyword set {req.id} does not exist")
        groups = await self.stores.groups.using_set(req.id)
        rules = await self.stores.rules.using_set(req.id)
        if (groups or rules) and not req.force:
            raise Conflict(
                f"keyword set {req.id} is used by {len(groups)} group(s) and {len(rules)} trigger rule(s);"
                " unbind it first or delete with force",
                {"groupIds": groups, "triggerRuleIds": rules},
            )
        now = utc(self.clock())
        if req.force:
            groups = await self.stores.groups.detach_set(req.id, now)
            rules = await self.stores.rules.detach_set(req.id, now)
        if not await self.stores.keyword_sets.delete(req.id):
            raise NotFound(f"keyword set {req.id} does not exist")
        await self.stores.keyword_sets.forget_counts(req.id)
        await self._changed(req.id, "deleted", by)
        for group_id in groups:
            await self.emit(EntityChanged(entity="group", entity_id=group_id, action="updated", by=by))
        for rule_id in rules:
            await self.emit(EntityChanged(entity="trigger_rule", entity_id=rule_id, action="updated", by=by))
        if groups and self.on_groups_changed is not None:
            await self.on_groups_changed()
        return Ack(affected=1)

    @answers(cmd.GetKeywordSets)
    async def list(self, req: cmd.GetKeywordSetsRequest) -> Page[cmd.KeywordSetView]:
        docs = await self.stores.keyword_sets.find(
            active_only=req.active_only, search=req.search, ids=req.ids
        )
        ids = [d["_id"] for d in docs]
        bound = await self.stores.groups.bindings(ids)
        used = await self.stores.rules.bindings(ids)
        counts = await self.stores.keyword_sets.match_counts(ids)
        views = [
            keyword_set_view(d, bound.get(d["_id"], []), used.get(d["_id"], []), counts.get(d["_id"]))
            for d in docs
        ]
        return Page[cmd.KeywordSetView](items=views, total=len(views))

    @answers(cmd.AddKeyword, principal=True)
    async def add_keyword(self, req: cmd.AddKeywordRequest, by: str | None) -> cmd.KeywordSetView:
        def change(doc: dict[str, Any]) -> Keywords:
            mode = doc.get("match_mode", "contains")
            kind = req.match_type or mode
            keywords = list(doc.get("keywords") or [])
            if not req.keyword.strip():
                raise Invalid("keyword: blank", {"field": "keyword"})
            if kind == "regex":
                _check_regex(req.keyword, "keyword")
            key = _key(req.keyword, kind, req.case_sensitive)
            if any(
                _key(k["keyword"], _effective(k, mode), k.get("case_sensitive", False)) == key
                for k in keywords
            ):
                raise Conflict(f"keyword {req.keyword!r} is already in the set", {"field": "keyword"})
            if len(keywords) >= MAX_KEYWORDS:
                raise Invalid(f"a set holds at most {MAX_KEYWORDS} keywords", {"field": "keyword"})
            keywords.append(
                {
                    "id": new_keyword_id(),
                    "keyword": req.keyword,
                    "match_type": req.match_type,
                    "case_sensitive": req.case_sensitive,
                    "match_count": 0,
                    "last_matched_at": None,
                }
            )
            return keywords

        return await self._edit_keywords(req.set_id, change, by)

    @answers(cmd.RemoveKeyword, principal=True)
    async def remove_keyword(self, req: cmd.RemoveKeywordRequest, by: str | None) -> cmd.KeywordSetView:
        def change(doc: dict[str, Any]) -> Keywords:
            keywords = list(doc.get("keywords") or [])
            if req.keyword_id is not None:
                kept = [k for k in keywords if k["id"] != req.keyword_id]
                what = f"keyword {req.keyword_id}"
            else:
                text = req.keyword or ""
                kept = [k for k in keywords if k["keyword"] != text]
                if len(kept) == len(keywords):  # no exact text: the case-folded one, if only one
                    folded = [k for k in keywords if k["keyword"].casefold() == text.casefold()]
                    if len(folded) == 1:
                        kept = [k for k in keywords if k is not folded[0]]
                what = f"keyword {text!r}"
            if len(kept) == len(keywords):
                raise NotFound(f"{what} is not in keyword set {req.set_id}")
            return kept

        return await self._edit_keywords(req.set_id, change, by)

    # --- used by the inbound path, groups and rules -------------------------------------------------

    async def matcher(self) -> Matcher:
        """The compiled matcher of every active set; rebuilt when a set changed (on any replica: the
        `automation_meta` version is read at most once a second)."""
        if self._matcher is not None and time.monotonic() - self._checked < RECHECK_SECONDS:
            return self._matcher
        async with self._lock:
            if self._matcher is not None and time.monotonic() - self._checked < RECHECK_SECONDS:
                return self._matcher
            checked = time.monotonic()
            # the version first: a change landing between the two reads is rebuilt again next time
            version = await self.stores.keyword_sets.version()
            if self._matcher is None or version != self._version:
                self._matcher = Matcher.build(await self.stores.keyword_sets.active())
                self._version = version
            self._checked = checked
            return self._matcher

    async def count_matches(self, hits: Sequence[Hit], at: datetime, message: str) -> None:
        """Add the hits of one message (`message`: its key) to their keywords' and sets' match
        counters, once: a second call for the same message changes nothing."""
        by_set: dict[str, list[str | None]] = defaultdict(list)
        for hit in hits:
            by_set[hit.set_id].append(hit.keyword_id)
        for set_id, keyword_ids in by_set.items():
            await self.stores.keyword_sets.count(set_id, keyword_ids, at, message)

    async def missing(self, ids: Sequence[str]) -> builtins.list[str]:
        """Those of `ids` that are not keyword sets."""
        found = await self.stores.keyword_sets.existing(ids)
        return [i for i in dict.fromkeys(ids) if i not in found]

    # --- helpers ----------------------------------------------------------------------------------

    def _fields(self, spec: cmd.KeywordSetSpec, previous: Mapping[str, Any] | None) -> dict[str, Any]:
        """The stored fields of a spec; keywords whose text is kept keep their ids and counters."""
        old = list((previous or {}).get("keywords") or [])
        by_text: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_folded: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for k in old:
            by_text[k["keyword"]].append(k)
            by_folded[k["keyword"].casefold()].append(k)
        used: set[str] = set()

        def reuse(text: str) -> dict[str, Any] | None:
            for candidate in (*by_text.get(text, []), *by_folded.get(text.casefold(), [])):
                if candidate["id"] not in used:
                    used.add(candidate["id"])
                    return candidate
            return None

        if not spec.name.strip():
            raise Invalid("name: blank", {"field": "name"})
        for i, text in enumerate(spec.exclude_keywords):
            if not text.strip():
                raise Invalid(f"excludeKeywords[{i}]: blank", {"field": f"excludeKeywords[{i}]"})
        keywords = []
        for i, k in enumerate(spec.keywords):
            if not k.keyword.strip():
                raise Invalid(f"keywords[{i}].keyword: blank", {"field": f"keywords[{i}].keyword"})
            if (k.match_type or spec.match_mode) == "regex":
                _check_regex(k.keyword, f"keywords[{i}].keyword")
            kept = reuse(k.keyword)
            keywords.append(
                {
                    "id": kept["id"] if kept else new_keyword_id(),
                    "keyword": k.keyword,
                    "match_type": k.match_type,
                    "case_sensitive": k.case_sensitive,
                    "match_count": kept.get("match_count", 0) if kept else 0,
                    "last_matched_at": kept.get("last_matched_at") if kept else None,
                }
            )
        return {
            "name": spec.name.strip(),
            "description": spec.description,
            "match_mode": spec.match_mode,
            "fuzzy_threshold": spec.fuzzy_threshold,
            "keywords": keywords,
            "exclude_keywords": list(dict.fromkeys(spec.exclude_keywords)),
            "is_active": spec.is_active,
        }

    async def _edit_keywords(
        self, set_id: str, change: Callable[[dict[str, Any]], Keywords], by: str | None
    ) -> cmd.KeywordSetView:
        for _ in range(WRITE_ATTEMPTS):
            current = await self.stores.keyword_sets.get(set_id)
            if current is None:
                raise NotFound(f"keyword set {set_id} does not exist")
            keywords = change(current)
            doc = await self.stores.keyword_sets.replace(
                set_id, current["rev"], {"keywords": keywords}, utc(self.clock())
            )
            if doc is not None:
                await self._changed(set_id, "updated", by)
                return await self._view(doc)
        raise Conflict(f"keyword set {set_id} kept changing while it was edited; try again")

    async def _view(self, doc: Mapping[str, Any]) -> cmd.KeywordSetView:
        groups = await self.stores.groups.using_set(doc["_id"])
        rules = await self.stores.rules.using_set(doc["_id"])
        counts = await self.stores.keyword_sets.match_counts([doc["_id"]])
        return keyword_set_view(doc, groups, rules, counts.get(doc["_id"]))

    async def _changed(
        self, set_id: str, action: Literal["created", "updated", "deleted"], by: str | None
    ) -> None:
        await self.stores.keyword_sets.bump_version()
        self._checked = -float("inf")  # this replica sees its own change at once
        await self.emit(EntityChanged(entity="keyword_set", entity_id=set_id, action=action, by=by))
