"""Exit codes scripts can test: one per class of failure, from the gateway's error code.

| code | meaning                                                                  |
|------|--------------------------------------------------------------------------|
| 0    | success                                                                  |
| 1    | any other failure (INTERNAL, TELEGRAM_ERROR, a failed backup, a bad file) |
| 2    | the command line itself is wrong (click's usage errors)                  |
| 3    | VALIDATION_ERROR or LOGIN_REJECTED: the payload or the typed code/password was refused |
| 4    | UNAUTHORIZED or FORBIDDEN: no/invalid key, or the key's role is too low  |
| 5    | NOT_FOUND: unknown command, or what it names does not exist              |
| 6    | CONFLICT                                                                 |
| 7    | RATE_LIMITED or FLOOD_WAIT (the message says when to retry)              |
| 8    | UNAVAILABLE or TIMEOUT: gateway unreachable, no service, no answer       |

The README of `tools/cli` repeats this table; keep both in step.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    OTHER = 1
    USAGE = 2
    VALIDATION = 3
    AUTH = 4
    NOT_FOUND = 5
    CONFLICT = 6
    RATE_LIMITED = 7
    UNAVAILABLE = 8


BY_CODE: dict[str, Exit] = {
    "VALIDATION_ERROR": Exit.VALIDATION,
    "LOGIN_REJECTED": Exit.VALIDATION,
    "UNAUTHORIZED": Exit.AUTH,
    "FORBIDDEN": Exit.AUTH,
    "NOT_FOUND": Exit.NOT_FOUND,
    "CONFLICT": Exit.CONFLICT,
    "RATE_LIMITED": Exit.RATE_LIMITED,
    "FLOOD_WAIT": Exit.RATE_LIMITED,
    "UNAVAILABLE": Exit.UNAVAILABLE,
    "TIMEOUT": Exit.UNAVAILABLE,
}


def for_code(code: str) -> Exit:
    return BY_CODE.get(code, Exit.OTHER)
