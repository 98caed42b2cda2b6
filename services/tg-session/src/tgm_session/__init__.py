"""TG-Matrix tg-session service: Telegram account sessions (Telethon pools)."""

__version__ = "0.1.0"
