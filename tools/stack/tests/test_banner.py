"""The banner of `tgm-stack up`: the admin key on a terminal only (issue 13, finding 8)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from tgm_stack import cli

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

KEY = "tgm_0123abcd_secretsecretsecret"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def banner(monkeypatch: pytest.MonkeyPatch, out: io.StringIO, tmp_path: Path) -> str:
    stack = SimpleNamespace(
        admin_key=KEY,
        admin_key_file=tmp_path / "admin.key",
        gateway_url="http://127.0.0.1:8080",
        nats_url="nats://127.0.0.1:4222",
        nats=object(),
        mongodb_uri="mongodb://127.0.0.1:27017",
        mongo=object(),
        logs_dir=tmp_path / "logs",
    )
    monkeypatch.setattr(cli.sys, "stdout", out)
    cli._print_banner(stack)  # type: ignore[arg-type]
    return out.getvalue()


def test_the_key_is_printed_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert KEY in banner(monkeypatch, Terminal(), tmp_path)


def test_piped_or_logged_the_banner_names_the_file_not_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = banner(monkeypatch, io.StringIO(), tmp_path)
    assert KEY not in text and str(tmp_path / "admin.key") in text and "not a terminal" in text
