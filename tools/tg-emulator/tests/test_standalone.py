"""The standalone server: one command, admin API seeds a world and reads back deliveries."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest
from telethon import functions
from tg_emulator.client_support import make_client
from tg_emulator.demo import build_demo_world, chatter
from tg_emulator.testing import w

pytestmark = [pytest.mark.integration]


async def _start(*args: str):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tg_emulator.cli",
        "serve",
        "--port",
        "0",
        "--admin-port",
        "0",
        "--devsite-port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    line = (await w(proc.stdout.readline(), 20)).decode()
    assert line.startswith("tg-emulator ready"), line
    fields = dict(part.split("=") for part in line.split()[2:])
    return proc, int(fields["port"]), int(fields["admin_port"])


async def _stop(proc) -> None:
    proc.terminate()
    await w(proc.wait(), 10)


@pytest.mark.timeout(60)
async def test_standalone_server_with_admin_api(tmp_path):
    world_file = tmp_path / "world.yaml"
    world_file.write_text("users:\n  - {phone: '+15550400001', first_name: Ann, username: ann_from_file}\n")
    proc, port, admin = await _start("--world", str(world_file))
    base = f"http://127.0.0.1:{admin}"
    try:
        async with aiohttp.ClientSession() as http:
            seeded = await (
                await http.post(
                    f"{base}/world/seed",
                    json={
                        "users": [{"phone": "+15550400002", "first_name": "Ben", "username": "ben_seeded"}]
                    },
                )
            ).json()
            assert len(seeded["users"]) == 1
            users = await (await http.get(f"{base}/users")).json()
            assert {u["username"] for u in users} == {"ann_from_file", "ben_seeded"}
            session = (await (await http.post(f"{base}/users/ann_from_file/sessions")).json())["session"]

            client = make_client("127.0.0.1", port, session)
            try:
                await w(client.connect(), 10)
                await w(client.send_message("ben_seeded", "hello over the real socket"))
                # Login codes are readable for tests and demos.
                await w(client(functions.auth.SendCodeRequest("+15550400002", 1, "x" * 32, _code_settings())))
            finally:
                await w(client.disconnect())

            code = await (await http.get(f"{base}/users/ben_seeded/code")).json()
            assert code["code"] and len(code["code"]) == 5
            delivered = await (await http.get(f"{base}/deliveries", params={"from": "ann_from_file"})).json()
            assert [(d["text"], d["kind"]) for d in delivered] == [("hello over the real socket", "private")]
            assert delivered[0]["to_user_id"] == next(u["id"] for u in users if u["username"] == "ben_seeded")

            await http.post(
                f"{base}/messages", json={"from": "ben_seeded", "to": "ann_from_file", "text": "hi"}
            )
            since = await (await http.get(f"{base}/deliveries", params={"since": delivered[0]["seq"]})).json()
            assert [d["text"] for d in since] == ["hi"]

            fault = await http.post(
                f"{base}/faults", json={"method": "users.getUsers", "error": "FLOOD_WAIT_9"}
            )
            assert fault.status == 201
            bad = await http.post(f"{base}/faults", json={"method": "x", "error": "lower case"})
            assert bad.status == 400
            missing = await http.get(f"{base}/users/nobody_at_all")
            assert missing.status == 404
            summary = await (await http.get(f"{base}/world")).json()
            assert summary["deliveries"] == 2 and summary["users"] == 2
    finally:
        await _stop(proc)


def _code_settings():
    from telethon.tl import types

    return types.CodeSettings()


@pytest.mark.timeout(60)
async def test_demo_server_starts():
    proc, _port, admin = await _start("--demo")
    try:
        async with aiohttp.ClientSession() as http:
            summary = await (await http.get(f"http://127.0.0.1:{admin}/world")).json()
            assert summary["users"] >= 40 and summary["channels"] == 4
            channels = await (await http.get(f"http://127.0.0.1:{admin}/channels")).json()
            assert any(c["username"] == "traders_lounge" and c["members"] >= 30 for c in channels)
    finally:
        await _stop(proc)


@pytest.mark.timeout(20)
async def test_demo_people_write_now_and_then():
    world = build_demo_world()
    before = len(world.deliveries)
    task = asyncio.create_task(chatter(world, every=(0.01, 0.02), seed=1))
    try:
        for _ in range(200):
            if len(world.deliveries) >= before + 5:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
    assert len(world.deliveries) >= before + 5


@pytest.mark.timeout(20)
def test_cli_prints_public_key(capsys):
    from tg_emulator.cli import main

    assert main(["public-key"]) == 0
    assert "BEGIN RSA PUBLIC KEY" in capsys.readouterr().out
