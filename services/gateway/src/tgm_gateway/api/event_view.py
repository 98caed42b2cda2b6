"""What an event pushed over the WebSocket shows to whom (issue 13): the rules, decided here.

Operators and admins see every event as published. A **viewer** (dashboards, a wallboard, a
read-only teammate) sees every event too — the counts, states and ids a screen needs — but not what
people wrote, nor how to reach them:

- message texts are blanked (`null`): the fields in `TEXT_FIELDS` anywhere in the event (a message's
  `text`, a suggested reply, previews), and an `operator-notified` event's `message` (a rule's notice
  quotes the message that fired it);
- login material is blanked: a pending QR login's `qrUrl` (whoever scans it first signs in), a 2FA
  `passwordHint`;
- phone numbers are masked to their first three digits and last two (`+886*******78`): enough to tell
  two accounts apart on a screen, not to call anyone.

Everything else (ids, states, counts, errors, names of groups) is shown as is. The rules walk nested
objects and lists, so an event that carries a message inside another object is covered too. A new
event field holding people's words must be added to `TEXT_FIELDS`; `tests/test_event_view.py` walks
every declared event and fails on a string field named like text that is not listed.
"""

from __future__ import annotations

from typing import Any

from tgm_contracts import Role

#: Fields (camelCase, as on the wire) that hold what people wrote or will be sent.
TEXT_FIELDS = frozenset(
    {"text", "rawText", "textPreview", "messagePreview", "caption", "replyText", "snippet"}
)
#: Fields that would let a viewer sign in as an account.
LOGIN_FIELDS = frozenset({"qrUrl", "passwordHint"})
PHONE_FIELDS = frozenset({"phone", "phoneNumber"})
#: Events whose `message` is people's words rather than a status line.
MESSAGE_IS_TEXT = frozenset({"operator-notified"})


def mask_phone(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    digits = [c for c in value if c.isdigit()]
    if len(digits) <= 5:
        return "*" * len(digits)
    return (
        ("+" if value.startswith("+") else "")
        + "".join(digits[:3])
        + "*" * (len(digits) - 5)
        + "".join(digits[-2:])
    )


def _redact(value: Any, hide: frozenset[str]) -> Any:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in hide:
                out[k] = None
            elif k in PHONE_FIELDS:
                out[k] = mask_phone(v)
            else:
                out[k] = _redact(v, hide)
        return out
    if isinstance(value, list):
        return [_redact(v, hide) for v in value]
    return value


def for_role(role: Role, event: str, data: Any) -> Any:
    """The event's data as `role` may see it."""
    if role >= Role.OPERATOR:
        return data
    hide = TEXT_FIELDS | LOGIN_FIELDS
    if event in MESSAGE_IS_TEXT:
        hide = hide | {"message"}
    return _redact(data, hide)
