"""Building one `TelegramClient` per account: its StringSession, data centre, proxy, device and API
credential. Flood waits are raised, never slept on (`flood_sleep_threshold=0`). The session is a
`PeerSession` (a StringSession that remembers the peers it learns: `fleet/peers.py`)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from telethon import TelegramClient
from telethon.network import ConnectionTcpFull, ConnectionTcpMTProxyRandomizedIntermediate

from ..ports import ConnectionSpec, ProxySpec
from ..settings import SessionSettings
from .peer_session import PeerSession

log = logging.getLogger("tgm.session.telegram")

_keys_lock = threading.Lock()
_registered: set[str] = set()


def register_rsa_key(path: Path | None) -> None:
    """Register the DC's RSA public key (the emulator's); Telegram's own stay registered."""
    if path is None:
        return
    pem = Path(path).read_text()
    with _keys_lock:
        if pem in _registered:
            return
        from telethon.crypto import rsa

        rsa.add_key(pem, old=False)
        _registered.add(pem)


def telethon_proxy(proxy: ProxySpec | None) -> tuple[Any, Any]:
    """(connection class, proxy argument) for TelegramClient."""
    if proxy is None:
        return ConnectionTcpFull, None
    if proxy.type == "mtproxy":
        return ConnectionTcpMTProxyRandomizedIntermediate, (proxy.host, proxy.port, proxy.secret or "")
    return ConnectionTcpFull, {
        "proxy_type": proxy.type,
        "addr": proxy.host,
        "port": proxy.port,
        "username": proxy.username,
        "password": proxy.password,
        "rdns": proxy.rdns,
    }


def build_client(spec: ConnectionSpec, settings: SessionSettings) -> TelegramClient:
    session = PeerSession(spec.session or "")
    if settings.dc_host:
        # Where Telegram lives is configuration: stored sessions follow it too.
        session.set_dc(session.dc_id or settings.dc_id, settings.dc_host, settings.dc_port)
    connection, proxy = telethon_proxy(spec.proxy)
    device: dict[str, Any] = {}
    if spec.device is not None:
        device = {
            "device_model": spec.device.device_model,
            "system_version": spec.device.system_version,
            "app_version": spec.device.app_version,
            "lang_code": spec.device.lang_code,
            "system_lang_code": spec.device.system_lang_code,
        }
    return TelegramClient(
        session,
        spec.api_id or 1,
        spec.api_hash or "0" * 32,
        connection=connection,
        proxy=proxy,
        flood_sleep_threshold=0,
        request_retries=2,
        connection_retries=settings.connection_retries,
        retry_delay=1,
        auto_reconnect=True,
        timeout=10,
        catch_up=False,
        receive_updates=spec.receive_updates,
        base_logger=logging.getLogger("telethon"),
        **device,
    )
