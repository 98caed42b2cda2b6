"""RPC errors the emulator answers, with Telegram's error codes."""

from __future__ import annotations

import re

# Telegram's error code for each error message the emulator produces (X = seconds).
ERROR_CODES: dict[str, int] = {
    "FLOOD_WAIT_X": 420,
    "SLOWMODE_WAIT_X": 420,
    "FROZEN_METHOD_INVALID": 420,
    "PEER_FLOOD": 400,
    "AUTH_KEY_UNREGISTERED": 401,
    "SESSION_PASSWORD_NEEDED": 401,
    "USER_DEACTIVATED_BAN": 401,
    "USER_DEACTIVATED": 401,
    "SESSION_REVOKED": 401,
    "AUTH_KEY_DUPLICATED": 406,
    "CHANNELS_TOO_MUCH": 400,
    "USER_PRIVACY_RESTRICTED": 403,
    "CHAT_WRITE_FORBIDDEN": 403,
    "CHAT_ADMIN_REQUIRED": 400,
    "CHANNEL_PRIVATE": 406,
    "USERNAME_NOT_OCCUPIED": 400,
    "USERNAME_OCCUPIED": 400,
    "USERNAME_INVALID": 400,
    "USERNAME_NOT_MODIFIED": 400,
    "PHONE_CODE_INVALID": 400,
    "PHONE_CODE_EXPIRED": 400,
    "PHONE_CODE_EMPTY": 400,
    "PHONE_CODE_HASH_EMPTY": 400,
    "PHONE_NUMBER_INVALID": 400,
    "PHONE_NUMBER_BANNED": 400,
    "PHONE_NUMBER_OCCUPIED": 400,
    "PASSWORD_HASH_INVALID": 400,
    "SRP_ID_INVALID": 400,
    "PEER_ID_INVALID": 400,
    "USER_ID_INVALID": 400,
    "CHAT_ID_INVALID": 400,
    "CHANNEL_INVALID": 400,
    "MESSAGE_EMPTY": 400,
    "MESSAGE_TOO_LONG": 400,
    "RANDOM_ID_DUPLICATE": 500,
    "INVITE_HASH_INVALID": 400,
    "INVITE_HASH_EXPIRED": 400,
    "USER_ALREADY_PARTICIPANT": 400,
    "USER_NOT_PARTICIPANT": 400,
    "USERS_TOO_FEW": 400,
    "CHAT_TITLE_EMPTY": 400,
    "FIRSTNAME_INVALID": 400,
    "ABOUT_TOO_LONG": 400,
    "QUERY_TOO_SHORT": 400,
    "AUTH_TOKEN_INVALID": 400,
    "AUTH_TOKEN_EXPIRED": 400,
    "AUTH_TOKEN_ALREADY_ACCEPTED": 400,
    "API_ID_INVALID": 400,
    "LIMIT_INVALID": 400,
    "INPUT_METHOD_INVALID": 400,
    "INPUT_CONSTRUCTOR_INVALID": 400,
    "INTERNAL": 500,
    "RPC_CALL_FAIL": 500,
    "TIMEOUT": 500,
}

_ERROR_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def code_for(message: str) -> int:
    """Telegram's error code for an error message (``FLOOD_WAIT_17`` -> 420); 400 if unknown."""
    if message in ERROR_CODES:
        return ERROR_CODES[message]
    generic = re.sub(r"_\d+$", "_X", message)
    return ERROR_CODES.get(generic, 400)


class RpcFail(Exception):
    """Raised by handlers and limits: answered to the client as an ``rpc_error``."""

    def __init__(self, message: str, code: int | None = None) -> None:
        if not _ERROR_RE.match(message):
            raise ValueError(f"RPC error messages are UPPER_SNAKE_CASE, got {message!r}")
        self.message = message
        self.code = code if code is not None else code_for(message)
        super().__init__(f"{self.code} {message}")
