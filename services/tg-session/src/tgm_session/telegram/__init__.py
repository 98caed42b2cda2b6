"""The only modules that import Telethon: building clients, calling Telegram, converting its objects."""
