"""The banner of `tgm-stack up`: the admin key on a terminal only (issue 13, finding 8); every child's
health and metrics URLs (issue 17)."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

import pytest
from tgm_stack import cli
from tgm_stack.stack import Child

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]

KEY = "tgm_0123abcd_secretsecretsecret"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def child(name: str, ready_url: str) -> Child:
    service = name.rsplit("-", 1)[0] if name != "gateway" else "gateway"
    return Child(name=name, service=service, replica=0, process=None, ready_url=ready_url)  # type: ignore[arg-type]


CHILDREN = {
    "tg-session-0": child("tg-session-0", "http://127.0.0.1:41001/readyz"),
    "campaign-0": child("campaign-0", "http://127.0.0.1:41002/readyz"),
    "campaign-1": child("campaign-1", "http://127.0.0.1:41003/readyz"),
    "gateway": child("gateway", "http://127.0.0.1:8080/readyz"),
}


def banner(monkeypatch: pytest.MonkeyPatch, out: io.StringIO, tmp_path: Path) -> str:
    stack = SimpleNamespace(
        children=CHILDREN,
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


def test_every_childs_health_and_metrics_urls_are_printed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lines = banner(monkeypatch, io.StringIO(), tmp_path).splitlines()
    start = lines.index("  health and metrics (/readyz beside each /healthz):")
    rows = [line.split() for line in lines[start + 1 : start + 1 + len(CHILDREN)]]
    # the gateway first (its own port), then the services in start order, each on its health port
    assert rows == [
        ["gateway", "http://127.0.0.1:8080/healthz", "http://127.0.0.1:8080/metrics"],
        ["tg-session-0", "http://127.0.0.1:41001/healthz", "http://127.0.0.1:41001/metrics"],
        ["campaign-0", "http://127.0.0.1:41002/healthz", "http://127.0.0.1:41002/metrics"],
        ["campaign-1", "http://127.0.0.1:41003/healthz", "http://127.0.0.1:41003/metrics"],
    ]
    assert lines[start + 1 + len(CHILDREN)] == "Press Ctrl-C to stop."


def test_a_clusters_urls_are_each_redacted() -> None:
    from tgm_stack.stack import redact_url

    assert (
        redact_url("nats://u:pw@n0:4222, nats://u:pw@n1:4222") == "nats://u:***@n0:4222,nats://u:***@n1:4222"
    )
