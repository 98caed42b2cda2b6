"""The emulator on a thread of its own, for tests that drive separate processes (the stack) from
synchronous code: e2e tests start it, point tg-session at it with `env`, and inspect or change its
world through `do`, which runs on the emulator's loop (the world is never touched from elsewhere).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: The API hash tests give tg-session; the emulator accepts any credential.
TEST_API_HASH = "0123456789abcdef0123456789abcdef"


class EmulatorThread:
    """`EmulatorThread(devsite=True).start()`; `.emu`, `.world`, `.site` (with `devsite`), `.stop()`."""

    def __init__(self, *, devsite: bool = False, timeout: float = 60.0) -> None:
        self.devsite = devsite
        self.timeout = timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tg-emulator", daemon=True)
        self.site: Any = None

    def start(self) -> EmulatorThread:
        from .devsite import DevSite
        from .emulator import Emulator
        from .world import World

        self.thread.start()

        async def boot() -> tuple[Any, Any]:
            emu = await Emulator(World()).start()
            site = await DevSite(emu.world).start() if self.devsite else None
            return emu, site

        self.emu, self.site = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(30)
        self.world = self.emu.world
        return self

    def do(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` on the emulator's loop and return its result."""

        async def run() -> Any:
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(self.timeout)

    def stop(self) -> None:
        async def down() -> None:
            if self.site is not None:
                await self.site.stop()
            await self.emu.stop()

        asyncio.run_coroutine_threadsafe(down(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def key_file(self, directory: Path) -> Path:
        """The emulator's RSA public key written to `directory` (tg-session reads it from a file)."""
        from .keys import PUBLIC_KEY_PEM

        path = directory / "emulator-rsa.pem"
        path.write_text(PUBLIC_KEY_PEM)
        return path

    def env(self, directory: Path, **extra: str) -> dict[str, str]:
        """The environment that points tg-session processes at this emulator (and its devsite)."""
        out = {
            "TGM_SESSION_DC_HOST": self.emu.host,
            "TGM_SESSION_DC_PORT": str(self.emu.port),
            "TGM_SESSION_RSA_PUBLIC_KEY_FILE": str(self.key_file(directory)),
            "TGM_SESSION_API_ID": "1",
            "TGM_SESSION_API_HASH": TEST_API_HASH,
            "TGM_SESSION_CLAIM_INTERVAL_SECONDS": "0.5",
        }
        if self.site is not None:
            out["TGM_SESSION_DEVSITE_URL"] = self.site.url
            out["TGM_SESSION_IP_ECHO_URL"] = f"{self.site.url}/ip"
        return {**out, **extra}
