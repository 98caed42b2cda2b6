"""Structured JSON logs with request id, trace id and account id; secrets are redacted."""

from __future__ import annotations

import contextvars
import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
account_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("account_id", default=None)

_KEY_NAMES = (
    r"api_?hash|apiHash|session(_string)?|password|passwd|secret|token|api_?key|apiKey|authorization"
    r"|phone_?code|phoneCode|master_?key"
)
# A key, a separator with optional JSON or Python-repr quotes, and the value up to a delimiter.
_SECRET_KEYS = re.compile(rf"(?i)({_KEY_NAMES})([\"']?\s*[:=]\s*[\"']?)([^\s\"',}}]+)")
_SECRET_KEY_NAME = re.compile(rf"(?i)^[a-z_]*({_KEY_NAMES})[a-z_]*$")
# A session string (Telethon's is ~350 base64 characters) or a key pasted without its name.
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{160,}")

#: The service setup_logging configured this process for (None until it is called).
_configured: str | None = None


def redact(text: str) -> str:
    text = _SECRET_KEYS.sub(lambda m: f"{m.group(1)}{m.group(3)}***", text)
    return _LONG_TOKEN.sub("[redacted long token]", text) if len(text) >= 160 else text


def redact_value(key: str, value: str) -> str:
    """A structured field's value: hidden whole when its name is a secret's, else redacted as text."""
    return "***" if _SECRET_KEY_NAME.match(key) else redact(value)


def configured_service() -> str | None:
    return _configured


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, replica: str) -> None:
        super().__init__()
        self.service, self.replica = service, replica

    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn adds its message again with ANSI colour codes as an extra field; JSON logs keep the
        # plain one only
        record.__dict__.pop("color_message", None)
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
        if not getattr(record, "_tgm_redacted", False):
            # Redact the formatted message, not the template: a secret passed as an argument
            # ("apiHash=%s", value) is only visible after formatting.
            try:
                text = record.getMessage()
            except Exception:
                text = f"{record.msg} [unformattable arguments]"
            record.msg, record.args = redact(text), None
            record._tgm_redacted = True
        return True


#: Public name of the filter, for other handlers (telemetry's shipper) that need the same context.
ContextFilter = _ContextFilter


def setup_logging(service: str, replica: str, level: str = "INFO") -> None:
    global _configured
    _configured = service
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
    # uvicorn, when anything in the process ran it with its default log config, keeps its own
    # handlers on its loggers and stops them propagating (a dictConfig may also have disabled
    # them): its lines would then skip the JSON handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate, logger.disabled = True, False
        logger.setLevel(logging.NOTSET)
