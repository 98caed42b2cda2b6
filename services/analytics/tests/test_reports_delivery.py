"""Deliveries: a webhook POST to a real HTTP server on loopback, Telegram through a fake of tg-session's
`send`, Tailchat through a fake of the tailchat service's `send-channel-reply`, failures recorded rather
than raised, labels without URL secrets, tailchat targets checked when saved."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tgm_analytics.reports.adapters import Deliverer, check_recipient, label
from tgm_contracts import ErrorCode
from tgm_contracts.rpc_channels import SendChannelReplyRequest
from tgm_contracts.rpc_session import SendRequest
from tgm_runtime import DomainError
from tgm_runtime.exports import export_file

pytestmark = [pytest.mark.component, pytest.mark.timeout(30)]


class Hook:
    """A loopback HTTP server that records POSTs; `/fail` answers 500, `/slow` never answers in time."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hook.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path.startswith("/slow"):
                    hook.release.wait(5)
                status = 500 if self.path.startswith("/fail") else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    h.thread.start()
    try:
        yield h
    finally:
        h.release.set()
        h.server.shutdown()
        h.server.server_close()


def a_file() -> Any:
    return export_file("csv", ["a", "b"], [[1, "x"], [2, "y"]], name="messages-report")


async def test_webhook_posts_the_file_with_its_type_and_report_headers(hook: Hook) -> None:
    sent: list[tuple[str, SendRequest, float]] = []

    async def send(account_id: str, req: SendRequest, timeout: float) -> Any:
        sent.append((account_id, req, timeout))
        return {"messageId": 1}

    file = a_file()
    out = await Deliverer(send, webhook_timeout=5).deliver(
        [
            {"kind": "webhook", "target": f"{hook.url}/in?token=s3cret", "account_id": None},
            {"kind": "telegram", "target": "@boss", "account_id": "a1"},
        ],
        file=file,
        report_id="rp_1",
        kind="messages",
        schedule_id="rs_1",
        summary="Report: x",
    )
    assert out.failed == [] and out.errors == []
    assert out.delivered == [f"webhook:{hook.url}/in", "telegram:@boss"]  # no token in the label
    [got] = hook.received
    assert got["path"] == "/in?token=s3cret" and got["body"] == base64.b64decode(file.content_base64)
    assert got["headers"]["Content-Type"] == "text/csv; charset=utf-8"
    assert got["headers"]["X-TGM-Report-Id"] == "rp_1" and got["headers"]["X-TGM-Schedule-Id"] == "rs_1"
    assert file.filename in got["headers"]["Content-Disposition"]
    [(account, req, _)] = sent
    assert (
        account == "a1" and req.peer == "@boss" and req.text == "Report: x" and req.job_id == "report-rp_1-1"
    )


async def test_failures_are_recorded_not_raised(hook: Hook) -> None:
    async def send(account_id: str, req: SendRequest, timeout: float) -> Any:
        raise DomainError(ErrorCode.CONFLICT, "account a9 is not active")

    out = await Deliverer(send, webhook_timeout=0.5).deliver(
        [
            {"kind": "webhook", "target": f"{hook.url}/fail", "account_id": None},
            {"kind": "webhook", "target": f"{hook.url}/slow", "account_id": None},
            {"kind": "webhook", "target": "http://127.0.0.1:9/closed", "account_id": None},
            {"kind": "telegram", "target": "@boss", "account_id": "a9"},
            {"kind": "webhook", "target": f"{hook.url}/ok", "account_id": None},
        ],
        file=a_file(),
        report_id="rp_2",
        kind="messages",
        schedule_id=None,
        summary="s",
    )
    hook.release.set()
    assert out.delivered == [f"webhook:{hook.url}/ok"]
    assert len(out.failed) == 4
    assert out.errors[0] == f"webhook:{hook.url}/fail: HTTP 500"
    assert out.errors[1] == f"webhook:{hook.url}/slow: no answer within 0.5 s"
    assert out.errors[2].startswith("webhook:http://127.0.0.1:9/closed: Connect")
    assert out.errors[3] == "telegram:@boss: CONFLICT account a9 is not active"


def test_labels_and_save_time_checks() -> None:
    assert (
        label({"kind": "webhook", "target": "https://u:p@h.example:8443/x/y?k=v#f"})
        == "webhook:https://h.example:8443/x/y"
    )
    for bad in ("converse-1", "app/", "app/g/p/x", "app/conv erse"):
        with pytest.raises(DomainError) as exc:
            check_recipient({"kind": "tailchat", "target": bad, "account_id": None})
        assert exc.value.code.value == "VALIDATION_ERROR" and "tailchat recipient" in exc.value.message
    check_recipient({"kind": "tailchat", "target": "app_1/c1", "account_id": None})
    check_recipient({"kind": "tailchat", "target": "app_1/g1/p1", "account_id": None})
    with pytest.raises(DomainError):
        check_recipient({"kind": "telegram", "target": "not a peer!", "account_id": "a1"})
    check_recipient({"kind": "telegram", "target": "@ops_team", "account_id": "a1"})
    check_recipient({"kind": "webhook", "target": "https://h.example/x", "account_id": None})


async def test_tailchat_posts_the_summary_once_per_report_and_recipient() -> None:
    asked: list[SendChannelReplyRequest] = []

    async def send(account_id: str, req: SendRequest, timeout: float) -> Any:
        raise AssertionError("no telegram recipient")

    async def reply(req: SendChannelReplyRequest, timeout: float) -> Any:
        asked.append(req)
        if req.app_id == "gone":
            raise DomainError(ErrorCode.NOT_FOUND, "no tailchat app gone")
        return {"messageId": "m1"}

    out = await Deliverer(send, reply=reply).deliver(
        [
            {"kind": "tailchat", "target": "app_1/g1/p1", "account_id": None},
            {"kind": "tailchat", "target": "gone/c2", "account_id": None},
            {"kind": "tailchat", "target": "bad", "account_id": None},
        ],
        file=a_file(),
        report_id="rp_3",
        kind="messages",
        schedule_id=None,
        summary="Report: y",
    )
    assert out.delivered == ["tailchat:app_1/g1/p1"]
    assert out.errors == [
        "tailchat:gone/c2: NOT_FOUND no tailchat app gone",
        "tailchat:bad: not a tailchat target (<appId>/<converseId> or <appId>/<groupId>/<panelId>)",
    ]
    first = asked[0]
    assert (first.app_id, first.group_id, first.converse_id) == ("app_1", "g1", "p1")
    assert first.text == "Report: y" and first.key == "report-rp_3-0" and asked[1].key == "report-rp_3-1"
    unwired = await Deliverer(send).deliver(
        [{"kind": "tailchat", "target": "app_1/c1", "account_id": None}],
        file=a_file(),
        report_id="rp_4",
        kind="messages",
        schedule_id=None,
        summary="s",
    )
    assert unwired.errors == ["tailchat:app_1/c1: no tailchat service is wired in this process"]
