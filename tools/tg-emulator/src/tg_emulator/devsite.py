"""The developer site (my.telegram.org) of the emulated Telegram, over HTTP on loopback.

Modelled on the real site's forms, so a client written against this one works against the real one:

- ``POST /auth/send_password`` (``phone``) answers ``{"random_hash": "…"}`` and makes Telegram's
  service account (777000) send the account a "Web login code" message with the code;
- ``POST /auth/login`` (``phone``, ``random_hash``, ``password`` = the code) answers ``true`` and
  sets the ``stel_token`` cookie (``Invalid confirmation code!`` otherwise);
- ``GET /apps`` shows the account's app (api_id in ``<strong>``, api_hash in an ``uneditable-input``
  span) or, when it has none, the "Create new application" form with its hidden ``hash``;
- ``POST /apps/create`` (``hash``, ``app_title``, ``app_shortname``, ``app_url``, ``app_platform``,
  ``app_desc``) creates it; ``GET /auth/logout`` ends the site session.

One addition the real site does not have: ``GET /ip`` answers the caller's address as plain text,
an IP echo so that exit-IP checks (through a proxy) can run offline.

Apps created here are kept per user in :attr:`DevSite.apps`; if the world restricts apps
(``world.apps`` not empty), a new app is registered there too, so its api_id works for MTProto.
"""

from __future__ import annotations

import html
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .world import World
from .world.world import normalize_phone

if TYPE_CHECKING:
    from multidict import MultiDictProxy

COOKIE = "stel_token"
CODE_ALPHABET = string.ascii_letters + string.digits


@dataclass
class SiteApp:
    api_id: int
    api_hash: str
    title: str
    short_name: str
    url: str = ""
    platform: str = "desktop"
    description: str = ""


@dataclass
class PendingCode:
    user_id: int
    code: str
    expires: float
    attempts: int = 0


