"""Tabular exports as CSV, XLSX or JSON, as an `ExportFile`: inline when small, else a file in the
JetStream object store that the gateway serves.

One writer for every service that exports rows (collected users, reports, logs). `Exports.file` encodes
the whole file (off the event loop); one that fits a NATS reply (`inline_limit`, bytes of base64) travels
inline, a larger one is put in the `tgm_exports` object store under `<least role>/<id>/<filename>` and the
reply names it (`objectName`): the caller downloads it from the gateway, `GET /api/v1/exports/<objectName>`,
with a key of at least that role, for a day (the store's TTL). Only a file past `max_bytes` (256 MB by
default, `TGM_EXPORT_MAX_BYTES`) is cut, from the end, and says `truncated`. `export_file` is the inline
writer alone (for a caller without a store), cutting at the inline limit the same way.

Cells are formula-safe (OWASP "CSV injection"): a text cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return (a Telegram name, a message, anything a stranger typed) is written with a leading `'`, so a
spreadsheet shows it as text instead of evaluating `=HYPERLINK(...)`. XLSX cells are always typed: text is
a string cell, never a formula; numbers, booleans and times stay what they are. JSON is data, not a sheet,
and is written unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from tgm_contracts import Role
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


def _stamped(name: str, fmt: ExportFormat) -> tuple[str, datetime]:
    stamp = utcnow()
    return f"{name}-{stamp.strftime('%Y%m%d-%H%M%S')}.{fmt}", stamp


def _fit(
    fmt: ExportFormat,
    columns: Sequence[str],
    rows: list[Sequence[Any]],
    *,
    name: str,
    sheet: str | None,
    payload: Any,
    limit: int,
) -> tuple[bytes, list[Sequence[Any]], bool]:
    """The encoded file and the rows it holds, cut from the end until it is at most `limit` bytes."""

    def build(rs: list[Sequence[Any]]) -> bytes:
        if fmt == "json" and payload is not None:
            return json.dumps(payload, ensure_ascii=False, default=str, indent=1).encode("utf-8")
        return encode(fmt, columns, rs, sheet or name)

    data = build(rows)
    truncated = False
    while len(data) > limit and rows:
        # Too large: cut rows (and say so) rather than fail the export.
        keep = max(0, int(len(rows) * limit / len(data)) - 1)
        rows = rows[: min(keep, len(rows) - 1)]
        data = build(rows) if payload is None or fmt != "json" else encode(fmt, columns, rows, name)
        truncated = True
    return data, rows, truncated


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
    data, kept, cut = _fit(
        fmt, columns, list(rows), name=name, sheet=sheet, payload=payload, limit=inline_limit * 3 // 4
    )
    filename, stamp = _stamped(name, fmt)
    return ExportFile(
        format=fmt,
        filename=filename,
        mime_type=MIME_TYPES[fmt],
        rows=len(kept),
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content_base64=base64.b64encode(data).decode(),
        truncated=truncated or cut,
        generated_at=stamp,
    )


#: The largest export file put in the object store; rows past it are cut and the file says so.
MAX_EXPORT_BYTES = 256 * 1024 * 1024


class Exports:
    """A service's export writer: `store` opens the `tgm_exports` object store (the runtime's
    `object_store(streams.EXPORTS)`), called only for a file too large to send inline. Without a
    store (`Exports()`, for a use case built without a runtime) every file is inline, cut to fit."""

    def __init__(
        self,
        store: Callable[[], Awaitable[Any]] | None = None,
        *,
        inline_limit: int = INLINE_LIMIT,
        max_bytes: int = MAX_EXPORT_BYTES,
    ) -> None:
        self.store, self.inline_limit, self.max_bytes = store, inline_limit, max_bytes

    async def file(
        self,
        fmt: ExportFormat,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        name: str,
        role: Role,
        sheet: str | None = None,
        truncated: bool = False,
        payload: Any = None,
    ) -> ExportFile:
        """The export of `rows`; `role` is the least role that may download it (the command's)."""
        if self.store is None:
            return export_file(
                fmt, columns, rows, name=name, sheet=sheet, truncated=truncated,
                inline_limit=self.inline_limit, payload=payload,
            )  # fmt: skip
        data, kept, cut = await asyncio.to_thread(
            _fit, fmt, columns, list(rows), name=name, sheet=sheet, payload=payload, limit=self.max_bytes
        )
        filename, stamp = _stamped(name, fmt)
        common: dict[str, Any] = {
            "format": fmt,
            "filename": filename,
            "mime_type": MIME_TYPES[fmt],
            "rows": len(kept),
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "truncated": truncated or cut,
            "generated_at": stamp,
        }
        if len(data) * 4 // 3 + 4 <= self.inline_limit:
            return ExportFile(**common, content_base64=base64.b64encode(data).decode())
        object_name = f"{role.label}/{uuid.uuid4().hex}/{filename}"
        store = await self.store()
        await store.put(object_name, data)
        return ExportFile(**common, object_name=object_name)


def export_role(object_name: str) -> Role | None:
    """The least role that may download an object of the export store (None: not an export name)."""
    label, _, rest = object_name.partition("/")
    if not rest or label not in ("viewer", "operator", "admin"):
        return None
    return Role.parse(label)
