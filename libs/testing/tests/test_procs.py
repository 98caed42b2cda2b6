"""ManagedProcess, ports and waiting, with small Python children."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from tgm_testing.procs import (
    ManagedProcess,
    ProcessExitedError,
    ProcessNotReadyError,
    WaitTimeout,
    free_port,
    port_is_open,
    wait_for,
    wait_for_async,
    wait_for_port,
    wait_for_port_async,
)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


# A child that listens on a port, prints a line, optionally ignores SIGTERM, optionally spawns a
# grandchild (writing its pid to a file), and exits 0 on SIGTERM otherwise.
SERVER = textwrap.dedent(
    """
    import os, signal, socket, subprocess, sys, time
    port = int(os.environ["PORT"])
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if os.environ.get("GRANDCHILD_PID_FILE"):
        gc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open(os.environ["GRANDCHILD_PID_FILE"], "w").write(str(gc.pid))
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen()
    print("listening on", port, "secret-free", flush=True)
    while True:
        conn, _ = s.accept(); conn.close()
    """
)


def server_proc(tmp_path: Path, **env: str) -> ManagedProcess:
    port = free_port()
    return ManagedProcess(
        [sys.executable, "-c", SERVER],
        name="toy",
        env={"PORT": str(port), **env},
        log_path=tmp_path / "toy.log",
        ready=lambda: port_is_open("127.0.0.1", port),
        ready_timeout=10,
        grace=5,
    )


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_free_port_is_bindable_and_never_repeated() -> None:
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_wait_for_returns_the_truthy_value() -> None:
    calls = iter([0, None, "", "done"])
    assert wait_for(lambda: next(calls), timeout=2, interval=0.01) == "done"


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_wait_for_times_out_with_message_and_last_error() -> None:
    def probe() -> bool:
        raise ConnectionError("nope")

    started = time.monotonic()
    with pytest.raises(WaitTimeout, match=r"the thing not met within 0.2s .*ConnectionError: nope"):
        wait_for(probe, timeout=0.2, interval=0.02, message="the thing", ignore=(ConnectionError,))
    assert 0.2 <= time.monotonic() - started < 2


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_wait_for_propagates_unexpected_errors_at_once() -> None:
    with pytest.raises(KeyError):
        empty: dict[str, int] = {}
        wait_for(lambda: empty["x"], timeout=5, ignore=(ConnectionError,))
    with pytest.raises(ValueError):
        wait_for(lambda: True, timeout=-1)


@pytest.mark.unit
@pytest.mark.timeout(10)
async def test_wait_for_async_accepts_sync_and_async_predicates() -> None:
    n = 0

    async def later() -> int:
        nonlocal n
        n += 1
        return n if n >= 3 else 0

    assert await wait_for_async(later, timeout=2, interval=0.01) == 3
    assert await wait_for_async(lambda: "x", timeout=1) == "x"
    with pytest.raises(WaitTimeout, match="never"):
        await wait_for_async(lambda: False, timeout=0.1, interval=0.02, message="never")


@pytest.mark.unit
@pytest.mark.timeout(10)
async def test_wait_for_port_variants(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        wait_for_port("127.0.0.1", port, timeout=2)
        await wait_for_port_async("127.0.0.1", port, timeout=2)
    closed = free_port()
    with pytest.raises(WaitTimeout, match=f"127.0.0.1:{closed}"):
        wait_for_port("127.0.0.1", closed, timeout=0.2)
    with pytest.raises(WaitTimeout):
        await wait_for_port_async("127.0.0.1", closed, timeout=0.2)


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_start_logs_terminate_and_restart(tmp_path: Path) -> None:
    proc = server_proc(tmp_path)
    assert proc.pid is None and not proc.alive and proc.terminate() is None
    proc.start()
    first = proc.pid
    assert proc.alive and first is not None
    wait_for(lambda: "listening on" in proc.log_tail(), timeout=5)
    assert proc.terminate() == 0
    assert not proc.alive and not pid_alive(first)
    proc.restart()
    assert proc.alive and proc.pid != first and proc.starts == 2
    # Both runs append to the same log, each with a header.
    assert proc.log_tail(100).count("starting toy") == 2
    assert proc.kill() == -signal.SIGKILL
    assert not proc.alive


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_sigkill_after_grace_when_sigterm_is_ignored(tmp_path: Path) -> None:
    proc = server_proc(tmp_path, IGNORE_TERM="1")
    proc.start()
    started = time.monotonic()
    assert proc.terminate(grace=0.5) == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_stopping_takes_grandchildren_along(tmp_path: Path) -> None:
    pid_file = tmp_path / "gc.pid"
    proc = server_proc(tmp_path, GRANDCHILD_PID_FILE=str(pid_file))
    proc.start()
    grandchild = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=5))
    assert pid_alive(grandchild)
    proc.terminate()
    wait_for(lambda: not pid_alive(grandchild), timeout=5, message="grandchild gone")


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_exit_before_ready_reports_status_and_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        [sys.executable, "-c", "import sys; print('bad config: port missing'); sys.exit(3)"],
        name="broken",
        log_path=tmp_path / "broken.log",
        ready=lambda: False,
    )
    with pytest.raises(
        ProcessExitedError, match=r"(?s)broken exited with status 3.*bad config: port missing"
    ):
        proc.start()
    assert proc.returncode == 3


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_not_ready_before_deadline(tmp_path: Path) -> None:
    proc = ManagedProcess(
        [sys.executable, "-c", "import time; print('slow'); time.sleep(60)"],
        name="slow",
        log_path=tmp_path / "slow.log",
        ready=lambda: port_is_open("127.0.0.1", free_port()),
        ready_timeout=0.5,
    )
    try:
        with pytest.raises(ProcessNotReadyError, match=r"slow .* was not ready within 0\.5s"):
            proc.start()
        assert proc.alive  # the caller decides what to do with it
    finally:
        proc.terminate(grace=1)
    assert not proc.alive


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_double_start_and_missing_program_are_clear_errors(tmp_path: Path) -> None:
    proc = server_proc(tmp_path)
    with proc, pytest.raises(Exception, match="already running"):
        proc.start()
    missing = ManagedProcess([str(tmp_path / "no-such-program")], name="ghost")
    with pytest.raises(Exception, match="cannot start ghost"):
        missing.start()


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    # A middle process starts a ManagedProcess child, reports its pid, and is SIGKILLed.
    pid_file = tmp_path / "child.pid"
    middle_code = textwrap.dedent(
        f"""
        import sys, time
        from tgm_testing.procs import ManagedProcess
        p = ManagedProcess([sys.executable, "-c", "import time; time.sleep(600)"], name="leaf")
        p.start()
        open({str(pid_file)!r}, "w").write(str(p.pid))
        time.sleep(600)
        """
    )
    middle = ManagedProcess([sys.executable, "-c", middle_code], name="middle", die_with_parent=False)
    middle.start()
    try:
        leaf = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=10))
        assert pid_alive(leaf)
        os.kill(middle.pid or 0, signal.SIGKILL)  # the leaf's own group is not signalled
        middle.wait(5)
        wait_for(lambda: not pid_alive(leaf), timeout=5, message="orphaned child gone")
    finally:
        middle.kill()


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_a_child_started_from_a_thread_outlives_the_thread(tmp_path: Path) -> None:
    proc = server_proc(tmp_path)
    worker = threading.Thread(target=proc.start)
    worker.start()
    worker.join(15)
    try:
        assert proc.alive
        time.sleep(0.2)  # give a (wrong) parent-death signal the time to arrive
        assert proc.alive
    finally:
        proc.terminate()
