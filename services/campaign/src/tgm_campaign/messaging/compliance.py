"""Compliance: who may never be messaged again (blacklist, stop-word opt-outs), checked before every
send; the per-recipient caps are windows in `pacing` (`recipient_hold`).

A user is known by several keys: `id:<user id>`, `@<username>` and `+<phone>` (see `peer_key`). A ban
or an opt-out is stored under every key known for the user, and a job is checked under every key of
its peer plus the aliases the peer directory knows, so banning `@alice` also stops a job addressed to
her numeric id once the two are known to be the same person.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from tgm_contracts.models.campaign import peer_key

# --- stop words (pure) ---------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC (full-width letters and punctuation become plain), case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _is_latin(word: str) -> bool:
    return all(ord(c) < 0x2E80 for c in word)  # below the CJK blocks


class StopWords:
    """Matches the configured stop words in a message: Latin-script words and phrases as whole
    words (`stop` matches `STOP!` and `please stop`, not `unstoppable`), CJK ones anywhere."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = [w for w in (normalise(w) for w in words) if w]
        latin = sorted((w for w in self.words if _is_latin(w)), key=len, reverse=True)
        self._cjk = [w for w in self.words if not _is_latin(w)]
        self._latin = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(r"\s+".join(map(re.escape, w.split())) for w in latin) + r")(?!\w)"
            )
            if latin
            else None
        )

    def match(self, text: str | None) -> str | None:
        """The stop word found in `text`, or None."""
        if not text:
            return None
        norm = normalise(text)
        for word in self._cjk:
            if word in norm:
                return word
        if self._latin is not None:
            found = self._latin.search(norm)
            if found:
                return " ".join(found.group(0).split())
        return None


# --- keys ----------------------------------------------------------------------------------------


def user_keys(user_id: int | None = None, username: str | None = None, phone: str | None = None) -> list[str]:
    keys: list[str] = []
    if user_id is not None:
        keys.append(peer_key(int(user_id)))
    if username:
        keys.append(peer_key("@" + username.lstrip("@")))
    if phone:
        keys.append(peer_key("+" + phone.lstrip("+")))
    return keys


# --- store ---------------------------------------------------------------------------------------


class ComplianceStore:
    """`blocked`: one document per user key, with a ban and/or an opt-out on it."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.c = db["blocked"]

    async def blocked(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """key -> its document, for the keys that are banned or opted out."""
        if not keys:
            return {}
        docs = self.c.find(
            {"_id": {"$in": list(dict.fromkeys(keys))}, "$or": [{"blacklisted": True}, {"opted_out": True}]}
        )
        return {d["_id"]: d async for d in docs}

    async def set_blacklisted(
        self,
        keys: Sequence[str],
        blacklisted: bool,
        *,
        user_id: int | None,
        username: str | None,
        reason: str | None,
        by: str | None,
        at: datetime,
    ) -> None:
        for key in keys:
            await self.c.update_one(
                {"_id": key},
                {
                    "$set": {
                        "blacklisted": blacklisted,
                        "blacklist_reason": reason,
                        "blacklist_by": by,
                        "blacklist_changed_at": at,
                        **({"user_id": user_id} if user_id is not None else {}),
                        **({"username": username} if username else {}),
                    },
                    "$setOnInsert": {"opted_out": False},
                },
                upsert=True,
            )

    async def opt_out(
        self, keys: Sequence[str], *, user_id: int, account_id: str, stop_word: str, at: datetime
    ) -> bool:
        """Record an opt-out under every key; True when the user had not opted out before."""
        already = await self.c.count_documents({"_id": {"$in": list(keys)}, "opted_out": True})
        for key in keys:
            await self.c.update_one(
                {"_id": key},
                {
                    "$set": {
                        "opted_out": True,
                        "user_id": user_id,
                        "stop_word": stop_word,
                        "opted_out_via": account_id,
                        "opted_out_at": at,
                    },
                    "$setOnInsert": {"blacklisted": False},
                },
                upsert=True,
            )
        return already == 0


def reason_of(doc: Mapping[str, Any]) -> str:
    """`blacklisted` wins over `opted_out` when both apply (the stronger, operator's decision)."""
    return "blacklisted" if doc.get("blacklisted") else "opted_out"
