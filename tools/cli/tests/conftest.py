"""One real stack for a test module (nats-server, the database server, the five services, the
gateway, and the Telegram emulator behind tg-session), and `tgm` run against it.

`tgm` runs in-process through Typer's CliRunner (`Tgm.run`: its exit code, stdout and stderr) with
its config and cache in folders of the module's own, or as a real process (`Tgm.spawn`) where a
signal must reach it. It only ever sees the gateway's URL and a key, like any operator's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result
from tg_emulator.threaded import EmulatorThread
from tgm_cli.app import app
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def cli_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("cli-stack")
    emu = EmulatorThread().start()
    stack = Stack(home / "data", gateway_port=0, extra_env=emu.env(home))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        emu.stop()


@pytest.fixture
def gw(cli_stack: Stack) -> Iterator[GatewayClient]:
    with GatewayClient(cli_stack) as client:
        yield client


@dataclass
class Tgm:
    """`tgm` pointed at the stack: `env` is what it sees (TGM_URL, TGM_KEY, its config and cache dirs)."""

    env: dict[str, str]
    runner: CliRunner = field(default_factory=CliRunner)

    def run(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        return self.runner.invoke(
            app, list(args), input=input, env={**self.env, **env}, catch_exceptions=False
        )

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        merged = {**os.environ, **self.env, **env}
        return subprocess.Popen(
            [sys.executable, "-m", "tgm_cli", *args],
            env={k: v for k, v in merged.items() if v is not None},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def tgm(cli_stack: Stack, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Tgm:
    cache = tmp_path_factory.getbasetemp() / "tgm-cache"  # one catalogue cache for the module
    return Tgm(
        {
            "TGM_URL": cli_stack.gateway_url,
            "TGM_KEY": cli_stack.admin_key,
            "TGM_CONFIG_DIR": str(tmp_path / "config"),
            "TGM_CACHE_DIR": str(cache),
        }
    )
