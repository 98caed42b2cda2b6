"""Supervision (crash restarts with backoff, graceful shutdown) and `tgm-stack up` end to end, with
the stand-in child."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tgm_stack import Stack, Supervisor
from tgm_testing.procs import free_port, wait_for

pytestmark = pytest.mark.integration

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str) -> int:
    try:
        with _direct.open(urllib.request.Request(url, method="POST"), timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def get(url: str) -> tuple[int, str]:
    try:
        with _direct.open(url, timeout=2) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def health_base(stack: Stack, name: str) -> str:
    return stack.children[name].ready_url.removesuffix("/readyz")


class Supervised:
    """Runs a Supervisor over a started stack in a thread and collects what it says."""

    def __init__(self, stack: Stack, **kwargs) -> None:
        self.lines: list[str] = []
        self.supervisor = Supervisor(stack, say=self.lines.append, poll_interval=0.05, **kwargs)
        self.stop = threading.Event()
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.supervisor.run(self.stop)))

    def __enter__(self) -> Supervised:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.mark.timeout(60)
def test_a_crashed_service_is_restarted_with_backoff(make_stack) -> None:
    stack = make_stack(services=("campaign", "ai"))
    stack.start()
    campaign = stack.child("campaign").process
    first = campaign.pid
    with Supervised(stack, backoff_initial=0.2, backoff_max=0.4) as sup:
        assert post(f"{health_base(stack, 'campaign-0')}/exit?code=3") == 200
        wait_for(lambda: sup.said("campaign-0 restarted"), timeout=10)
        assert sup.said("campaign-0 exited with status 3; restarting in 0.2s")
        assert campaign.pid != first
        stack.wait_ready("campaign")

        stack.kill("campaign")  # a SIGKILL is a crash too; the backoff doubles
        wait_for(lambda: sup.supervisor.crashes("campaign-0") == 2 and campaign.alive, timeout=10)
        assert sup.said("campaign-0 exited with signal SIGKILL; restarting in 0.4s")
        stack.wait_ready("campaign")

        # A service that exits 0 stopped on purpose and stays down.
        assert post(f"{health_base(stack, 'ai-0')}/exit?code=0") == 200
        wait_for(lambda: sup.said("ai-0 stopped on its own (status 0); leaving it down"), timeout=10)
        assert not stack.child("ai").process.alive
    assert sup.result == [0]  # stopped from outside


@pytest.mark.timeout(60)
def test_crashed_infrastructure_is_restarted(make_stack) -> None:
    stack = make_stack(services=())
    stack.start()
    nats = stack.nats
    assert nats is not None
    with Supervised(stack, backoff_initial=0.1) as sup:
        nats.kill()
        wait_for(lambda: sup.said("nats-server restarted"), timeout=10)
        wait_for(lambda: stack.child("gateway").process.alive and nats.alive, timeout=10)
        stack.wait_ready("gateway")


@pytest.mark.timeout(60)
def test_gateway_exit_zero_ends_supervision(make_stack) -> None:
    stack = make_stack(services=("analytics",))
    stack.start()
    with Supervised(stack) as sup:
        assert post(f"{stack.gateway_url}/exit?code=0") == 200
        sup.thread.join(10)
    assert sup.result == [0]
    assert sup.said("gateway stopped (graceful shutdown)")
    assert stack.child("analytics").process.alive  # the caller stops the rest
    stack.stop()
    assert not stack.child("analytics").process.alive


def run_cli(
    cli: tuple[list[str], dict[str, str]], data_dir: Path, port: int, *extra: str, **env: str
) -> subprocess.Popen[str]:
    args = ["--data-dir", str(data_dir), "--port", str(port), "--ready-timeout", "30", *cli[0]]
    return subprocess.Popen(
        [sys.executable, "-m", "tgm_stack", "up", *args, *extra],
        env={**cli[1], **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], marker: str, out: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        out.append(line)
        if marker in line:
            return
    raise AssertionError(f"{marker!r} never printed; output:\n{''.join(out)}")


def child_pids(data_dir: Path) -> list[int]:
    return [int(p) for f in (data_dir / "fake").glob("*.starts") for p in f.read_text().split()]


@pytest.mark.timeout(90)
def test_cli_up_prints_the_essentials_and_stops_cleanly_on_sigterm(tmp_path: Path, cli_args_env) -> None:
    data, port = tmp_path / "tgm", free_port()
    proc = run_cli(cli_args_env, data, port, "--services", "tg-session,campaign", "--replicas", "campaign=2")
    out: list[str] = []
    try:
        read_until(proc, "Press Ctrl-C to stop.", out)
        text = "".join(out)
        admin_key = (data / "admin.key").read_text().strip()
        assert f"http://127.0.0.1:{port}" in text
        # stdout is a pipe here: the banner names the key's file, never the key (2966ec1)
        assert admin_key not in text and str(data / "admin.key") in text
        assert f"{data / 'logs'}/" in text
        # Each child's health and metrics URLs (issue 17), and each answers: the gateway's own port, the
        # services' health ports.
        rows = [line.split() for line in text.splitlines() if line.startswith("    ") and "/healthz" in line]
        assert [r[0] for r in rows] == ["gateway", "tg-session-0", "campaign-0", "campaign-1"], text
        assert rows[0][1] == f"http://127.0.0.1:{port}/healthz"
        for name, health, metrics in rows:
            assert get(health)[0] == 200
            code, body = get(metrics)
            assert code == 200 and f'replica="{"gateway-0" if name == "gateway" else name}"' in body
        pids = child_pids(data)
        assert len(pids) == 4 and all(pid_alive(p) for p in pids)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(out) + rest
    assert "stopping" in rest and "stopped" in rest
    assert not any(pid_alive(p) for p in pids)
    assert "serving on" in (data / "logs" / "campaign-1.log").read_text()

    # Up again on the same folder: same keys, so the same data.
    again = run_cli(cli_args_env, data, port, "--services", "tg-session")
    out = []
    try:
        read_until(again, "Press Ctrl-C to stop.", out)
        assert (data / "admin.key").read_text().strip() == admin_key and admin_key not in "".join(out)
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=30)
    finally:
        if again.poll() is None:
            again.kill()
    assert again.returncode == 0


@pytest.mark.timeout(90)
def test_cli_exits_zero_after_graceful_shutdown(tmp_path: Path, cli_args_env) -> None:
    data, port = tmp_path / "tgm", free_port()
    proc = run_cli(cli_args_env, data, port, "--services", "ai")
    out: list[str] = []
    try:
        read_until(proc, "Press Ctrl-C to stop.", out)
        pids = child_pids(data)
        assert post(f"http://127.0.0.1:{port}/exit?code=0") == 200
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "gateway stopped (graceful shutdown); stopping everything" in rest
    assert not any(pid_alive(p) for p in pids)


@pytest.mark.timeout(60)
def test_cli_reports_a_failed_start(tmp_path: Path, cli_args_env) -> None:
    data, port = tmp_path / "tgm", free_port()
    proc = run_cli(cli_args_env, data, port, "--services", "ai", FAKE_FAIL_START="gateway-0")
    out, _ = proc.communicate(timeout=45)
    assert proc.returncode == 1
    assert "error: gateway exited with status 2 while starting" in out
    assert "gateway-0: invalid configuration, giving up" in out


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_cli_rejects_bad_arguments(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "tgm_stack", "up", "--services", "mailer"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert bad.returncode == 2 and "unknown service(s) mailer" in bad.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "tgm_stack", "up", "--replicas", "ai=zero"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert bad.returncode == 2 and "replicas must be a number" in bad.stderr
