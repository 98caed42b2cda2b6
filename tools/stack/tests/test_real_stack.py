"""`tgm-stack up` with the real gateway and services (those that can run yet): it comes up, answers
through the gateway with the key it printed, stops on `graceful-shutdown` with status 0, and keeps
its data across a restart."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tgm_stack import DEFAULT_MODULES, SERVICES
from tgm_testing.procs import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def runnable(service: str) -> bool:
    try:
        return importlib.util.find_spec(f"{DEFAULT_MODULES[service]}.__main__") is not None
    except ModuleNotFoundError:
        return False


def call(base: str, key: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
    )
    try:
        with _direct.open(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def up(data: Path, port: int, services: list[str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "MONGODB_URI", "TGM_DATA_DIR")}
    return subprocess.Popen(
        [sys.executable, "-m", "tgm_stack", "up", "--data-dir", str(data), "--port", str(port),
         "--services", ",".join(services), "--ready-timeout", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def wait_banner(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    out = []
    for line in proc.stdout:
        out.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(out)
    raise AssertionError("the stack did not come up:\n" + "".join(out))


@pytest.mark.timeout(240)
def test_up_call_graceful_shutdown_and_up_again(tmp_path: Path) -> None:
    if not runnable("gateway"):
        pytest.skip("tgm_gateway is not installed")
    services = [s for s in SERVICES if runnable(s)]
    data, port = tmp_path / "tgm", free_port()
    base = f"http://127.0.0.1:{port}"

    proc = up(data, port, services)
    try:
        banner = wait_banner(proc)
        key = (data / "admin.key").read_text().strip()
        # stdout is a pipe here, not a terminal: the banner says where the key is, never the key
        assert key not in banner and str(data / "admin.key") in banner and base in banner

        status, body = call(
            base, key, "/api/v1/ipc", {"command": "get-system-info", "payload": {}, "requestId": "r1"}
        )
        assert status == 200 and body["event"] == "get-system-info-result" and body["requestId"] == "r1"
        for svc in services:
            replicas = body["data"]["services"][svc]["replicas"]
            assert [r["replicaId"] for r in replicas] == [f"{svc}-0"]

        status, body = call(base, key, "/api/v1/commands/graceful-shutdown", {"confirm": True})
        assert status == 200, body
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert "gateway stopped (graceful shutdown)" in rest

    # Up again: the key created on the first start still works, so the database kept its data.
    again = up(data, port, services)
    try:
        banner = wait_banner(again)
        assert key not in banner and "not a terminal" in banner
        status, body = call(
            base, key, "/api/v1/ipc", {"command": "get-system-info", "payload": {}, "requestId": "r2"}
        )
        assert status == 200, body
        again.terminate()
        again.communicate(timeout=60)
    finally:
        if again.poll() is None:
            again.kill()
            again.wait()
    assert again.returncode == 0
