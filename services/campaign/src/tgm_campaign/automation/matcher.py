"""Every active keyword set compiled into one matcher. Pure: no I/O.

Decisions (the next engineer reads these before changing anything):

**Folding.** Keywords and text go through the same per-character fold: NFKC (full-width letters,
digits and punctuation to half-width, ligatures, circled digits...), then casefold unless the keyword
is case-sensitive, then traditional -> simplified Chinese with OpenCC's `t2s` applied one character
at a time. Folding per character (cached in a `str.translate` table) keeps every folded character
traceable to one original character, so hit offsets always refer to the original text; a character
that folds to several (`ß` -> `ss`, `㈱` -> `(株)`) is mapped through an offset table. Limits of a
per-character fold: OpenCC's phrase rules are not used (`乾隆` folds to `干隆` on both sides, so
matching is unaffected), and a decomposed accent sequence (`e` + U+0301) is not composed (Telegram
clients send NFC text).

**Match types** (`MatchType` in the contract):

- `contains`: the folded keyword occurs in the folded text. A keyword whose first (last) character
  is a letter or digit of a space-separated script (Latin, Greek, Cyrillic, Arabic, ... see
  `_is_word`) only matches where the text has no such character just before (after) it, so `ai`
  does not fire on "said" nor `usdt` on "usdtx", but `usdt` fires on "收usdt换" and "USDT!". CJK,
  kana, Hangul and Thai have no word boundaries: there `contains` is a plain substring. Operators
  who want stems write a regex (`buy\\w*`) or a fuzzy keyword.
- `exact`: the whole message, trimmed and with inner runs of whitespace collapsed to one space,
  folded, equals the folded keyword (a hash lookup, not the automaton).
- `regex`: the `regex` module's search on the text folded without casefold (`IGNORECASE` unless the
  keyword is case-sensitive). Han characters and full-width letters/digits of the pattern are folded
  like the text (not after a backslash); write everything else half-width. Each search is bounded by
  `regex_timeout` (a timed-out search is no hit, counted in `timeouts`), and `check_pattern` refuses
  nested quantifiers and overlapping alternatives under a repeat before a pattern is ever saved.
- `fuzzy`: rapidfuzz Indel similarity (`fuzz.ratio`, 0..1 in the hit's `score`) of at least the set's
  `fuzzy_threshold`. A keyword made only of word characters and spaces is compared with windows of
  k-1..k+1 consecutive words of the text (k = its word count), so `helo` meets `hello` (0.89); any
  other keyword (CJK, mixed) with `fuzz.partial_ratio` over character windows of its own length (the
  whole text when shorter).
- `exclude_keywords`: `contains` semantics, case-insensitive; one present suppresses every hit of
  its set.

**One automaton.** Every literal string of every set goes into ONE Aho-Corasick automaton
(pyahocorasick) over the case-insensitive fold: `contains` keywords (a case-sensitive one is verified
on the original span after the hit), exclude keywords, the pieces of fuzzy keywords and the required
literals of regexes. A fuzzy keyword runs only when one of its pieces occurs: its characters are cut
into P disjoint pieces; a window at similarity >= t (L its length) is at most d = 2(1-t)L/t
insertions/deletions away, each breaking at most one piece, so P - d pieces occur intact (a
pigeonhole filter with no false negatives; P >= d + 1 pieces as long as the words allow, or d + 2
for Latin keywords whose pieces would be bigrams anyway, needing two; a Latin keyword that would
need single letters is scored on every message instead). A regex runs only when one of its required literals
(read from its parse tree; any of the alternatives of a top-level branch) occurs; a regex or fuzzy
keyword without such literals runs on every message. So the cost per message is one pass of the
automaton plus the few candidates, not one test per keyword.

**Hits.** One per keyword (its first occurrence), only of the sets asked for, ordered by the sets'
order in `build`'s input, then start, then the keyword's order in its set. A keyword that cannot be
compiled (a stored regex that `check_pattern` refuses, an unknown match type, an empty keyword) is
left out and listed in `rejected` rather than failing the whole build.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import ahocorasick
import numpy as np
import opencc
import regex
from rapidfuzz import fuzz, process

try:  # the parser the stdlib compiles with (typed nowhere; used only to read a pattern's structure)
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse as _sre

MATCH_TYPES = ("contains", "exact", "regex", "fuzzy")
DEFAULT_REGEX_TIMEOUT = 0.02  # seconds per search; a match that needs longer is no match
_MAXREPEAT = _sre.MAXREPEAT
_BIG_REPEAT = 20  # an outer repeat bound above this is treated as unbounded by check_pattern


@dataclass(frozen=True)
class Hit:
    set_id: str
    keyword_id: str | None
    keyword: str
    match_type: str
    start: int
    end: int
    score: float | None = None


# --- folding -----------------------------------------------------------------------------------

_T2S = opencc.OpenCC("t2s")


def _is_word(c: str) -> bool:
    """A letter or digit of a script that separates words with spaces (Latin incl. Vietnamese,
    Greek, Cyrillic, Armenian, Hebrew, Arabic, Indic): where `contains` respects word boundaries."""
    o = ord(c)
    return (o < 0x0E00 or 0x1E00 <= o < 0x2000) and c.isalnum()


class _FoldTable(dict[int, str]):
    """`str.translate` table filled on first sight of a character: NFKC, casefold, t2s."""

    def __init__(self, casefold: bool) -> None:
        super().__init__()
        self.casefold = casefold

    def __missing__(self, key: int) -> str:
        c = chr(key)
        f = unicodedata.normalize("NFKC", c)
        if self.casefold:
            f = f.casefold()
        if any(ord(ch) >= 0x2E80 for ch in f):
            f = "".join(_t2s_char(ch) for ch in f)
        if not f:
            f = c
        self[key] = f
        return f


def _t2s_char(ch: str) -> str:
    if ord(ch) < 0x2E80:
        return ch
    s = _T2S.convert(ch)
    return s if len(s) == 1 else ch


_CI = _FoldTable(casefold=True)
_CS = _FoldTable(casefold=False)


def fold(text: str, casefold: bool = True) -> tuple[str, list[int] | None]:
    """The folded text and, when its length differs, the original index of each folded character
    (None: offsets are the same)."""
    if text.isascii():
        return (text.lower() if casefold else text), None
    table = _CI if casefold else _CS
    out = text.translate(table)
    if len(out) == len(text):  # every character folds to at least one: same length means 1:1
        return out, None
    offsets: list[int] = []
    for i, c in enumerate(text):
        offsets.extend([i] * len(table[ord(c)]))
    return out, offsets


def _span(offsets: list[int] | None, start: int, end: int, n: int) -> tuple[int, int]:
    if offsets is None:
        return start, end
    s = offsets[start] if start < len(offsets) else n
    e = offsets[end - 1] + 1 if end > start else s
    return s, e


def _fold_pattern(pattern: str) -> str:
    """Han characters and full-width letters/digits folded like the text; what follows a backslash
    is left alone. A character whose fold is not alphanumeric is escaped (`（` -> `\\(`)."""
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ord(ch) >= 0x2E80:
            f = _CS[ord(ch)]
            out.append(f if f == ch or f.isalnum() else re.escape(f))
        else:
            out.append(ch)
    return "".join(out)


# --- the regex checks --------------------------------------------------------------------------

_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT}
_SAMPLE = "".join(chr(c) for c in range(0x20, 0x7F)) + " \t\n\u00a0\u3000éßΩжا一二价格。，！？ａ１"


def _parse(pattern: str) -> Any:
    try:
        regex.compile(pattern)
        return _sre.parse(pattern)
    except (re.error, regex.error) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    except (RecursionError, OverflowError):
        raise ValueError("regular expression too deeply nested or too large") from None


def _children(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of one parsed item."""
    if op in _REPEATS or op == getattr(_sre, "POSSESSIVE_REPEAT", None):
        return [av[2]]
    if op == _sre.SUBPATTERN:
        return [av[3]]
    if op == _sre.BRANCH:
        return list(av[1])
    if op == _sre.ASSERT or op == _sre.ASSERT_NOT:
        return [av[1]]
    if op == _sre.GROUPREF_EXISTS:
        return [x for x in av[1:] if x is not None]
    if op == getattr(_sre, "ATOMIC_GROUP", None):
        return [av]
    return []


