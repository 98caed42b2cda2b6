"""Deliveries of a scheduled report besides storing it (the HTTP and account-call edge of reports).

- webhook: an HTTP POST of the file (content type = the file's mime type; `X-TGM-Report-Id`,
  `X-TGM-Report-Kind`, `X-TGM-Schedule-Id` and a Content-Disposition with the filename); a status
  of 300 or more, a timeout or a connection error is a failure.
- telegram: a short text summary sent by one of the fleet's accounts through tg-session's account
  call `send`, with a job id per report and recipient so a retried delivery is not sent twice.
- tailchat: the same short summary posted by a registered Tailchat app's bot through the tailchat
  service's `send-channel-reply`, with the key `report-<reportId>-<n>` (the service sends once per key:
  a repeated delivery answers the message already posted). The target names the app and the place:
  `<appId>/<converseId>` (a DM or any converse the bot is in) or `<appId>/<groupId>/<panelId>` (a
  group's text channel: Tailchat needs the group of a group channel).

A failure never raises: it comes back as text for the schedule's `lastError` and the `failed` list.
Recipient labels (`kind:target`) drop a webhook URL's query and credentials, which may carry tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import ValidationError
from tgm_contracts.models.analytics import ExportFile
from tgm_contracts.rpc_channels import SendChannelReply, SendChannelReplyRequest
from tgm_contracts.rpc_session import Send, SendRequest
from tgm_runtime import DomainError, Invalid, ServiceRuntime

log = logging.getLogger("tgm.analytics.reports.delivery")

#: `send(account_id, SendRequest, timeout)` -> the SendResult (raises DomainError on failure).
SendFn = Callable[[str, SendRequest, float], Awaitable[Any]]
#: `reply(SendChannelReplyRequest, timeout)` -> the ChannelMessageView (raises DomainError on failure).
ReplyFn = Callable[[SendChannelReplyRequest, float], Awaitable[Any]]


def tailchat_place(target: str) -> dict[str, str]:
    """`<appId>/<converseId>` or `<appId>/<groupId>/<panelId>` as send-channel-reply's fields."""
    parts = target.split("/")
    if len(parts) == 2 and all(parts):
        return {"appId": parts[0], "converseId": parts[1]}
    if len(parts) == 3 and all(parts):
        return {"appId": parts[0], "groupId": parts[1], "converseId": parts[2]}
    raise ValueError("a tailchat target is <appId>/<converseId> or <appId>/<groupId>/<panelId>")


def tailchat_request(target: str, text: str, key: str) -> SendChannelReplyRequest:
    return SendChannelReplyRequest.model_validate({**tailchat_place(target), "text": text, "key": key})


def label(recipient: dict[str, Any]) -> str:
    target = recipient["target"]
    if recipient["kind"] == "webhook":
        parts = urlsplit(target)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        target = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return f"{recipient['kind']}:{target}"


def check_recipient(recipient: dict[str, Any]) -> None:
    """Refuse at save time what could never be delivered."""
    kind = recipient["kind"]
    if kind == "tailchat":
        try:
            tailchat_request(recipient["target"], "check", "check")
        except (ValueError, ValidationError) as exc:
            why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise Invalid(
                f"tailchat recipient {recipient['target']!r}: {why}",
                {"recipient": {"kind": kind, "target": recipient["target"]}},
            ) from None
    if kind == "telegram":
        try:
            SendRequest(job_id="check", peer=recipient["target"], text="check")
        except ValidationError as exc:
            raise Invalid(
                f"telegram recipient {recipient['target']!r} is not a peer: {exc.errors()[0]['msg']}",
                {"recipient": recipient},
            ) from None


@dataclass
class Outcome:
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Deliverer:
    def __init__(
        self,
        send: SendFn,
        webhook_timeout: float = 15.0,
        telegram_timeout: float = 30.0,
        reply: ReplyFn | None = None,
    ) -> None:
        self.send = send
        self.reply = reply
        self.webhook_timeout = webhook_timeout
        self.telegram_timeout = telegram_timeout

    async def deliver(
        self,
        recipients: list[dict[str, Any]],
        *,
        file: ExportFile,
        report_id: str,
        kind: str,
        schedule_id: str | None,
        summary: str,
    ) -> Outcome:
        out = Outcome()
        for index, recipient in enumerate(recipients):
            name = label(recipient)
            try:
                if recipient["kind"] == "webhook":
                    await self._webhook(recipient["target"], file, report_id, kind, schedule_id)
                elif recipient["kind"] == "telegram":
                    await self._telegram(recipient, summary, f"report-{report_id}-{index}")
                else:
                    await self._tailchat(recipient["target"], summary, f"report-{report_id}-{index}")
            except DeliveryError as exc:
                out.failed.append(name)
                out.errors.append(f"{name}: {exc}")
            except DomainError as exc:
                out.failed.append(name)
                out.errors.append(f"{name}: {exc.code.value} {exc.message}")
            except Exception as exc:  # a delivery must never take the scheduler down
                log.exception("delivery to %s failed", name)
                out.failed.append(name)
                out.errors.append(f"{name}: {type(exc).__name__}")
            else:
                out.delivered.append(name)
        return out

    async def _webhook(
        self, url: str, file: ExportFile, report_id: str, kind: str, schedule_id: str | None
    ) -> None:
        headers = {
            "Content-Type": file.mime_type,
            "Content-Disposition": f'attachment; filename="{file.filename}"',
            "X-TGM-Report-Id": report_id,
            "X-TGM-Report-Kind": kind,
        }
        if schedule_id:
            headers["X-TGM-Schedule-Id"] = schedule_id
        if file.sha256:
            headers["X-TGM-Sha256"] = file.sha256
        try:
            async with httpx.AsyncClient(timeout=self.webhook_timeout, follow_redirects=False) as http:
                resp = await http.post(url, content=file.content(), headers=headers)
        except httpx.TimeoutException:
            raise DeliveryError(f"no answer within {self.webhook_timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(type(exc).__name__) from None
        if resp.status_code >= 300:
            raise DeliveryError(f"HTTP {resp.status_code}")

    async def _telegram(self, recipient: dict[str, Any], summary: str, job_id: str) -> None:
        req = SendRequest(job_id=job_id, peer=recipient["target"], text=summary, parse_mode="none")
        await self.send(recipient["account_id"], req, self.telegram_timeout)

    async def _tailchat(self, target: str, summary: str, key: str) -> None:
        if self.reply is None:
            raise DeliveryError("no tailchat service is wired in this process")
        try:
            req = tailchat_request(target, summary[:10_000], key)
        except (ValueError, ValidationError):
            raise DeliveryError(
                "not a tailchat target (<appId>/<converseId> or <appId>/<groupId>/<panelId>)"
            ) from None
        await self.reply(req, self.telegram_timeout)


class DeliveryError(Exception):
    pass


def send_via(runtime: ServiceRuntime[Any]) -> SendFn:
    """tg-session's account call `send` over the runtime's bus."""

    async def send(account_id: str, req: SendRequest, timeout: float) -> Any:
        return await runtime.request(
            Send.subject(account_id), req.model_dump(mode="json", by_alias=True), Send.Response, timeout
        )

    return send


def reply_via(runtime: ServiceRuntime[Any]) -> ReplyFn:
    """The tailchat service's `send-channel-reply` over the runtime's bus."""

    async def reply(req: SendChannelReplyRequest, timeout: float) -> Any:
        return await runtime.call(SendChannelReply, req, timeout)

    return reply
