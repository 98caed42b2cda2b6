"""`TelegramConnector` on Telethon and python-socks: clients, proxy probes, credential checks."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

import httpx
from telethon import functions

from ..ports import AccountClient, ConnectionSpec, ProxySpec, TelegramFailure, TelegramUnreachable
from ..settings import SessionSettings
from .adapter import TelethonAccountClient
from .client_factory import build_client, register_rsa_key

TELEGRAM_DC2 = ("149.154.167.51", 443)


class ProxyProblem(Exception):
    """A proxy test failed; `kind` is dns, connect, auth, protocol or timeout."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _classify(exc: BaseException) -> ProxyProblem:
    text = f"{type(exc).__name__}: {exc}"[:300]
    lowered = text.lower()
    if isinstance(exc, TimeoutError) or "timed out" in lowered or "timeout" in lowered:
        return ProxyProblem(text, "timeout")
    if isinstance(exc, socket.gaierror) or "name or service" in lowered or "resolve" in lowered:
        return ProxyProblem(text, "dns")
    if "auth" in lowered or "407" in lowered or "credentials" in lowered or "username" in lowered:
        return ProxyProblem(text, "auth")
    if "closed unexpectedly" in lowered or "invalid" in lowered or "unexpected" in lowered:
        return ProxyProblem(text, "protocol")  # the proxy answered, then broke the exchange off
    if type(exc).__name__ == "ProxyConnectionError" or isinstance(exc, ConnectionRefusedError):
        return ProxyProblem(text, "connect")
    if any(s in lowered for s in ("refused", "could not connect", "couldn't connect", "connect call failed")):
        return ProxyProblem(text, "connect")
    if isinstance(exc, OSError) and not type(exc).__module__.startswith(("python_socks", "telethon")):
        return ProxyProblem(text, "connect")
    return ProxyProblem(text, "protocol")


def proxy_url(proxy: ProxySpec) -> str:
    from urllib.parse import quote

    auth = ""
    if proxy.username:
        auth = quote(proxy.username, safe="")
        if proxy.password:
            auth += ":" + quote(proxy.password, safe="")
        auth += "@"
    scheme = {"socks5": "socks5", "socks4": "socks4", "http": "http"}[proxy.type]
    return f"{scheme}://{auth}{proxy.host}:{proxy.port}"


class TelethonConnector:
    def __init__(self, settings: SessionSettings, default_credential: Any = None) -> None:
        self.settings = settings
        register_rsa_key(settings.rsa_public_key_file)
        #: `async () -> (api_id, api_hash) | None`: a credential for throwaway connections.
        self.default_credential = default_credential

    @property
    def dc_address(self) -> tuple[str, int]:
        if self.settings.dc_host:
            return self.settings.dc_host, self.settings.dc_port
        return TELEGRAM_DC2

    def client(self, spec: ConnectionSpec) -> AccountClient:
        return TelethonAccountClient(
            build_client(spec, self.settings),
            spec.key,
            timeout=self.settings.request_timeout_seconds,
            has_proxy=spec.proxy is not None,
        )

    async def probe_proxy(self, proxy: ProxySpec, timeout: float) -> float:
        """Open a tunnel through the proxy to the DC; the latency in ms, or ProxyProblem."""
        host, port = self.dc_address
        started = time.perf_counter()
        try:
            if proxy.type == "mtproxy":
                # An MTProxy is only a Telegram front: a TCP connection is all we can check here;
                # test_telegram then speaks MTProto through it.
                _, writer = await asyncio.wait_for(asyncio.open_connection(proxy.host, proxy.port), timeout)
                writer.close()
            else:
                from python_socks import ProxyType
                from python_socks.async_.asyncio import Proxy

                kind = {"socks5": ProxyType.SOCKS5, "socks4": ProxyType.SOCKS4, "http": ProxyType.HTTP}
                p = Proxy(
                    kind[proxy.type],
                    proxy.host,
                    proxy.port,
                    proxy.username,
                    proxy.password,
                    rdns=proxy.rdns,
                )
                sock = await asyncio.wait_for(
                    p.connect(dest_host=host, dest_port=port, timeout=timeout), timeout
                )
                sock.close()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _classify(exc) from None
        return (time.perf_counter() - started) * 1000

    async def exit_ip(self, proxy: ProxySpec | None, timeout: float) -> str:
        """The public IP an IP echo service sees, through the proxy when given."""
        if proxy is not None and proxy.type == "mtproxy":
            raise ProxyProblem("an MTProxy only reaches Telegram; its exit IP cannot be asked", "protocol")
        transport: Any = None
        if proxy is not None:
            from httpx_socks import AsyncProxyTransport

            transport = AsyncProxyTransport.from_url(proxy_url(proxy), rdns=proxy.rdns)
        try:
            async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as http:
                resp = await http.get(self.settings.ip_echo_url)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _classify(exc) from None
        text = resp.text.strip()
        try:
            return str(ipaddress.ip_address(text.split()[0] if text else ""))
        except ValueError:
            raise ProxyProblem(f"the IP echo answered {resp.status_code} without an IP", "protocol") from None

    async def _credential(self) -> tuple[int, str]:
        if self.default_credential is not None:
            found = await self.default_credential()
            if found:
                return found
        return 1, "0" * 32

    async def test_telegram(self, proxy: ProxySpec | None, timeout: float) -> float:
        """Speak MTProto to the DC (a fresh auth key handshake) through the proxy; latency in ms."""
        api_id, api_hash = await self._credential()
        client = self.client(
            ConnectionSpec(
                key="proxy-test",
                session=None,
                api_id=api_id,
                api_hash=api_hash,
                proxy=proxy,
                receive_updates=False,
            )
        )
        started = time.perf_counter()
        try:
            await asyncio.wait_for(client.connect(), timeout)
        except TelegramFailure:
            pass  # the DC answered (e.g. API_ID_INVALID): it is reachable, which is all we ask here
        except TimeoutError:
            raise TelegramUnreachable(
                "Telegram did not answer through the proxy in time", "timeout"
            ) from None
        finally:
            await client.disconnect()
        return (time.perf_counter() - started) * 1000

    async def test_credential(self, api_id: int, api_hash: str, timeout: float) -> float:
        """Telegram accepts api_id/api_hash: `auth.exportLoginToken` checks both and changes nothing."""
        client = self.client(
            ConnectionSpec(
                key="credential-test", session=None, api_id=api_id, api_hash=api_hash, receive_updates=False
            )
        )
        started = time.perf_counter()
        try:
            await asyncio.wait_for(client.connect(), timeout)
            tc = client.client  # type: ignore[attr-defined]
            await client._invoke(  # type: ignore[attr-defined]
                functions.auth.ExportLoginTokenRequest(tc.api_id, tc.api_hash, except_ids=[])
            )
        finally:
            await client.disconnect()
        return (time.perf_counter() - started) * 1000
