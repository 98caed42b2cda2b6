"""TG-Matrix Tailchat channel service: bot apps, messages with markup, callback answers."""

__version__ = "0.1.0"
