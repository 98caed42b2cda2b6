"""TG-Matrix Telegram emulator: a fake Telegram DC on loopback for the real Telethon."""

from .client_support import make_client, point_session_at, register_emulator_key
from .emulator import Emulator
from .limits import Limits, RateLimit
from .world import World

__all__ = [
    "Emulator",
    "Limits",
    "RateLimit",
    "World",
    "make_client",
    "point_session_at",
    "register_emulator_key",
]
