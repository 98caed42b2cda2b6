"""Telegram bot accounts: added by token, run on one replica each, their messages and button presses
published as channel-neutral events (issue 15)."""
