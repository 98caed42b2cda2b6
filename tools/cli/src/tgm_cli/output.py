"""How replies are shown: pretty JSON (the default when stdout is not a terminal), YAML, or rich tables.

A table is chosen by the reply's shape: a page (`{"items": [...], "nextCursor"}`) or a list of objects
is one row per item with a column per field; any other object is a field/value table. Nested values
are shown as compact JSON in their cell. Errors and notes go to stderr, so stdout stays the data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(soft_wrap=False)
err = Console(stderr=True, soft_wrap=True)


class Output(StrEnum):
    json = "json"
    table = "table"
    yaml = "yaml"


def default_output() -> Output:
    return Output.table if sys.stdout.isatty() else Output.json


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def rows_table(
    items: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, title: str | None = None
) -> Table:
    """One row per item; the given columns, or every field seen in the items, in order of appearance."""
    if columns is None:
        seen: dict[str, None] = {}
        for item in items:
            seen.update(dict.fromkeys(item))
        columns = list(seen)
    table = Table(title=title, show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name, overflow="fold")
    for item in items:
        table.add_row(*(Text(cell(_dig(item, name))) for name in columns))
    return table


def _dig(item: dict[str, Any], dotted: str) -> Any:
    """`item["a"]["b"]` for column `a.b` (None when missing)."""
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def fields_table(data: dict[str, Any], title: str | None = None) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(Text(key), Text(cell(value, 200)))
    return table


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def table_of(data: Any, title: str | None = None) -> Table | Text:
    if isinstance(data, dict) and _is_rows(data.get("items")):
        more = " (more: nextCursor)" if data.get("nextCursor") else ""
        return rows_table(data["items"], title=(title or "") + more or None)
    if _is_rows(data):
        return rows_table(data, title=title)
    if isinstance(data, dict):
        return fields_table(data, title=title)
    return Text(to_json(data))


def show(data: Any, output: Output, *, table: Table | None = None) -> None:
    """Print `data` to stdout as `output` asks (`table`: a table built for it by the caller)."""
    if output is Output.json:
        print(to_json(data))
    elif output is Output.yaml:
        import yaml  # only when asked for

        print(yaml.safe_dump(data, allow_unicode=True, sort_keys=False).rstrip())
    else:
        out.print(table if table is not None else table_of(data))
