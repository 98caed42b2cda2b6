"""Structured JSON logs with request id, trace id and account id; secrets are redacted."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
account_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("account_id", default=None)

_SECRET_KEYS = re.compile(
    r"(?i)(api_?hash|apiHash|session(_string)?|password|passwd|secret|token|api_?key|apiKey|authorization"
    r"|phone_?code|phoneCode|master_?key)(\"?\s*[:=]\s*\"?)([^\s\",}]+)"
)


def redact(text: str) -> str:
    return _SECRET_KEYS.sub(lambda m: f"{m.group(1)}{m.group(3)}***", text)


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, replica: str) -> None:
        super().__init__()
        self.service, self.replica = service, replica

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.replica = self.replica
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        record.account_id = getattr(record, "account_id", None) or account_id_var.get()
        try:
            from opentelemetry import trace

            ctx = trace.get_current_span().get_span_context()
            record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        except Exception:
            record.trace_id = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def setup_logging(service: str, replica: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service, replica))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Telethon logs request bodies at DEBUG; never let that through.
    logging.getLogger("telethon").setLevel(max(logging.INFO, root.level))
    logging.getLogger("pymongo").setLevel(logging.WARNING)
