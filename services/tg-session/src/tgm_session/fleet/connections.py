"""Everything one connection of an account needs, assembled from its record: the decrypted session,
the pooled API credential, the proxy and the device profile. The clear values live only in the
returned `ConnectionSpec`, in memory, for as long as the connection is built."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tgm_contracts.models.session import DeviceView, ProxyConfig, ProxyView
from tgm_contracts.settings import TelegramSettings
from tgm_runtime import Conflict

from ..ports import ConnectionSpec, DeviceSpec, ProxySpec
from ..store import Doc, Repos
from ..vault import Vault

_DEVICES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "android": (
        ["Samsung Galaxy S23", "Google Pixel 8", "Xiaomi 13", "OnePlus 11", "Samsung Galaxy A54"],
        ["Android 14 (SDK 34)", "Android 13 (SDK 33)"],
        ["10.14.5 (4929)", "10.13.2 (4783)"],
    ),
    "ios": (
        ["iPhone 15", "iPhone 14 Pro", "iPhone 13", "iPhone 15 Pro Max"],
        ["iOS 17.5.1", "iOS 17.4", "iOS 16.7"],
        ["10.14 (28429)", "10.13 (28220)"],
    ),
    "desktop": (
        ["Desktop", "PC 64bit", "B550M DS3H"],
        ["Windows 11", "Windows 10"],
        ["5.2.3 x64", "5.1.7 x64"],
    ),
    "macos": (["MacBook Pro", "MacBook Air", "iMac"], ["macOS 14.5", "macOS 13.6"], ["10.14.1", "10.13"]),
    "web": (
        ["Chrome 126", "Firefox 127", "Safari 17"],
        ["Windows", "macOS", "Linux"],
        ["2.1.0 A", "2.0.3 K"],
    ),
}


def generate_device(account_id: str, given: dict[str, Any] | None, defaults: Any) -> dict[str, Any]:
    """The device an account reports; fields the operator left out are generated once, from the
    account id (so they are stable), and stored."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    platform = given.get("platform")
    out: dict[str, Any] = {"platform": platform}
    if platform in _DEVICES:
        rng = random.Random(f"device:{account_id}")
        models, systems, apps = _DEVICES[platform]
        out.update(
            device_model=rng.choice(models), system_version=rng.choice(systems), app_version=rng.choice(apps)
        )
    else:
        out.update(
            device_model=defaults.device_model,
            system_version=defaults.system_version,
            app_version=defaults.app_version,
        )
    out.update(lang_code=defaults.lang_code, system_lang_code=defaults.lang_code)
    out.update(given)
    return DeviceView.model_validate(out).model_dump(by_alias=False)


def device_spec(device: dict[str, Any] | None, defaults: Any) -> DeviceSpec:
    d = device or {}
    return DeviceSpec(
        device_model=d.get("device_model") or defaults.device_model,
        system_version=d.get("system_version") or defaults.system_version,
        app_version=d.get("app_version") or defaults.app_version,
        lang_code=d.get("lang_code") or defaults.lang_code,
        system_lang_code=d.get("system_lang_code") or d.get("lang_code") or defaults.lang_code,
    )


def proxy_spec(cfg: ProxyConfig) -> ProxySpec:
    return ProxySpec(
        type=cfg.type,
        host=cfg.host,
        port=cfg.port,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
        secret=cfg.secret.get_secret_value() if cfg.secret else None,
        rdns=cfg.rdns,
    )


def seal_proxy(vault: Vault, cfg: ProxyConfig, context: str) -> tuple[str, dict[str, Any]]:
    """(encrypted full proxy, its secret-free view) for storing on a record."""
    full = cfg.model_dump(mode="json", by_alias=True)
    return vault.seal_json(full, context), ProxyView.model_validate(
        cfg.view().model_dump(by_alias=False)
    ).model_dump(by_alias=False)


def open_proxy(vault: Vault, token: str | None, context: str) -> ProxySpec | None:
    if not token:
        return None
    return proxy_spec(ProxyConfig.model_validate(vault.open_json(token, context)))


@dataclass(eq=False)
class ConnectionBuilder:
    repos: Repos
    vault: Vault
    telegram_settings: Callable[[], Awaitable[TelegramSettings]]

    async def credential(self, credential_id: str | None) -> tuple[int, str]:
        if not credential_id:
            raise Conflict("the account has no API credential; assign one with update-account")
        cred = await self.repos.credentials.get(credential_id)
        if cred is None:
            raise Conflict(f"API credential {credential_id} no longer exists; assign another one")
        return cred["api_id"], self.vault.open(cred["api_hash_enc"], cred["_id"])

    async def for_account(
        self, doc: Doc, *, fresh: bool = False, receive_updates: bool = True
    ) -> ConnectionSpec:
        """The account's connection: its stored session (or a fresh one for a new login)."""
        session = None
        if not fresh and doc.get("session_enc"):
            session = self.vault.open(doc["session_enc"], doc["_id"])
        return await self.spec(
            key=doc["_id"],
            session=session,
            credential_id=doc.get("api_credential_id"),
            proxy_enc=doc.get("proxy_enc"),
            proxy_context=doc["_id"],
            device=doc.get("device"),
            receive_updates=receive_updates,
        )

    async def spec(
        self,
        *,
        key: str,
        session: str | None,
        credential_id: str | None,
        proxy_enc: str | None,
        proxy_context: str,
        device: dict[str, Any] | None,
        receive_updates: bool = True,
    ) -> ConnectionSpec:
        api_id, api_hash = await self.credential(credential_id)
        defaults = await self.telegram_settings()
        return ConnectionSpec(
            key=key,
            session=session,
            api_id=api_id,
            api_hash=api_hash,
            proxy=open_proxy(self.vault, proxy_enc, proxy_context),
            device=device_spec(device, defaults),
            receive_updates=receive_updates,
        )
