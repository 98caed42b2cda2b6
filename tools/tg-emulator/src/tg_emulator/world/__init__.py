"""The emulator's world: users, chats, channels, messages, sessions, limits and faults."""

from .model import Channel, Chat, Delivery, User
from .world import World

__all__ = ["Channel", "Chat", "Delivery", "User", "World"]
