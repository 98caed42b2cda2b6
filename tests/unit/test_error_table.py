"""The root README's error table is the product's: every `ErrorCode` appears in it once, with the HTTP
status the gateway really answers for it (`HTTP_STATUS`), and it names no code that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tgm_contracts import HTTP_STATUS, ErrorCode

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\s*\|\s*`([A-Z_]+)`\s*\|\s*(\d{3})\s*\|", re.MULTILINE)


def test_every_error_code_is_in_the_readme_table_with_its_status() -> None:
    rows = ROW.findall(README.read_text())
    codes = [code for code, _ in rows]
    assert len(codes) == len(set(codes)), f"a code is listed twice: {codes}"
    table = {code: int(status) for code, status in rows}
    assert set(table) == {c.value for c in ErrorCode}, (
        f"missing: {sorted({c.value for c in ErrorCode} - set(table))}, unknown: "
        f"{sorted(set(table) - {c.value for c in ErrorCode})}"
    )
    assert table == {c.value: HTTP_STATUS[c] for c in ErrorCode}


def test_the_body_limit_and_malformed_json_statuses_are_named() -> None:
    text = README.read_text()
    row = next(line for line in text.splitlines() if line.strip().startswith("| `VALIDATION_ERROR`"))
    assert "413" in row and "400" in row
