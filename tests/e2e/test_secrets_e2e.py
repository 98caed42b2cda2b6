"""No secret in plaintext anywhere the system writes (issue 13, the whole-system secrets test).

A realistic session on the process stack with the emulator and the fakes hands the system every kind
of secret it holds: a code login with a 2FA password, an account added by session string behind a
proxy with a password, an API credential's hash, an AI provider key, a Tailchat app's secret and a
Telegram bot token. Then everything is dumped and searched for each secret's text:

- every collection of every database (extended JSON);
- every log line of every process;
- every backup archive (a full `backup-database`, read from the object store and decompressed);
- every file under the stack's data directory, raw (NATS' JetStream store: the events and the KV
  buckets and object stores, the admin key file, the services' files).

The dump must be a real one: the account's phone, the credential's api id and the proxy's host (not
secrets) are found in it. Secrets are encrypted at rest (SecretBox) or not kept at all (2FA passwords,
login codes), and redacted from logs (`tgm_runtime.logs`).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Callable

import nats
import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_contracts import bus, streams
from tgm_fakes.testing import RunningFake
from tgm_stack import Stack
from tgm_testing import dumps
from tgm_testing.gateway import GatewayClient, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
pytest_plugins = ["tgm_fakes.testing"]

TWO_FA = "2fa-Marmot-Quill-7731"
API_HASH = "5e1f0c3a9b7d2e4f6a8c0b1d3e5f7a9c"
PROXY_PASSWORD = "Proxy-Pass-Heron-5521"
AI_KEY = "sk-test-Lichen-Orbit-0042-secret"


async def backups(url: str) -> bytes:
    """Every object of the backup store, decompressed."""
    nc = await nats.connect(url, inbox_prefix=bus.inbox_prefix("gateway"))  # the gateway's user
    try:
        store = await nc.jetstream().object_store(streams.BACKUPS.bucket)
        out = []
        for info in await store.list():
            data = (await store.get(info.name)).data or b""
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
        return b"\n".join(out)
    finally:
        await nc.close()


def test_no_secret_is_stored_logged_or_backed_up_in_plaintext(
    start_stack: Callable[..., Stack],
    emulator: EmulatorThread,
    fake_tailchat: RunningFake,
    fake_openai: RunningFake,
) -> None:
    world = emulator.world
    emulator.do(world.add_user, "+15550930001", first_name="Quinn", password=TWO_FA, password_hint="q")
    session = emulator.do(lambda: emulator.emu.session_for(world.add_user("+15550930002", first_name="Rae")))
    _, bot_token = emulator.do(lambda: world.bots.add("secrets_e2e_bot", first_name="Secrets"))
    tailchat_secret = fake_tailchat.key.partition(":")[2]
    secrets = {
        "2FA password": TWO_FA,
        "session string": session,
        "API hash": API_HASH,
        "proxy password": PROXY_PASSWORD,
        "AI provider key": AI_KEY,
        "Tailchat app secret": tailchat_secret,
        "bot token": bot_token,
    }
    assert all(len(v) >= 16 for v in secrets.values()), (
        "each secret is long enough to be found only as itself"
    )

    stack = start_stack(emulator=emulator)
    with GatewayClient(stack) as gw:
        # a code login with 2FA
        quinn = gw.ok("add-account", {"phone": "+15550930001", "label": "quinn"})
        gw.ok("login-account", {"accountId": quinn["id"]})
        code = wait_until(lambda: emulator.do(world.last_code, "+15550930001"), 20, "the login code")
        assert gw.ok("verify-code", {"accountId": quinn["id"], "phoneCode": code})["next"] == "password"
        assert gw.ok("submit-2fa-password", {"accountId": quinn["id"], "password": TWO_FA})["next"] == "done"
        # a session string behind a proxy with a password; an API credential's hash
        gw.ok("save-api-credential", {"apiId": 424242, "apiHash": API_HASH, "name": "secrets", "test": False})
        proxy = f"socks5://tgm:{PROXY_PASSWORD}@127.0.0.9:1080"
        gw.ok("add-account", {"phone": "+15550930002", "sessionString": session, "proxy": proxy})
        # an AI provider key, a Tailchat app, a bot account
        openai = {"enabled": True, "baseUrl": fake_openai.url, "apiKey": AI_KEY}
        gw.ok("save-ai-settings", {"openai": openai})
        gw.ok(
            "register-tailchat-app",
            {
                "serverUrl": fake_tailchat.url,
                "appId": fake_tailchat.key.partition(":")[0],
                "appSecret": fake_tailchat.key,
            },
        )
        gw.ok("add-telegram-bot", {"token": bot_token})
        # none of them answered back
        answers = [
            gw.ok(c, {})
            for c in ("get-accounts", "get-api-credentials", "get-ai-settings", "get-telegram-bots")
        ]
        answers.append(gw.ok("get-tailchat-apps", {}))
        shown = str(answers)
        assert not [k for k, v in secrets.items() if v in shown], shown[:2000]
        # a full backup
        backup = gw.ok("backup-database", {"label": "secrets", "wait": True}, timeout=120)
        assert backup["state"] == "completed", backup

        stored = dumps.databases(stack.mongodb_uri)
        archive = asyncio.run(backups(stack.nats_url_for("gateway")))
        logs = dumps.files(stack.logs_dir).decode(errors="replace")
        raw = dumps.files(stack.data_dir)
    assert "+15550930002" in stored and "424242" in stored and "127.0.0.9" in stored  # a real dump
    assert b"+15550930002" in archive and b"424242" in archive  # a real backup
    assert logs.strip()
    found = [
        f"{what} in {where}"
        for what, value in secrets.items()
        for where, text in (("a database", stored), ("the logs", logs))
        if value in text
    ]
    found += [
        f"{what} in {where}"
        for what, value in secrets.items()
        for where, blob in (("a backup", archive), ("the data directory", raw))
        if value.encode() in blob
    ]
    assert not found, found
