"""Message templates: variables with defaults, spintax, and previews (plain code, no I/O).

Syntax (the contract's `models.campaign` module docstring is the reference):

- ``{first_name}`` or ``{{first_name}}``: a variable;
- ``{Hi|Hello|Hey}``: spintax, one option per recipient; options nest and may hold variables;
- ``\\{``, ``\\}``, ``\\|`` and ``\\\\``: literal characters.

Braces holding neither a variable name nor a ``|`` are an error, so a typo such as ``{first name}``
is refused when the template is saved instead of reaching a recipient verbatim. A variable with no
value and no default makes :func:`render` raise :class:`MissingVariables`: nobody receives
``Hello {first_name}``.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tgm_contracts.models.campaign import PreviewInput, TemplatePreview, TemplateVariable

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,39}$")
MAX_VARIANTS = 1_000_000
MAX_MESSAGE = 4096
ESCAPABLE = "{}|\\"


class TemplateError(ValueError):
    """The text cannot be parsed; `position` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at character {position + 1})")
        self.position = position


class MissingVariables(ValueError):
    def __init__(self, names: Sequence[str]) -> None:
        super().__init__("no value and no default for " + ", ".join(f"{{{n}}}" for n in names))
        self.names = list(names)


@dataclass(frozen=True)
class Text:
    value: str


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Spin:
    options: tuple[tuple[Node, ...], ...]


Node = Text | Var | Spin
Seq = tuple[Node, ...]


class _Parser:
    def __init__(self, source: str) -> None:
        self.s = source
        self.i = 0

    def parse(self) -> Seq:
        seq = self.sequence(depth=0)
        if self.i < len(self.s):  # a stray `}` or `|` at the top level
            ch = self.s[self.i]
            raise TemplateError(f"unexpected {ch!r} outside braces (escape it as \\{ch})", self.i)
        return seq

    def sequence(self, depth: int) -> Seq:
        nodes: list[Node] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                nodes.append(Text("".join(buf)))
                buf.clear()

        s = self.s
        while self.i < len(s):
            ch = s[self.i]
            if ch == "\\" and self.i + 1 < len(s) and s[self.i + 1] in ESCAPABLE:
                buf.append(s[self.i + 1])
                self.i += 2
            elif ch == "{":
                flush()
                nodes.append(self.braces(depth))
            elif ch in "}|":
                if depth == 0:
                    break
                flush()
                return tuple(nodes)
            else:
                buf.append(ch)
                self.i += 1
        flush()
        return tuple(nodes)

    def braces(self, depth: int) -> Node:
        s, start = self.s, self.i
        if s.startswith("{{", start):
            end = s.find("}}", start + 2)
            name = s[start + 2 : end].strip() if end != -1 else ""
            if end != -1 and NAME.match(name):
                self.i = end + 2
                return Var(name)
        self.i += 1
        options: list[Seq] = []
        while True:
            options.append(self.sequence(depth + 1))
            if self.i >= len(s):
                raise TemplateError("unclosed '{'", start)
            ch = s[self.i]
            self.i += 1
            if ch == "}":
                break
        if len(options) == 1:
            only = options[0]
            if len(only) == 1 and isinstance(only[0], Var | Spin):  # redundant braces: {{Hi|Hello}}
                return only[0]
            name = only[0].value.strip() if len(only) == 1 and isinstance(only[0], Text) else ""
            if NAME.match(name):
                return Var(name)
            raw = s[start : self.i]
            raise TemplateError(
                f"{raw!r} is neither a variable name nor spintax with '|' (escape braces as \\{{ \\}})",
                start,
            )
        return Spin(tuple(options))


def parse(source: str) -> Seq:
    """Parse a template; raises TemplateError."""
    return _Parser(source).parse()


def variables(seq: Seq) -> list[str]:
    """Variable names used anywhere (any spintax branch), in order of first appearance."""
    out: dict[str, None] = {}

    def walk(nodes: Seq) -> None:
        for n in nodes:
            if isinstance(n, Var):
                out.setdefault(n.name, None)
            elif isinstance(n, Spin):
                for option in n.options:
                    walk(option)

    walk(seq)
    return list(out)


