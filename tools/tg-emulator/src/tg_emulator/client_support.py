"""Pointing the real Telethon at the emulator.

A product (e.g. tg-session) that should talk to the emulator instead of Telegram needs three
things, all done here:

1. the emulator's RSA public key registered with Telethon (:func:`register_emulator_key`),
2. the session's data centre set to the emulator: ``session.set_dc(2, host, port)``,
3. in tests, ``flood_sleep_threshold=0`` and ``request_retries=1`` so errors surface at once.
"""

from __future__ import annotations

from typing import Any

from .keys import PUBLIC_KEY_PEM

EMULATOR_DC_ID = 2
DEFAULT_API_ID = 1
DEFAULT_API_HASH = "0123456789abcdef0123456789abcdef"

_registered = False


def register_emulator_key() -> None:
    """Register the emulator's test-only RSA key with Telethon (idempotent, process-wide).

    Telegram's own keys stay registered, so the same process can still talk to real Telegram.
    """
    global _registered
    if _registered:
        return
    from telethon.crypto import rsa

    rsa.add_key(PUBLIC_KEY_PEM, old=False)
    _registered = True


def point_session_at(session: Any, host: str, port: int) -> None:
    """Make a Telethon session (StringSession, SQLiteSession, ...) use the emulator's address."""
    session.set_dc(EMULATOR_DC_ID, host, port)


def make_client(
    host: str,
    port: int,
    session: str | Any | None = None,
    *,
    api_id: int = DEFAULT_API_ID,
    api_hash: str = DEFAULT_API_HASH,
    **kwargs: Any,
):
    """A ``TelegramClient`` pointed at the emulator, tuned for tests (errors raised, not slept on).

    ``session`` is a StringSession string, a Telethon session object, or None for a fresh one.
    Extra keyword arguments go to ``TelegramClient`` and override the defaults.
    """
    from telethon import TelegramClient
    from telethon.sessions import StringSession

    register_emulator_key()
    if session is None or isinstance(session, str):
        session = StringSession(session or "")
    point_session_at(session, host, port)
    options: dict[str, Any] = dict(
        flood_sleep_threshold=0,
        request_retries=1,
        connection_retries=3,
        retry_delay=0.2,
        timeout=5,
        catch_up=False,
        device_model="tg-emulator-test",
        system_version="1.0",
        app_version="1.0",
    )
    options.update(kwargs)
    return TelegramClient(session, api_id, api_hash, **options)