@dataclass
class DevSite:
    """``async with DevSite(world) as site:`` serves on ``site.url`` (port 0 picks a free one)."""

    world: World
    host: str = "127.0.0.1"
    port: int = 0
    code_ttl: float = 600.0
    #: Codes a phone may ask for per hour ("Sorry, too many tries").
    max_codes_per_hour: int = 5
    apps: dict[int, SiteApp] = field(default_factory=dict)
    #: Every request: {"method", "path", "ip"} (tests check where traffic came from).
    requests: list[dict[str, Any]] = field(default_factory=list)
    _pending: dict[tuple[str, str], PendingCode] = field(default_factory=dict)
    _sessions: dict[str, int] = field(default_factory=dict)
    _form_hashes: dict[str, int] = field(default_factory=dict)
    _asked: dict[str, list[float]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    _next_api_id: int = 20_000_001

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- lifecycle ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._index)
        app.router.add_get("/auth", self._index)
        app.router.add_post("/auth/send_password", self._send_password)
        app.router.add_post("/auth/login", self._login)
        app.router.add_get("/auth/logout", self._logout)
        app.router.add_get("/apps", self._apps)
        app.router.add_post("/apps/create", self._create)
        app.router.add_get("/ip", self._ip)
        return app

    async def start(self) -> DevSite:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DevSite:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- helpers for tests -------------------------------------------------------------------------

    def app_of(self, user: Any) -> SiteApp | None:
        return self.apps.get(self.world.user(user).id)

    def add_app(self, user: Any, title: str = "Existing app", short_name: str = "existing") -> SiteApp:
        """Give a user an app that already exists (the scrape then reads it instead of creating one)."""
        u = self.world.user(user)
        app = self._new_app(title, short_name, "", "desktop", "")
        self.apps[u.id] = app
        return app

    def last_code(self, phone: str) -> str | None:
        digits = normalize_phone(phone)
        found = [p for (ph, _), p in self._pending.items() if ph == digits]
        return found[-1].code if found else None

    # --- pages -------------------------------------------------------------------------------------

    def _note(self, request: web.Request) -> None:
        self.requests.append({"method": request.method, "path": request.path, "ip": request.remote})

    async def _index(self, request: web.Request) -> web.Response:
        self._note(request)
        body = (
            "<html><head><title>Telegram Apps</title></head><body>"
            '<form id="my_login_form"><input type="text" name="phone" id="my_login_phone"/>'
            '<input type="text" name="password" id="my_password"/></form></body></html>'
        )
        return web.Response(text=body, content_type="text/html")

    async def _ip(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.Response(text=request.remote or "", content_type="text/plain")

    async def _send_password(self, request: web.Request) -> web.Response:
        _form, phone = await self._phone_form(request)
        if phone is None:
            return web.Response(text="Invalid phone number")
        user = self.world.user_by_phone(phone)
        if user is None or user.deleted or user.banned:
            return web.Response(text="Invalid phone number")
        now = time.time()
        asked = [t for t in self._asked.get(phone, []) if t > now - 3600]
        if len(asked) >= self.max_codes_per_hour:
            return web.Response(text="Sorry, too many tries. Please try again later.")
        self._asked[phone] = [*asked, now]
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(11))
        random_hash = secrets.token_hex(9)
        self._pending[(phone, random_hash)] = PendingCode(user.id, code, now + self.code_ttl)
        name = user.first_name or "user"
        text = (
            f"Web login code. Dear {name}, we received a request from your account to log in on "
            f"my.telegram.org. This is your login code:\n{code}\n\n"
            "Do not give this code to anyone, even if they say they're from Telegram! This code can be "
            "used to delete your Telegram account. We never ask to send it anywhere.\n"
            "If you didn't request this code by trying to log in on my.telegram.org, simply ignore this message."
        )
        self.world.post(self.world.service_user, user, text)
        return web.Response(text=json.dumps({"random_hash": random_hash}), content_type="application/json")

    async def _login(self, request: web.Request) -> web.Response:
        form, phone = await self._phone_form(request)
        if phone is None:
            return web.Response(text="Invalid phone number")
        key = (phone, str(form.get("random_hash", "")))
        pending = self._pending.get(key)
        if pending is None or time.time() > pending.expires:
            self._pending.pop(key, None)
            return web.Response(text="Invalid confirmation code!")
        if str(form.get("password", "")) != pending.code:
            pending.attempts += 1
            if pending.attempts >= 3:
                self._pending.pop(key, None)
            return web.Response(text="Invalid confirmation code!")
        del self._pending[key]
        token = secrets.token_urlsafe(24)
        self._sessions[token] = pending.user_id
        resp = web.Response(text="true")
        resp.set_cookie(COOKIE, token, httponly=True)
        return resp

    async def _phone_form(self, request: web.Request) -> tuple[MultiDictProxy, str | None]:
        """The posted form and its phone number, normalized (None when it is not one)."""
        self._note(request)
        form = await request.post()
        try:
            return form, normalize_phone(str(form.get("phone", "")))
        except Exception:
            return form, None

    def _logged_in(self, request: web.Request) -> int:
        """The user id of the request's site session; without one, a redirect to the login page."""
        self._note(request)
        uid = self._sessions.get(request.cookies.get(COOKIE, ""))
        if uid is None:
            raise web.HTTPFound("/auth")
        return uid

    async def _logout(self, request: web.Request) -> web.Response:
        self._note(request)
        self._sessions.pop(request.cookies.get(COOKIE, ""), None)
        resp = web.HTTPFound("/")
        resp.del_cookie(COOKIE)
        raise resp

    async def _apps(self, request: web.Request) -> web.Response:
        uid = self._logged_in(request)
        app = self.apps.get(uid)
        if app is None:
            form_hash = secrets.token_hex(8)
            self._form_hashes[form_hash] = uid
            body = (
                "<html><head><title>Create new application</title></head><body>"
                "<h2>Create new application</h2>"
                '<form id="app_create_form" action="/apps/create" method="post">'
                f'<input type="hidden" name="hash" value="{form_hash}"/>'
                '<input name="app_title" value=""/><input name="app_shortname" value=""/>'
                '<input name="app_url" value=""/>'
                '<input type="radio" name="app_platform" value="android"/>'
                '<input type="radio" name="app_platform" value="desktop"/>'
                '<textarea name="app_desc"></textarea></form></body></html>'
            )
            return web.Response(text=body, content_type="text/html")
        body = (
            "<html><head><title>App configuration</title></head><body>"
            '<div class="form-group"><label for="app_id" class="col-md-4 text-right control-label">App api_id:</label>'
            '<div class="col-md-7"><span class="form-control input-xlarge uneditable-input" onclick="this.select();">'
            f"<strong>{app.api_id}</strong></span></div></div>"
            '<div class="form-group"><label for="app_hash" class="col-md-4 text-right control-label">App api_hash:</label>'
            '<div class="col-md-7"><span class="form-control input-xlarge uneditable-input" onclick="this.select();">'
            f"{app.api_hash}</span></div></div>"
            f'<input name="app_title" value="{html.escape(app.title)}"/>'
            f'<input name="app_shortname" value="{html.escape(app.short_name)}"/>'
            "</body></html>"
        )
        return web.Response(text=body, content_type="text/html")

    def _new_app(self, title: str, short: str, url: str, platform: str, desc: str) -> SiteApp:
        api_id = self._next_api_id
        self._next_api_id += 1
        app = SiteApp(api_id, secrets.token_hex(16), title, short, url, platform, desc)
        if self.world.apps:  # the world checks apps: make this one valid for MTProto too
            self.world.apps[api_id] = app.api_hash
        return app

    async def _create(self, request: web.Request) -> web.Response:
        uid = self._logged_in(request)
        form = await request.post()
        if self._form_hashes.pop(str(form.get("hash", "")), None) != uid:
            return web.Response(text="ERROR")
        title = str(form.get("app_title", "")).strip()
        short = str(form.get("app_shortname", "")).strip()
        if not 5 <= len(title) <= 64:
            return web.Response(text="Incorrect app title")
        if not (5 <= len(short) <= 32 and short.isalnum()):
            return web.Response(text="Incorrect app short name")
        if uid in self.apps:
            return web.Response(text="ERROR")
        self.apps[uid] = self._new_app(
            title,
            short,
            str(form.get("app_url", "")),
            str(form.get("app_platform", "")),
            str(form.get("app_desc", "")),
        )
        return web.Response(text="")
