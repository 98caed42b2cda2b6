"""HTTP client of Telegram's developer site (my.telegram.org): log in with the phone and the code
Telegram sends to the account, read the app's api_id/api_hash, or create the app.

The forms are those of the real site: `POST /auth/send_password` (phone) answers `{"random_hash"}`;
`POST /auth/login` (phone, random_hash, password=the code) answers `true` and sets the `stel_token`
cookie; `GET /apps` shows the app (api_id in `<strong>`, api_hash in an `uneditable-input` span) or
the creation form with its hidden `hash`; `POST /apps/create` creates it. The base URL is
configuration (`TGM_SESSION_DEVSITE_URL`), so the product talks to the emulator's copy offline.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Any

import httpx

from ..ports import ProxySpec

_API_ID = re.compile(r"App api_id:.*?<strong>\s*(\d+)\s*</strong>", re.S | re.I)
_API_HASH = re.compile(r"App api_hash:.*?uneditable-input[^>]*>\s*([0-9a-f]{32})\s*<", re.S | re.I)
_TITLE = re.compile(r'name="app_title"[^>]*value="([^"]*)"', re.S | re.I)
_CREATE_HASH = re.compile(r'name="hash"\s+value="([^"]+)"', re.S | re.I)
CODE_IN_MESSAGE = re.compile(r"login code:\s*\n*\s*([A-Za-z0-9_-]{4,64})", re.I)


class DevSiteError(Exception):
    """The site refused a step; the message is the site's own words where it gave any."""


@dataclass
class SiteApp:
    api_id: int
    api_hash: str
    title: str | None


def code_from_message(text: str) -> str | None:
    """The code in Telegram's 'Web login code' message, or None."""
    m = CODE_IN_MESSAGE.search(text or "")
    return m.group(1) if m else None


class DevSiteClient:
    def __init__(self, base_url: str, proxy: ProxySpec | None = None, timeout: float = 30.0) -> None:
        transport: Any = None
        if proxy is not None and proxy.type != "mtproxy":
            from httpx_socks import AsyncProxyTransport

            from .connector import proxy_url

            transport = AsyncProxyTransport.from_url(proxy_url(proxy), rdns=proxy.rdns)
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            trust_env=False,
            follow_redirects=True,
            headers={"user-agent": "Mozilla/5.0 (TG-Matrix credential scrape)"},
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, data: dict[str, str]) -> httpx.Response:
        try:
            resp = await self.http.post(path, data=data)
        except httpx.HTTPError as exc:
            raise DevSiteError(f"the site is unreachable: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise DevSiteError(f"the site answered HTTP {resp.status_code} to {path}")
        return resp

    async def send_password(self, phone: str) -> str:
        resp = await self._post("/auth/send_password", {"phone": phone})
        try:
            body = resp.json()
        except ValueError:
            raise DevSiteError(resp.text.strip()[:200] or "the site did not send a code") from None
        random_hash = body.get("random_hash") if isinstance(body, dict) else None
        if not random_hash:
            raise DevSiteError("the site did not send a code")
        return str(random_hash)

    async def login(self, phone: str, random_hash: str, code: str) -> None:
        resp = await self._post("/auth/login", {"phone": phone, "random_hash": random_hash, "password": code})
        if resp.text.strip() != "true":
            raise DevSiteError(resp.text.strip()[:200] or "the site refused the code")

    async def _apps_page(self) -> str:
        try:
            resp = await self.http.get("/apps")
        except httpx.HTTPError as exc:
            raise DevSiteError(f"the site is unreachable: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            raise DevSiteError(f"the site answered HTTP {resp.status_code} to /apps")
        return resp.text

    async def app(self) -> tuple[SiteApp | None, str | None]:
        """(the app, None) or (None, the creation form's hash)."""
        page = await self._apps_page()
        api_id, api_hash = _API_ID.search(page), _API_HASH.search(page)
        if api_id and api_hash:
            title = _TITLE.search(page)
            return SiteApp(
                int(api_id.group(1)), api_hash.group(1), html.unescape(title.group(1)) if title else None
            ), None
        form = _CREATE_HASH.search(page)
        if form is None:
            raise DevSiteError(
                "the apps page shows neither an app nor the form to create one (not logged in?)"
            )
        return None, form.group(1)

    async def create_app(
        self, form_hash: str, *, title: str, short_name: str, url: str, platform: str, description: str
    ) -> None:
        resp = await self._post(
            "/apps/create",
            {
                "hash": form_hash,
                "app_title": title,
                "app_shortname": short_name,
                "app_url": url,
                "app_platform": platform,
                "app_desc": description,
            },
        )
        text = resp.text.strip()
        if text and text.lower() not in ("true", "ok"):
            raise DevSiteError(text[:200])

    async def logout(self) -> None:
        try:
            await self.http.get("/auth/logout")
        except httpx.HTTPError:
            pass
