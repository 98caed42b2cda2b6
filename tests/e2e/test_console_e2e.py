"""The operator console in a real browser: Playwright (`console/e2e/*.spec.ts`) drives Debian's
Chromium against the process stack and the Telegram emulator, from this module.

This module starts what the browser talks to (tg-session, campaign, ai, analytics and tailchat behind the gateway, which
serves the built console at `/`; the emulator with its admin API, which the specs use the way a
phone would: read a login code, scan a QR code), seeds the emulator's world (two groups for the task
centre's ad campaign and collaboration run among it) and two leads, makes an
admin and a viewer key, then runs `npx playwright test` in `console/` with all of it in the environment, and
fails with Playwright's own output when a spec fails. The specs write a screenshot of every screen
to `docs/console/`.

Needs `make install` (node_modules, the build, chromium); a missing piece fails here, not skips,
except on a machine with no Node.js at all.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "console"
DIST = CONSOLE / "dist"
CHROMIUM = os.environ.get("TGM_CHROMIUM", "/usr/bin/chromium")

#: The people the specs log in and write to (the 2FA one by code, the other by QR).
CODE_PHONE, CODE_PASSWORD = "+15550170001", "console-2fa"
QR_PHONE = "+15550170002"
FRIEND = "console_friend"


def seed_groups(world: Any) -> dict[str, str]:
    """The people, and two groups for the task centre's ad campaign and collaboration run
    (`tasks.spec.ts`): both fleet users and the friend in the first; in the second the QR user is
    banned, so its ad post there fails `chat_write_forbidden`. Their `-100…` ids go to the specs."""
    code = world.add_user(CODE_PHONE, first_name="Cody", username="cody_console", password=CODE_PASSWORD)
    qr = world.add_user(QR_PHONE, first_name="Quinn", username="quinn_console")
    friend = world.add_user("+15550170009", first_name="Friend", username=FRIEND)
    owner = world.add_user("+15550170010", first_name="Owner", username="console_owner")
    club = world.create_channel(owner, "Console Club", username="consoleclub")
    world.invite_to_channel(owner, club, [code, qr, friend])
    closed = world.create_channel(owner, "Console Closed", username="consoleclosed")
    world.invite_to_channel(owner, closed, [code, qr])
    world.ban_in_channel(qr, closed)
    return {
        "TGM_AD_CHATS": ",".join(str(-1_000_000_000_000 - ch.id) for ch in (club, closed)),
        "TGM_COLLAB_CHAT": str(-1_000_000_000_000 - club.id),
        "TGM_COLLAB_TARGET": str(friend.id),
    }


def _need_build() -> None:
    if shutil.which("npx") is None:
        pytest.skip("no Node.js on this machine (make install needs it for the console)")
    missing = [p for p in (CONSOLE / "node_modules", DIST / "index.html", Path(CHROMIUM)) if not p.exists()]
    assert not missing, f"run `make install` first: missing {missing}"


@pytest.fixture(scope="module")
def console_stack(
    start_module_stack: Callable[..., Stack], fast_pacing: dict[str, Any]
) -> Iterator[dict[str, str]]:
    _need_build()
    emu = EmulatorThread().start()
    try:
        from tg_emulator.admin import AdminApi

        admin = AdminApi(emu.emu)
        port = asyncio.run_coroutine_threadsafe(admin.start("127.0.0.1", 0), emu.loop).result(30)
        groups = emu.do(seed_groups, emu.world)
        stack = start_module_stack(
            # every backend service: the System screen's backup asks each of them for its part
            services=("tg-session", "campaign", "ai", "analytics", "tailchat"),
            emulator=emu,
            env={"TGM_GATEWAY_CONSOLE_DIR": str(DIST)},
        )
        with GatewayClient(stack) as gw:
            gw.ok("save-settings", {"settings": {"pacing": fast_pacing}})
            viewer = gw.create_key("console-viewer", "viewer")["key"]
            for first, username in (("Ada", "ada_lead"), ("Bob", "bob_lead")):
                gw.ok(
                    "add-lead",
                    {"firstName": first, "lastName": "Lead", "username": username, "sourceType": "manual"},
                )
            yield {
                "TGM_CONSOLE_URL": stack.gateway_url,
                "TGM_ADMIN_KEY": stack.admin_key,
                "TGM_VIEWER_KEY": viewer,
                "TGM_EMULATOR_ADMIN_URL": f"http://127.0.0.1:{port}",
                "TGM_CODE_PHONE": CODE_PHONE,
                "TGM_CODE_PASSWORD": CODE_PASSWORD,
                "TGM_QR_PHONE": QR_PHONE,
                "TGM_FRIEND": FRIEND,
                **groups,
            }
        asyncio.run_coroutine_threadsafe(admin.stop(), emu.loop).result(30)
    finally:
        emu.stop()


@pytest.mark.timeout(420)
def test_console_in_the_browser(console_stack: dict[str, str]) -> None:
    env = {
        **os.environ,
        **console_stack,
        "TGM_CHROMIUM": CHROMIUM,
        "TGM_SCREENSHOTS": str(ROOT / "docs" / "console"),
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        "CI": "1",
    }
    run = subprocess.run(
        ["npx", "playwright", "test"], cwd=CONSOLE, env=env, capture_output=True, text=True, timeout=400
    )
    assert run.returncode == 0, f"playwright failed:\n{run.stdout}\n{run.stderr}"


#: The paths the bundle may name: the API prefix and, after it, the public routes (client.ts, live.ts):
#: commands, keys, a large export's download, the WebSocket.
PUBLIC_PATH = re.compile(r"^/(api/v1|commands/[a-z0-9-]*|keys/?|keys/me|exports/|ws)$")
#: The only absolute URLs in it: the ones libraries name in messages and XML namespaces.
#: Not addresses the console calls: React's error decoder, XML namespaces, and example.com (reserved for
#: documentation, RFC 2606: a form field's placeholder).
ALLOWED_URL = re.compile(r"^(https://react\.dev/errors/|http://www\.w3\.org/|https://example\.com/)")


def test_the_bundle_calls_only_the_public_api() -> None:
    _need_build()
    bundle = "\n".join(p.read_text() for p in (DIST / "assets").glob("*.js"))
    # Every path literal (after a quote, or after a template's `${...}`; a regex's `/g` is too
    # short to count) is a public route.
    paths = set(re.findall(r"[}\"'`](/[A-Za-z][A-Za-z0-9_/?=.-]+)", bundle))
    assert {"/api/v1", "/commands/", "/keys", "/keys/me", "/exports/", "/ws"} <= paths
    assert "ws?token" not in bundle  # the socket authenticates by its first frame, not its URL
    assert [p for p in paths if not PUBLIC_PATH.match(p)] == []
    for private in ("/metrics", "/readyz", "/openapi.json", "/ipc", "/stream/", "tgm.gateway.cmd"):
        assert private not in bundle, private
    # No absolute address: the console talks to the origin that served it, and nowhere else.
    urls = re.findall(r"\b(?:https?|wss?)://[^\s\"'`)]+", bundle)
    assert [u for u in urls if not ALLOWED_URL.match(u)] == []


@pytest.mark.timeout(180)
def test_console_component_tests() -> None:
    """The console's Vitest suite (catalogues, screens against a fake gateway), in the same run."""
    _need_build()
    run = subprocess.run(["npm", "test"], cwd=CONSOLE, capture_output=True, text=True, timeout=170)
    assert run.returncode == 0, f"vitest failed:\n{run.stdout}\n{run.stderr}"
