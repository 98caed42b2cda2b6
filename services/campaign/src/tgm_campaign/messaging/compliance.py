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
from collections.abc import Iterable, Mapping
from typing import Any

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


def reason_of(doc: Mapping[str, Any]) -> str:
    """`blacklisted` wins over `opted_out` when both apply (the stronger, operator's decision)."""
    return "blacklisted" if doc.get("blacklisted") else "opted_out"
