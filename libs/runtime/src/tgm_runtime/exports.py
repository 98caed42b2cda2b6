"""Tabular exports as CSV, XLSX or JSON, returned inline as an `ExportFile`.

One writer for every service that exports rows (collected users, reports, logs). A file must fit one
NATS reply, so when the encoded file would pass `inline_limit` (bytes of base64) rows are cut from the
end and the file says `truncated`: an operator gets the first part and knows it, rather than an error.

Cells are formula-safe (OWASP "CSV injection"): a text cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return (a Telegram name, a message, anything a stranger typed) is written with a leading `'`, so a
spreadsheet shows it as text instead of evaluating `=HYPERLINK(...)`. XLSX cells are always typed: text is
a string cell, never a formula; numbers, booleans and times stay what they are. JSON is data, not a sheet,
and is written unchanged.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from tgm_contracts.base import utcnow
from tgm_contracts.models.analytics import MIME_TYPES, ExportFile, ExportFormat

#: Base64 bytes a file may take inline; well under the 8 MB NATS payload of deploy/ and the embedded
#: server, leaving room for the envelope.
INLINE_LIMIT = 700_000


#: First characters a spreadsheet reads as the start of a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """`text` as a spreadsheet shows it literally: a leading `'` when it would start a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: Any) -> Any:
    """A value as a spreadsheet cell: times as ISO text, containers as JSON, None as empty, text
    formula-safe; numbers and booleans unchanged."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, str):
        return safe_text(value)
    return value


def encode(fmt: ExportFormat, columns: Sequence[str], rows: Sequence[Sequence[Any]], sheet: str) -> bytes:
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow([safe_text(c) for c in columns])
        for row in rows:
            writer.writerow(["" if v is None else cell(v) for v in row])
        # A BOM so that spreadsheet programs read UTF-8 (Chinese names, emoji) correctly.
        return ("\ufeff" + buf.getvalue()).encode("utf-8")
    if fmt == "xlsx":
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(sheet[:31] or "export")

        def typed(value: Any) -> Any:
            # openpyxl would type text starting with "=" as a formula and "#N/A" as an error: text is
            # always a string cell. Control characters XLSX cannot hold are dropped (not an error).
            value = cell(value)
            if not isinstance(value, str):
                return value
            c = WriteOnlyCell(ws, ILLEGAL_CHARACTERS_RE.sub("", value))
            c.data_type = "s"
            return c

        ws.append([typed(c) for c in columns])
        for row in rows:
            ws.append([typed(v) for v in row])
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()
    items = [{c: v for c, v in zip(columns, row, strict=False)} for row in rows]
    return json.dumps(items, ensure_ascii=False, default=str, indent=1).encode("utf-8")


def export_file(
    fmt: ExportFormat,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    name: str,
    sheet: str | None = None,
    truncated: bool = False,
    inline_limit: int = INLINE_LIMIT,
    payload: Any = None,
) -> ExportFile:
    """Encode rows as `fmt` into an inline ExportFile named `<name>-<stamp>.<fmt>`.

    `payload`, when given, is what a JSON export holds instead of the rows (a whole report object);
    CSV and XLSX always hold the rows.
    """
    rows = list(rows)

    def build(rs: list[Sequence[Any]]) -> bytes:
        if fmt == "json" and payload is not None:
            return json.dumps(payload, ensure_ascii=False, default=str, indent=1).encode("utf-8")
        return encode(fmt, columns, rs, sheet or name)

    data = build(rows)
    while len(data) * 4 // 3 > inline_limit and rows:
        # Too large for one message: cut rows (and say so) rather than fail the export.
        keep = max(0, int(len(rows) * inline_limit / (len(data) * 4 / 3)) - 1)
        rows = rows[: min(keep, len(rows) - 1)]
        data = build(rows) if payload is None or fmt != "json" else encode(fmt, columns, rows, name)
        truncated = True
    stamp = utcnow()
    return ExportFile(
        format=fmt,
        filename=f"{name}-{stamp.strftime('%Y%m%d-%H%M%S')}.{fmt}",
        mime_type=MIME_TYPES[fmt],
        rows=len(rows),
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_base64=base64.b64encode(data).decode(),
        truncated=truncated,
        generated_at=stamp,
    )
