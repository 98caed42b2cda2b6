"""tgm: the TG-Matrix command line, a client of the gateway's public API only (HTTP and WebSocket)."""

__version__ = "0.1.0"
