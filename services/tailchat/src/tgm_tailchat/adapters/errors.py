"""What a Tailchat server's refusal means to our callers: one `ErrorCode` per known message.

The fork answers most refusals with HTTP 500 and `{name, message, code}` (plain `Error`s), so the status
alone says little: the message decides. Known messages (reference section 1.2-1.3):

- the app's credentials — "Invalid appSecret format", "Not found open app…", "Open app secret not
  match", "…not enabled capability:bot", "Bot capability is not enabled…", and any 401 — are
  `UPSTREAM_AUTH` (502): the server refused the secret TG-Matrix holds for the app, not the caller's key;
- a press answered too late — "Invalid or expired traceId" — is `CONFLICT` with "expired" in the message;
- the caller's input the server refused — a trace of another bot or user, a text too long, 'invalid
  userId', a username that is taken or malformed, a field it does not allow, 422/442 — is
  `VALIDATION_ERROR` (a username set once already is `CONFLICT`: the state refuses it);
- "Rate limit exceeded" is `RATE_LIMITED` with `retry_after` the server's 60 s window;
- 403 (not a member, no delete permission), a muted bot, a DM message of someone else: `CONFLICT`
  (the bot may not do that in that conversation now);
- 404: `NOT_FOUND` (no such message or conversation; a group channel sent without its groupId too);
- anything else, 5xx included: `UNAVAILABLE` — the server failed, not us (`INTERNAL` is our bugs only).

Messages pass through the server's i18n, so matching is on substrings of the English defaults; an
unknown (for instance translated) message falls back on the status.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import ErrorCode
from tgm_runtime import DomainError

#: (substring of the server's message, lower case) -> our code; first match wins.
KNOWN: tuple[tuple[str, ErrorCode], ...] = (
    ("invalid appsecret format", ErrorCode.UPSTREAM_AUTH),
    ("not found open app", ErrorCode.UPSTREAM_AUTH),
    ("not found openapp", ErrorCode.UPSTREAM_AUTH),
    ("open app secret not match", ErrorCode.UPSTREAM_AUTH),
    ("not enabled capability", ErrorCode.UPSTREAM_AUTH),
    ("capability is not enabled", ErrorCode.UPSTREAM_AUTH),
    ("invalid or expired traceid", ErrorCode.CONFLICT),
    ("traceid does not belong", ErrorCode.VALIDATION_ERROR),
    ("userid mismatch", ErrorCode.VALIDATION_ERROR),
    ("text too long", ErrorCode.VALIDATION_ERROR),
    ("rate limit exceeded", ErrorCode.RATE_LIMITED),
    ("already exists and cannot be modified", ErrorCode.CONFLICT),
    ("not allowed fields", ErrorCode.VALIDATION_ERROR),
    ("invalid userid", ErrorCode.VALIDATION_ERROR),
    ("username", ErrorCode.VALIDATION_ERROR),
    ("无法删除私人信息", ErrorCode.CONFLICT),
    ("muted", ErrorCode.CONFLICT),
    ("禁言", ErrorCode.CONFLICT),
)

_BY_STATUS = {
    401: ErrorCode.UPSTREAM_AUTH,
    403: ErrorCode.CONFLICT,
    404: ErrorCode.NOT_FOUND,
    408: ErrorCode.TIMEOUT,
    422: ErrorCode.VALIDATION_ERROR,
    442: ErrorCode.VALIDATION_ERROR,
    429: ErrorCode.RATE_LIMITED,
}

_HINTS = {
    ErrorCode.UPSTREAM_AUTH: "Tailchat refused the app's credentials (check the appId and secret with "
    "register-tailchat-app, and that the app has the bot capability)",
    ErrorCode.CONFLICT: "Tailchat refused it in this state",
    ErrorCode.NOT_FOUND: "Tailchat does not know it",
    ErrorCode.VALIDATION_ERROR: "Tailchat refused the request",
    ErrorCode.RATE_LIMITED: "Tailchat is rate limiting this bot",
    ErrorCode.TIMEOUT: "Tailchat timed out",
    ErrorCode.UNAVAILABLE: "Tailchat failed",
}

#: The server's callback answer window: its counter's TTL.
RATE_WINDOW_SECONDS = 60.0


class TailchatError(DomainError):
    """A Tailchat server's refusal or failure, as the envelope our caller sees."""


def upstream_message(body: Any) -> str:
    """The server's own words: `message` of `{name, message, code}`, else a short text of the body."""
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("name")
        if isinstance(msg, str):
            return msg[:300]
        if isinstance(body.get("data"), dict) and isinstance(body["data"].get("error"), str):
            return str(body["data"]["error"])[:300]
    return str(body)[:300] if body else ""


def refusal(status: int, body: Any, operation: str) -> TailchatError:
    """The error for an HTTP error answer (or a 200 whose envelope says another code)."""
    said = upstream_message(body)
    lowered = said.lower()
    code = next((c for needle, c in KNOWN if needle in lowered), None)
    if code is None:
        code = _BY_STATUS.get(status, ErrorCode.UNAVAILABLE)
    if code is ErrorCode.CONFLICT and "traceid" in lowered:
        message = (
            f"{operation}: the button press expired (Tailchat keeps a press 30 s and one answer): {said}"
        )
    else:
        message = f"{operation}: {_HINTS[code]} (HTTP {status})" + (f": {said}" if said else "")
    details: dict[str, Any] = {"upstreamStatus": status, "upstreamMessage": said}
    if code is ErrorCode.VALIDATION_ERROR and isinstance(body, dict) and isinstance(body.get("data"), list):
        details["fields"] = [
            {k: item.get(k) for k in ("field", "message", "type") if k in item}
            for item in body["data"][:20]
            if isinstance(item, dict)
        ]
    retry_after = RATE_WINDOW_SECONDS if code is ErrorCode.RATE_LIMITED else None
    return TailchatError(code, message, details, retry_after=retry_after)


def unreachable(operation: str, what: str) -> TailchatError:
    return TailchatError(ErrorCode.UNAVAILABLE, f"{operation}: cannot reach the Tailchat server ({what})")


def timed_out(operation: str, seconds: float) -> TailchatError:
    return TailchatError(ErrorCode.TIMEOUT, f"{operation}: no answer from Tailchat within {seconds:g}s")


def malformed(operation: str, what: str) -> TailchatError:
    return TailchatError(
        ErrorCode.UNAVAILABLE, f"{operation}: Tailchat answered something unexpected: {what}"
    )