def _inner_repeats(sub: Any, unbounded_only: bool) -> list[Any]:
    """The repeats of variable length anywhere in `sub` (unbounded ones only, or any lo != hi > 1)."""
    out: list[Any] = []
    for op, av in sub:
        if op in _REPEATS:
            lo, hi = av[0], av[1]
            if (hi == _MAXREPEAT) if unbounded_only else (hi > 1 and lo != hi):
                out.append(av[2])
        for c in _children(op, av):
            out.extend(_inner_repeats(c, unbounded_only))
    return out


def _first(sub: Any) -> Any:
    """What the first character of any match of `sub` can be: a set of characters, a predicate on
    one character, or None (anything, or `sub` can match empty: overlaps everything)."""
    for op, av in sub:
        if op == _sre.AT:
            continue
        if op == _sre.LITERAL:
            return {chr(av)}
        if op == _sre.IN:
            chars: set[str] = set()
            for iop, iav in av:
                if iop == _sre.LITERAL:
                    chars.add(chr(iav))
                elif iop == _sre.RANGE and iav[1] - iav[0] < 512:
                    chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
                else:
                    return _predicate(sub, op, av)
            return chars
        if op in (_sre.NOT_LITERAL, _sre.ANY, _sre.CATEGORY):
            return _predicate(sub, op, av)
        if op == _sre.SUBPATTERN:
            return _first(av[3])
        if op in _REPEATS and av[0] >= 1:
            return _first(av[2])
        return None
    return None


