"""The developer site (my.telegram.org) of the emulator: the code arrives as a message from Telegram's
service account, login, reading and creating the app, errors, the IP echo."""

from __future__ import annotations

import re

import httpx
import pytest
import pytest_asyncio
from telethon import functions
from tg_emulator.devsite import DevSite
from tg_emulator.testing import Inbox, w

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PHONE = "+15550100001"


@pytest_asyncio.fixture
async def site(tg_world):
    s = await DevSite(tg_world).start()
    try:
        yield s
    finally:
        await s.stop()


def http(site: DevSite) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=site.url, trust_env=False, follow_redirects=False)


async def test_code_arrives_from_777000_and_the_app_is_created(
    site, tg_emulator, tg_world, tg_client_factory
):
    u = tg_world.add_user(PHONE, first_name="Sam")
    client = await tg_client_factory(tg_emulator.session_for(u))
    await w(client(functions.updates.GetStateRequest()))
    inbox = Inbox(client)
    async with http(site) as h:
        sent = (await h.post("/auth/send_password", data={"phone": PHONE})).json()
        assert re.fullmatch(r"[0-9a-f]{18}", sent["random_hash"])
        code = site.last_code(PHONE)
        ev = await inbox.wait_for(_text(tg_world, u), timeout=5)
        assert ev.sender_id == 777000 and code in ev.raw_text and "my.telegram.org" in ev.raw_text
        bad = await h.post(
            "/auth/login", data={"phone": PHONE, "random_hash": sent["random_hash"], "password": "nope"}
        )
        assert bad.text == "Invalid confirmation code!"
        assert (await h.get("/apps")).status_code == 302  # not logged in
        ok = await h.post(
            "/auth/login", data={"phone": PHONE, "random_hash": sent["random_hash"], "password": code}
        )
        assert ok.text == "true" and "stel_token" in ok.cookies
        page = (await h.get("/apps")).text
        assert "Create new application" in page
        form_hash = re.search(r'name="hash" value="([^"]+)"', page).group(1)
        short = await h.post(
            "/apps/create", data={"hash": form_hash, "app_title": "Fleet", "app_shortname": "x"}
        )
        assert short.text == "Incorrect app short name"
        page = (await h.get("/apps")).text
        form_hash = re.search(r'name="hash" value="([^"]+)"', page).group(1)
        made = await h.post("/apps/create", data={"hash": form_hash, "app_title": "Fleet App", "app_shortname": "fleetapp",
                                                  "app_platform": "desktop"})  # fmt: skip
        assert made.text == ""
        page = (await h.get("/apps")).text
        app = site.app_of(u)
        assert app is not None and f"<strong>{app.api_id}</strong>" in page and app.api_hash in page
        await h.get("/auth/logout")


def _text(world, user) -> str:
    # The last message from 777000 in the user's box is the one the inbox must see.
    box = [m for m in user.messages.values() if m.from_id == 777000]
    return box[-1].text


async def test_unknown_phone_rate_limit_ip_echo_and_app_registration(site, tg_world):
    tg_world.add_user(PHONE, first_name="Sam")
    tg_world.apps[1] = "0" * 32  # the world checks api ids: a created app must become valid
    site.max_codes_per_hour = 2
    async with http(site) as h:
        assert (
            await h.post("/auth/send_password", data={"phone": "+15559999999"})
        ).text == "Invalid phone number"
        for _ in range(2):
            assert "random_hash" in (await h.post("/auth/send_password", data={"phone": PHONE})).json()
        limited = await h.post("/auth/send_password", data={"phone": PHONE})
        assert limited.text.startswith("Sorry, too many tries")
        assert (await h.get("/ip")).text == "127.0.0.1"
    app = site.add_app(PHONE)
    assert tg_world.apps[app.api_id] == app.api_hash