def variants(seq: Seq) -> int:
    """Distinct spintax combinations (capped at MAX_VARIANTS)."""
    total = 1
    for n in seq:
        if isinstance(n, Spin):
            total *= min(MAX_VARIANTS, sum(variants(o) for o in n.options))
            total = min(total, MAX_VARIANTS)
    return total


def render(seq: Seq, values: Mapping[str, str], rng: random.Random, *, missing: str = "raise") -> str:
    """Render with `values` (already merged with defaults). `missing="raise"` raises MissingVariables
    naming every missing variable of the chosen branches; `missing="keep"` leaves `{name}` (previews)."""
    out: list[str] = []
    absent: list[str] = []

    def walk(nodes: Seq) -> None:
        for n in nodes:
            if isinstance(n, Text):
                out.append(n.value)
            elif isinstance(n, Var):
                value = values.get(n.name)
                if value is None:
                    if n.name not in absent:
                        absent.append(n.name)
                    out.append("{" + n.name + "}")
                else:
                    out.append(value)
            else:
                walk(n.options[rng.randrange(len(n.options))])

    walk(seq)
    if absent and missing == "raise":
        raise MissingVariables(absent)
    return "".join(out)


def seeded(key: str) -> random.Random:
    """A generator fixed by `key` (a job id), so rendering a job again gives the same text."""
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def merge_values(
    declared: Sequence[TemplateVariable], *layers: Mapping[str, str | None] | None
) -> dict[str, str]:
    """Values by precedence: the first layer that has a non-empty value wins, then the declared
    default. Layers: the job's variables, the recipient, the context."""
    merged: dict[str, str] = {}
    for layer in layers:
        for k, v in (layer or {}).items():
            if v not in (None, "") and k not in merged:
                merged[k] = str(v)
    for var in declared:
        if var.name not in merged and var.default is not None:
            merged[var.name] = var.default
    return merged


def recipient_values(
    first_name: str | None = None, last_name: str | None = None, username: str | None = None
) -> dict[str, str | None]:
    full = " ".join(p for p in (first_name, last_name) if p) or None
    return {
        "first_name": first_name,
        "last_name": last_name,
        "full_name": full,
        "username": f"@{username}" if username else None,
    }


#: Variables that are facts about the recipient (what the product may learn: `recipients.py`).
RECIPIENT_FACTS = frozenset(recipient_values())


def preview(
    content: str,
    declared: Sequence[TemplateVariable],
    sample: PreviewInput,
    context: Mapping[str, str | None] | None = None,
) -> TemplatePreview:
    """Render `sample.samples` times for a sample recipient; raises TemplateError on bad syntax."""
    seq = parse(content)
    used = variables(seq)
    recipient = sample.recipient
    rvalues = (
        recipient_values(recipient.first_name, recipient.last_name, recipient.username)
        if recipient is not None
        else {}
    )
    values = merge_values(declared, sample.variables, rvalues, context)
    missing = [n for n in used if n not in values]
    rng = random.Random(sample.seed) if sample.seed is not None else random.Random()
    samples = [render(seq, values, rng, missing="keep") for _ in range(sample.samples)]
    warnings: list[str] = []
    longest = max((len(s) for s in samples), default=0)
    if longest > MAX_MESSAGE:
        warnings.append(f"a rendering is {longest} characters; Telegram accepts at most {MAX_MESSAGE}")
    facts = [n for n in missing if n in RECIPIENT_FACTS]
    others = [n for n in missing if n not in RECIPIENT_FACTS]
    if facts:
        warnings.append(
            "a real send waits (missing_variable) while nobody knows the recipient's " + ", ".join(facts)
        )
    if others:
        warnings.append("a real send fails (template_error) without values for " + ", ".join(others))
    unused = [v.name for v in declared if v.name not in used]
    if unused:
        warnings.append("declared but not used: " + ", ".join(unused))
    if any(not s.strip() for s in samples):
        warnings.append("a rendering is empty")
    return TemplatePreview(
        samples=samples,
        variables_used=used,
        missing_variables=missing,
        variants=variants(seq),
        min_length=min((len(s) for s in samples), default=0),
        max_length=longest,
        warnings=warnings,
    )
