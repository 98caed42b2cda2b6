"""TG-Matrix Telegram emulator."""