def _predicate(sub: Any, op: Any, av: Any) -> Any:
    """A test of one character against the single item (op, av) of `sub`."""
    try:
        import re._compiler as _c

        compiled = _c.compile(_sre.SubPattern(sub.state, [(op, av)]), 0)
    except Exception:
        return None
    return lambda c: compiled.match(c) is not None


def _overlap(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True
    if isinstance(a, set) and isinstance(b, set):
        return bool(a & b)
    if isinstance(a, set):
        return any(b(c) for c in a)
    if isinstance(b, set):
        return any(a(c) for c in b)
    return any(a(c) and b(c) for c in _SAMPLE)


def _ambiguous(body: Any, inner: list[Any]) -> bool:
    """Iterations of a repeat of `body` can be split more than one way: some inner repeat can eat
    the character every iteration must start with (`(a+)+` yes; `(,\\d+)*` no: `,` separates)."""
    if not inner:
        return False
    start = _first(body)
    return start is None or any(_overlap(start, _first(r)) for r in inner)


def _catastrophic(sub: Any, outer: str | None = None) -> str | None:
    """Why `sub` can backtrack catastrophically, or None."""
    for op, av in sub:
        if op in _REPEATS:
            _, hi, body = av
            unbounded = hi == _MAXREPEAT or hi > _BIG_REPEAT
            if hi > 1 and _ambiguous(body, _inner_repeats(body, unbounded_only=True)):
                return "a repeated group contains an unbounded quantifier (like `(a+)+` or `(.*x){5}`)"
            if unbounded and _ambiguous(body, _inner_repeats(body, unbounded_only=False)):
                return "an unbounded repeat contains a variable quantifier (like `(a{1,3})+`)"
            if unbounded:
                why = _catastrophic(body, outer="repeat")
                if why:
                    return why
                continue
        if op == _sre.BRANCH and outer == "repeat":
            firsts = [_first(alt) for alt in av[1]]
            for i in range(len(firsts)):
                for j in range(i + 1, len(firsts)):
                    if _overlap(firsts[i], firsts[j]):
                        return (
                            "a repeated alternation has branches that can start with the same character "
                            "(like `(a|ab)+`)"
                        )
        for child in _children(op, av):
            why = _catastrophic(child, outer if op == _sre.SUBPATTERN else None)
            if why:
                return why
    return None


def check_pattern(pattern: str) -> None:
    """Raise ValueError (with a message for the operator) for a regex that does not compile or that
    could backtrack catastrophically.

    Refused: a quantified group holding an unbounded quantifier (`(a+)+`, `(\\w+\\s?)*`, `(.*a){3}`),
    an unbounded repeat holding a variable one (`(a{1,3})+`), and an unbounded repeat of an
    alternation whose branches can start alike (`(a|ab)+`, `(\\w|\\d)+`). What this analysis cannot
    see (`.*.*.*x` is polynomial) is bounded at match time by the matcher's `regex_timeout`.
    """
    if not isinstance(pattern, str) or not pattern:
        raise ValueError("empty regular expression")
    if len(pattern) > 1000:
        raise ValueError("regular expression longer than 1000 characters")
    parsed = _parse(pattern)
    why = _catastrophic(parsed)
    if why:
        raise ValueError(
            f"regular expression {pattern!r} could take exponential time: {why}; "
            "make the inner part fixed-length or possessive, or use a plain keyword"
        )


def _required_literals(sub: Any) -> list[str] | None:
    """Strings at least one of which occurs in any match of `sub` (the most selective option found),
    or None."""
    best: list[str] | None = None

    def score(opts: list[str]) -> tuple[int, int]:
        return (min(len(o) for o in opts), -len(opts))

    def consider(opts: list[str] | None) -> None:
        nonlocal best
        if opts and all(opts) and (best is None or score(opts) > score(best)):
            best = opts

    run: list[str] = []
    for op, av in sub:
        if op == _sre.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(["".join(run)])
            run = []
        if op == _sre.IN and av and all(iop == _sre.LITERAL for iop, _ in av) and len(av) <= 8:
            consider([chr(iav) for _, iav in av])
        elif op == _sre.SUBPATTERN:
            consider(_required_literals(av[3]))
        elif op in _REPEATS and av[0] >= 1:
            consider(_required_literals(av[2]))
        elif op == _sre.BRANCH:
            alts = [_required_literals(alt) for alt in av[1]]
            if all(alts):
                consider(sorted({o for alt in alts if alt for o in alt}))
    if run:
        consider(["".join(run)])
    return best


# --- the compiled matcher ----------------------------------------------------------------------

_CONTAINS, _EXCLUDE, _FUZZY, _REGEX = 0, 1, 2, 3
_WORDS = re.compile(r"[^\W_\u0e00-\u1dff\u2000-\U0010ffff]+")


@dataclass
class _Kw:
    set_idx: int
    order: int
    id: str | None
    keyword: str
    match_type: str
    case_sensitive: bool
    ci: str  # folded with casefold
    cs: str  # folded without
    left: bool = False  # word-boundary checks (contains)
    right: bool = False
    threshold: float = 0.0  # fuzzy, 0..100
    words: int = 0  # fuzzy: >0 compares word windows of this many words
    need: int = 1  # fuzzy: distinct pieces that must occur before the scorer runs
    pattern: Any = None  # regex: the compiled `regex` pattern


@dataclass
class _Text:
    """One message being matched: its folds computed once, when first needed."""

    text: str
    ci: str
    ci_map: list[int] | None
    _cs: tuple[str, list[int] | None] | None = None
    _windows: dict[tuple[bool, int], tuple[list[str], list[tuple[int, int]], Any]] = field(
        default_factory=dict
    )

    @property
    def cs(self) -> tuple[str, list[int] | None]:
        if self._cs is None:
            self._cs = fold(self.text, casefold=False)
        return self._cs

    def windows(self, case_sensitive: bool, most: int) -> tuple[list[str], list[tuple[int, int]], Any]:
        """Every window of 1..`most` consecutive words (joined by one space), their spans in the
        fold and their sizes (a numpy array)."""
        key = (case_sensitive, most)
        if key not in self._windows:
            t = self.cs[0] if case_sensitive else self.ci
            spans = [m.span() for m in _WORDS.finditer(t)]
            words = [t[s:e] for s, e in spans]
            strs, wspans, counts = list(words), list(spans), [len(words)]
            grown = words
            for k in range(2, most + 1):
                grown = [f"{a} {b}" for a, b in zip(grown, words[k - 1 :], strict=False)]
                strs.extend(grown)
                wspans.extend((spans[i][0], spans[i + k - 1][1]) for i in range(len(grown)))
                counts.append(len(grown))
            sizes = np.repeat(np.arange(1, len(counts) + 1, dtype=np.int16), counts)
            self._windows[key] = (strs, wspans, sizes)
        return self._windows[key]


class Matcher:
    """Compiled from the active keyword sets; immutable after `build` (share it between tasks)."""

    def __init__(self, regex_timeout: float = DEFAULT_REGEX_TIMEOUT) -> None:
        self.regex_timeout = regex_timeout
        self.set_ids: list[str] = []
        self._set_index: dict[str, int] = {}
        self._kws: list[_Kw] = []
        self._excludes: list[_Kw] = []
        self._exact: dict[str, list[int]] = {}
        self._always_fuzzy: list[int] = []
        self._always_regex: list[int] = []
        # a regex or fuzzy keyword present in several sets is scored once: representative -> all
        self._twins: dict[int, list[int]] = {}
        self._rep_of: dict[tuple[Any, ...], int] = {}
        self._word_reps: list[int] = []  # fuzzy word keywords, scored in one batch per case mode
        # (reps, casefolded needles, words per needle, thresholds, lowest, most words in a window)
        self._word_batch: tuple[list[int], list[str], Any, Any, float, int] | None = None
        self._automaton: Any = None
        self.rejected: list[tuple[str, str, str]] = []  # (set id, keyword, why) left out of the build
        self.timeouts = 0  # regex searches cut off by regex_timeout

    @property
    def keyword_count(self) -> int:
        return len(self._kws)

    @classmethod
    def build(
        cls, sets: Iterable[Mapping[str, Any]], regex_timeout: float = DEFAULT_REGEX_TIMEOUT
    ) -> Matcher:
        """From `keyword_sets` documents (inactive ones ignored)."""
        m = cls(regex_timeout)
        literals: dict[str, list[int]] = {}
        for doc in sets:
            if not isinstance(doc, Mapping) or doc.get("is_active", True) is False:
                continue
            sid = doc.get("_id", doc.get("id"))
            if not isinstance(sid, str) or sid in m._set_index:
                continue
            idx = len(m.set_ids)
            m.set_ids.append(sid)
            m._set_index[sid] = idx
            mode = doc.get("match_mode") or "contains"
            threshold = _threshold(doc.get("fuzzy_threshold"))
            for order, kw in enumerate(doc.get("keywords") or ()):
                if isinstance(kw, str):
                    kw = {"keyword": kw}
                elif not isinstance(kw, Mapping):
                    continue
                why = m._add_keyword(idx, order, kw, mode, threshold, literals)
                if why:
                    m.rejected.append((sid, str(kw.get("keyword")), why))
            for ex in doc.get("exclude_keywords") or ():
                if isinstance(ex, str) and ex.strip():
                    e = _literal(idx, -1, None, ex.strip(), "contains", False)
                    literals.setdefault(e.ci, []).append(len(m._excludes) * 4 + _EXCLUDE)
                    m._excludes.append(e)
        if m._word_reps:
            reps = m._word_reps
            k = np.array([m._kws[r].words for r in reps], dtype=np.int16)
            thresholds = np.array([m._kws[r].threshold for r in reps], dtype=np.float32)
            needles = [m._kws[r].ci for r in reps]
            m._word_batch = (reps, needles, k, thresholds, float(thresholds.min()), int(k.max()) + 1)
        automaton = ahocorasick.Automaton()
        for key, codes in literals.items():
            automaton.add_word(key, (len(key), tuple(codes)))
        if literals:
            automaton.make_automaton()
            m._automaton = automaton
        return m

    def _add_keyword(
        self,
        idx: int,
        order: int,
        kw: Mapping[str, Any],
        mode: Any,
        threshold: float,
        literals: dict[str, list[int]],
    ) -> str | None:
        text = kw.get("keyword")
        if not isinstance(text, str) or not text.strip():
            return "empty keyword"
        mt = kw.get("match_type") or mode
        if mt not in MATCH_TYPES:
            return f"unknown match type {mt!r}"
        cs = kw.get("case_sensitive") is True
        kid = kw.get("id") if isinstance(kw.get("id"), str) else None
        i = len(self._kws)
        if mt == "regex":
            folded = _fold_pattern(text)
            try:
                check_pattern(folded)
                pattern = regex.compile(folded, 0 if cs else regex.IGNORECASE)
            except ValueError as exc:
                return str(exc)
            except (
                regex.error,
                RecursionError,
                OverflowError,
            ) as exc:  # pragma: no cover - check_pattern ran
                return f"invalid regular expression: {exc}"
            k = _Kw(idx, order, kid, text, mt, cs, "", "", pattern=pattern)
            self._kws.append(k)
            if self._twin(("regex", folded, cs), i):
                return None
            opts = _required_literals(_sre.parse(folded))
            if opts:
                for o in {fold(o)[0] for o in opts}:
                    literals.setdefault(o, []).append(i * 4 + _REGEX)
            else:
                self._always_regex.append(i)
            return None
        else:
            k = _literal(idx, order, kid, text.strip(), mt, cs)
            if mt == "exact":
                self._exact.setdefault(" ".join(k.ci.split()), []).append(i)
                k.cs = " ".join(k.cs.split())
            elif mt == "contains":
                literals.setdefault(k.ci, []).append(i * 4 + _CONTAINS)
            else:  # fuzzy
                k.threshold = threshold * 100
                body = k.cs if cs else k.ci
                if all(_is_word(c) or c == " " for c in body):
                    k.words = len(body.split())
                    k.ci, k.cs = " ".join(k.ci.split()), " ".join(k.cs.split())
                self._kws.append(k)
                if self._twin(("fuzzy", k.cs if cs else k.ci, k.threshold, cs), i):
                    return None
                if k.words:
                    self._word_reps.append(i)
                    return None
                pieces, k.need = _pieces(k.ci, threshold)
                if len(pieces) > 255:  # (keywords are 200 characters at most) only 8 bits for a piece
                    pieces, k.need = pieces[:255], 1
                if pieces:
                    for n, p in enumerate(pieces):
                        literals.setdefault(p, []).append(((i << 8) | n) * 4 + _FUZZY)
                else:
                    self._always_fuzzy.append(i)
                return None
        self._kws.append(k)
        return None

    def _twin(self, key: tuple[Any, ...], i: int) -> bool:
        """Whether keyword i repeats one already compiled (it is then scored with it)."""
        r = self._rep_of.setdefault(key, i)
        self._twins.setdefault(r, [r])
        if r == i:
            return False
        self._twins[r].append(i)
        return True

    def match(self, text: str, set_ids: Collection[str] | None = None) -> list[Hit]:
        """Hits of the given sets (all when None), excludes applied per set, ordered by set then start."""
        if not isinstance(text, str) or not text or not self.set_ids:
            return []
        allowed: set[int] | None = None
        if set_ids is not None:
            allowed = {self._set_index[s] for s in set_ids if s in self._set_index}
            if not allowed:
                return []
        ci, ci_map = fold(text)
        t = _Text(text, ci, ci_map)
        found: dict[int, tuple[int, int, float | None]] = {}  # keyword -> (start, end, score) in `text`
        excluded: set[int] = set()
        fuzzy: set[int] = set()
        pieces_seen: set[int] = set()
        piece_counts: dict[int, int] = {}
        regexes: set[int] = set()
        n = len(ci)
        if self._automaton is not None:
            kws, excludes = self._kws, self._excludes
            for end, (length, codes) in self._automaton.iter(ci):
                start = end - length + 1
                for code in codes:
                    kind, i = code & 3, code >> 2
                    if kind == _CONTAINS:
                        if i in found:
                            continue
                        k = kws[i]
                        if allowed is not None and k.set_idx not in allowed:
                            continue
                        if not _bounded(k, ci, start, end + 1, n):
                            continue
                        s, e = _span(ci_map, start, end + 1, len(text))
                        if k.case_sensitive and fold(text[s:e], casefold=False)[0] != k.cs:
                            continue
                        found[i] = (s, e, None)
                    elif kind == _EXCLUDE:
                        ex = excludes[i]
                        if _bounded(ex, ci, start, end + 1, n):
                            excluded.add(ex.set_idx)
                    elif kind == _FUZZY:
                        k = kws[i >> 8]
                        if k.need == 1:
                            fuzzy.add(i >> 8)
                        elif i not in pieces_seen:  # count the distinct pieces seen
                            pieces_seen.add(i)
                            c = piece_counts[i >> 8] = piece_counts.get(i >> 8, 0) + 1
                            if c == k.need:
                                fuzzy.add(i >> 8)
                    else:
                        regexes.add(i)
        if self._exact:
            self._match_exact(t, allowed, found)
        fuzzy.update(self._always_fuzzy)
        self._fuzzy_words(t, allowed, excluded, found)
        self._run_twins(fuzzy, self._match_fuzzy, t, allowed, excluded, found)
        regexes.update(self._always_regex)
        self._run_twins(regexes, self._match_regex, t, allowed, excluded, found)
        hits = [(self._kws[i], v) for i, v in found.items() if self._kws[i].set_idx not in excluded]
        hits.sort(key=lambda h: (h[0].set_idx, h[1][0], h[0].order))
        return [
            Hit(self.set_ids[k.set_idx], k.id, k.keyword, k.match_type, s, e, score)
            for k, (s, e, score) in hits
        ]

    def _match_exact(
        self, t: _Text, allowed: set[int] | None, found: dict[int, tuple[int, int, float | None]]
    ) -> None:
        candidates = self._exact.get(" ".join(t.ci.split()))
        if not candidates:
            return
        stripped = t.text.strip()
        s = len(t.text) - len(t.text.lstrip())
        for i in candidates:
            k = self._kws[i]
            if allowed is not None and k.set_idx not in allowed:
                continue
            if k.case_sensitive and " ".join(fold(stripped, casefold=False)[0].split()) != k.cs:
                continue
            found[i] = (s, s + len(stripped), None)

    def _match_fuzzy(self, t: _Text, k: _Kw) -> tuple[int, int, float | None] | None:
        """A keyword with characters other than words and spaces: `partial_ratio` over character
        windows of its length (the whole text when shorter)."""
        body, offsets = t.cs if k.case_sensitive else (t.ci, t.ci_map)
        needle = k.cs if k.case_sensitive else k.ci
        if len(body) >= len(needle):
            a = fuzz.partial_ratio_alignment(needle, body, score_cutoff=k.threshold)
            if a is None or a.score < k.threshold:
                return None
            score, (s, e) = a.score, (a.dest_start, a.dest_end)
        else:
            score = fuzz.ratio(needle, body, score_cutoff=k.threshold)
            if score < k.threshold or score <= 0:
                return None
            s, e = 0, len(body)
        s, e = _span(offsets, s, e, len(t.text))
        return (s, e, round(score / 100, 4))

    def _fuzzy_words(
        self,
        t: _Text,
        allowed: set[int] | None,
        excluded: set[int],
        found: dict[int, tuple[int, int, float | None]],
    ) -> None:
        """Every word keyword against the windows of k-1..k+1 words of the casefolded text in one
        rapidfuzz `cdist` call (C speed: no prefilter pays for itself here), the best window kept per
        keyword. A case-sensitive keyword that passes is scored again on the unfolded windows
        (casefolding only raises similarity, so the batch never loses one)."""
        if self._word_batch is None:
            return
        reps, needles, k, thresholds, floor, most = self._word_batch
        strs, spans, sizes = t.windows(False, most)
        if not strs:
            return
        kws = self._kws
        scores = process.cdist(needles, strs, scorer=fuzz.ratio, score_cutoff=floor)
        scores[np.abs(k[:, None] - sizes[None, :]) > 1] = 0
        best = scores.argmax(axis=1)
        top = scores[np.arange(len(reps)), best]
        for row in np.nonzero((top >= thresholds) & (top > 0))[0]:
            r = reps[row]
            members = [
                j
                for j in self._twins.get(r, (r,))
                if (allowed is None or kws[j].set_idx in allowed) and kws[j].set_idx not in excluded
            ]
            if not members:
                continue
            if kws[r].case_sensitive:
                got = self._word_window_cs(t, kws[r])
                if got is None:
                    continue
            else:
                ws, we = spans[best[row]]
                s, e = _span(t.ci_map, ws, we, len(t.text))
                got = (s, e, round(float(top[row]) / 100, 4))
            for j in members:
                found[j] = got

    def _word_window_cs(self, t: _Text, k: _Kw) -> tuple[int, int, float | None] | None:
        strs, spans, sizes = t.windows(True, k.words + 1)
        ok = [n for n, size in enumerate(sizes) if abs(int(size) - k.words) <= 1]
        top = process.extractOne(k.cs, [strs[n] for n in ok], scorer=fuzz.ratio, score_cutoff=k.threshold)
        if top is None or top[1] <= 0:
            return None
        s, e = _span(t.cs[1], *spans[ok[top[2]]], len(t.text))
        return (s, e, round(top[1] / 100, 4))

    def _match_regex(self, t: _Text, k: _Kw) -> tuple[int, int, float | None] | None:
        body, offsets = t.cs
        try:
            m = k.pattern.search(body, timeout=self.regex_timeout)
        except TimeoutError:
            self.timeouts += 1
            return None
        if m is None:
            return None
        s, e = _span(offsets, m.start(), m.end(), len(t.text))
        return (s, e, None)

    def _run_twins(
        self,
        reps: Iterable[int],
        run: Callable[[_Text, _Kw], tuple[int, int, float | None] | None],
        t: _Text,
        allowed: set[int] | None,
        excluded: set[int],
        found: dict[int, tuple[int, int, float | None]],
    ) -> None:
        """Score each candidate once for all the sets that hold the same keyword."""
        kws = self._kws
        for r in reps:
            members = [
                j
                for j in self._twins.get(r, (r,))
                if (allowed is None or kws[j].set_idx in allowed) and kws[j].set_idx not in excluded
            ]
            if members:
                got = run(t, kws[r])
                if got is not None:
                    for j in members:
                        found[j] = got


def _threshold(v: Any) -> float:
    try:
        f = float(v) if v is not None else 0.85
    except (TypeError, ValueError):
        return 0.85
    return min(1.0, max(0.5, f)) if f == f else 0.85


def _literal(idx: int, order: int, kid: str | None, text: str, mt: str, cs: bool) -> _Kw:
    ci, cs_fold = fold(text)[0], fold(text, casefold=False)[0]
    k = _Kw(idx, order, kid, text, mt, cs, ci, cs_fold)
    k.left, k.right = _is_word(ci[0]), _is_word(ci[-1])
    return k


def _bounded(k: _Kw, ci: str, start: int, end: int, n: int) -> bool:
    """The occurrence ci[start:end] of a `contains` keyword sits at word boundaries where it must."""
    if k.left and start > 0 and _is_word(ci[start - 1]):
        return False
    return not (k.right and end < n and _is_word(ci[end]))


def _partition(body: str, m: int) -> list[str]:
    """At least m disjoint pieces of `body`'s words, as long as possible (the longest q such that the
    words hold m pieces of q characters; each word cut evenly; what is left over stays uncovered)."""
    words = [w for w in body.split(" ") if w]
    q = max(
        (q for q in range(1, max(map(len, words)) + 1) if sum(len(w) // q for w in words) >= m), default=0
    )
    if not q:
        return []
    out: list[str] = []
    for w in words:
        n = len(w) // q
        bounds = [round(j * len(w) / n) for j in range(n + 1)] if n else []
        out.extend(w[lo:hi] for lo, hi in itertools.pairwise(bounds))
    return out


@lru_cache(maxsize=4096)
def _pieces_cached(body: str, threshold: float) -> tuple[tuple[str, ...], int]:
    # any window at similarity >= t is at most d = 2(1-t)L/t insertions/deletions away from the
    # keyword; each breaks at most one of P disjoint pieces, so P - d of them occur intact
    d = int(2 * (1 - threshold) * len(body) / threshold + 1e-9)
    pieces = _partition(body, d + 1)
    if not pieces:
        return (), 0
    latin = all(_is_word(c) or c == " " for c in body)
    if latin and min(map(len, pieces)) < 3:
        # Latin bigrams are common: two of d + 2 shorter pieces filter better than one of d + 1
        finer = _partition(body, d + 2)
        if finer and min(map(len, finer)) >= 2:
            pieces = finer
    if latin and min(map(len, pieces)) < 2:
        return (), 0  # single letters occur everywhere: cheaper to score on every message
    need = len(pieces) - d
    if len(set(pieces)) < len(pieces):  # equal pieces: one occurrence may stand for several
        pieces, need = list(dict.fromkeys(pieces)), 1
    return tuple(pieces), max(1, need)


def _pieces(body: str, threshold: float) -> tuple[tuple[str, ...], int]:
    """Pieces of a fuzzy keyword and how many of them any similar-enough window contains intact
    (no pieces: the filter cannot be sound, run the keyword on every message)."""
    return _pieces_cached(body, round(threshold, 6))
