"""The Stack against real nats-server and secantusd, with a stand-in module for the services and
the gateway (tests/fakes/stack_fake_child.py)."""

from __future__ import annotations

import base64
import json
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tgm_stack import SERVICES, Stack, StackError
from tgm_stack.stack import redact_url
from tgm_testing.procs import port_is_open, wait_for
from tgm_testing.servers import NatsServer

pytestmark = pytest.mark.integration

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status(url: str, method: str = "GET") -> int:
    try:
        with _direct.open(urllib.request.Request(url, method=method), timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def recorded_env(stack: Stack, replica_id: str) -> dict[str, str | None]:
    return json.loads((stack.data_dir / "fake" / f"{replica_id}.env.json").read_text())


def starts(stack: Stack, replica_id: str) -> list[int]:
    path = stack.data_dir / "fake" / f"{replica_id}.starts"
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def all_pids(stack: Stack) -> list[int]:
    pids = [c.process.pid for c in stack.children.values()]
    pids += [s.pid for s in (stack.nats, stack.mongo) if s is not None]
    return [p for p in pids if p is not None]


@pytest.mark.timeout(60)
def test_start_wires_every_child_and_stop_leaves_nothing(make_stack, tmp_path: Path) -> None:
    stack = make_stack(
        services=("tg-session", "campaign"),
        replicas={"campaign": 2},
        extra_env={"FAKE_EXTRA": "passed", "FAKE_GRANDCHILD": "1"},
    )
    stack.start()
    data = stack.data_dir

    assert sorted(stack.children) == ["campaign-0", "campaign-1", "gateway", "tg-session-0"]
    assert status(f"{stack.gateway_url}/readyz") == 200
    for sub in ("nats", "db", "logs"):
        assert (data / sub).is_dir()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700

    key = stack.master_key_file
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(base64.b64decode(key.read_text().strip(), validate=True)) == 32
    assert len(stack.admin_key) > 20 and stack.admin_key_file == data / "admin.key"

    env = recorded_env(stack, "campaign-1")
    # Each child logs in as its own NATS user, with the password made once in nats.passwords (0600).
    passwords = json.loads(stack.nats_passwords_file.read_text())
    assert stat.S_IMODE(stack.nats_passwords_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "nats" / "nats-server.conf").stat().st_mode) == 0o600
    assert stack.nats is not None and stack.nats_url == stack.nats.url
    assert (
        env["NATS_URL"]
        == stack.nats_url_for("campaign")
        == stack.nats.url.replace("nats://", f"nats://campaign:{passwords['campaign']}@")
    )
    assert recorded_env(stack, "gateway-0")["NATS_URL"] == stack.nats_url_for("gateway")
    assert env["MONGODB_URI"] == stack.mongodb_uri and "directConnection=true" in (stack.mongodb_uri or "")
    assert env["TGM_DATA_DIR"] == str(data)
    assert env["TGM_MASTER_KEY_FILE"] == str(key)
    assert env["TGM_REPLICA_ID"] == "campaign-1"
    assert env["FAKE_EXTRA"] == "passed"
    assert env["TGM_GATEWAY_PORT"] is None
    health_ports = {
        recorded_env(stack, n)["TGM_HEALTH_PORT"] for n in ("campaign-0", "campaign-1", "tg-session-0")
    }
    assert len(health_ports) == 3
    gw = recorded_env(stack, "gateway-0")
    assert gw["TGM_GATEWAY_PORT"] == str(stack.gateway_port) and gw["TGM_GATEWAY_HOST"] == "127.0.0.1"
    assert "serving on" in (data / "logs" / "campaign-1.log").read_text()
    assert (data / "logs" / "nats-server.log").exists() and (data / "logs" / "secantusd.log").exists()

    grandchildren = [int(p.read_text()) for p in (data / "fake").glob("*.grandchild")]
    assert len(grandchildren) == 4
    pids = all_pids(stack) + grandchildren
    assert all(pid_alive(p) for p in pids)
    stack.stop()
    assert not any(pid_alive(p) for p in pids)
    assert not port_is_open("127.0.0.1", stack.gateway_port)
    stack.stop()  # idempotent


@pytest.mark.timeout(60)
def test_kill_and_restart_one_replica(make_stack) -> None:
    stack = make_stack(services=("campaign",), replicas={"campaign": 2})
    stack.start()
    victim = stack.child("campaign", 1)
    first = victim.process.pid
    assert stack.kill("campaign", 1) == -9
    assert not victim.process.alive and not pid_alive(first or 0)
    assert stack.child("campaign", 0).process.alive  # the other replica is untouched
    health_port = int(recorded_env(stack, "campaign-1")["TGM_HEALTH_PORT"] or 0)
    assert not port_is_open("127.0.0.1", health_port)
    stack.restart("campaign", 1)
    assert victim.process.alive and victim.process.pid != first
    assert status(victim.ready_url) == 200
    assert starts(stack, "campaign-1") == [first, victim.process.pid]

    gw_pid = stack.child("gateway").process.pid
    stack.restart("gateway")  # graceful restart of a running child
    assert stack.child("gateway").process.pid != gw_pid
    assert status(f"{stack.gateway_url}/readyz") == 200

    with pytest.raises(StackError, match=r"no child 'campaign-5'; running: campaign-0, campaign-1, gateway"):
        stack.kill("campaign", 5)


@pytest.mark.timeout(60)
def test_nats_restart_on_same_port_and_store(make_stack) -> None:
    stack = make_stack(services=("ai",))
    stack.start()
    nats = stack.nats
    assert nats is not None
    port, store = nats.port, nats.store_dir
    assert store == stack.data_dir / "nats"
    stack.stop_infra_nats()
    wait_for(lambda: status(f"{stack.gateway_url}/readyz") == 503, timeout=10)
    stack.start_infra_nats()
    assert nats.port == port and nats.alive
    assert (store / "jetstream").is_dir()
    wait_for(lambda: status(f"{stack.gateway_url}/readyz") == 200, timeout=10)


@pytest.mark.timeout(90)
def test_a_restart_keeps_the_data_and_the_keys(make_stack, tmp_path: Path) -> None:
    data = tmp_path / "kept"
    first = make_stack(data, services=())
    first.start()
    master, admin = first.master_key_file.read_text(), first.admin_key
    assert first.mongo is not None
    with first.mongo.client() as client:
        client.tgm_gateway.settings.insert_one({"_id": "s", "theme": "dark"})
    first.stop()

    second = make_stack(data, services=())
    second.start()
    assert second.master_key_file.read_text() == master and second.admin_key == admin
    assert second.mongo is not None
    with second.mongo.client() as client:
        assert client.tgm_gateway.settings.find_one({"_id": "s"}) == {"_id": "s", "theme": "dark"}


@pytest.mark.timeout(60)
def test_one_stack_per_data_dir_and_a_taken_port_is_refused(make_stack, tmp_path: Path) -> None:
    data = tmp_path / "shared"
    running = make_stack(data, services=())
    running.start()
    with pytest.raises(StackError, match=rf"{data} is in use by a running stack \(pid {os.getpid()}\)"):
        make_stack(data, services=()).start()
    with pytest.raises(StackError, match=rf"127.0.0.1:{running.gateway_port} is already in use"):
        make_stack(tmp_path / "other", services=(), gateway_port=running.gateway_port).start()
    assert status(f"{running.gateway_url}/readyz") == 200  # the failed attempts disturbed nothing


@pytest.mark.timeout(60)
def test_a_child_failing_at_start_is_reported_and_everything_is_stopped(make_stack) -> None:
    stack = make_stack(services=("tg-session", "analytics"), extra_env={"FAKE_FAIL_START": "analytics-0"})
    with pytest.raises(StackError, match=r"(?s)analytics-0 exited with status 2.*invalid configuration"):
        stack.start()
    assert not stack.running
    assert all(not pid_alive(p) for p in all_pids(stack))
    # The lock is released: a fixed configuration starts on the same folder.
    fixed = make_stack(stack.data_dir, services=("tg-session",))
    fixed.start()


@pytest.mark.timeout(60)
def test_external_servers_are_used_as_given(make_stack, nats_server: NatsServer, mongo_server) -> None:
    stack = make_stack(services=("campaign",), nats_url=nats_server.url, mongodb_uri=mongo_server.uri)
    stack.start()
    assert stack.nats is None and stack.mongo is None
    env = recorded_env(stack, "campaign-0")
    assert env["NATS_URL"] == nats_server.url and env["MONGODB_URI"] == mongo_server.uri
    with pytest.raises(StackError, match="NATS is external"):
        stack.stop_infra_nats()
    stack.stop()
    assert nats_server.alive and mongo_server.alive  # not ours to stop


@pytest.mark.timeout(60)
def test_env_vars_select_external_servers(make_stack, nats_server, mongo_server, monkeypatch) -> None:
    monkeypatch.setenv("NATS_URL", nats_server.url)
    monkeypatch.setenv("MONGODB_URI", mongo_server.uri)
    stack = make_stack(services=())
    stack.start()
    assert stack.nats is None and stack.nats_url == nats_server.url
    assert stack.mongo is None and stack.mongodb_uri == mongo_server.uri


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_bad_arguments_are_clear(tmp_path: Path) -> None:
    assert SERVICES == ("tg-session", "campaign", "ai", "analytics", "tailchat")
    with pytest.raises(
        ValueError, match="unknown service 'mailer'; known: tg-session, campaign, ai, analytics, tailchat"
    ):
        Stack(tmp_path, services=("mailer",))
    with pytest.raises(ValueError, match="unknown service 'gateway'"):
        Stack(tmp_path, services=("gateway",))
    with pytest.raises(ValueError, match="replicas given for 'ai'"):
        Stack(tmp_path, services=("campaign",), replicas={"ai": 2})
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        Stack(tmp_path, replicas={"ai": 0})
    with pytest.raises(ValueError, match="listed twice"):
        Stack(tmp_path, services=("ai", "ai"))
    with pytest.raises(StackError, match=r"admin\.key does not exist"):
        _ = Stack(tmp_path).admin_key


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_a_damaged_master_key_is_never_replaced(tmp_path: Path) -> None:
    tmp_path.joinpath("master.key").write_text("not a key\n")
    with pytest.raises(StackError, match=r"master\.key is not a base64-encoded 32-byte key"):
        Stack(tmp_path, services=()).start()
    assert tmp_path.joinpath("master.key").read_text() == "not a key\n"


@pytest.mark.unit
@pytest.mark.timeout(10)
def test_redact_url_hides_passwords_only() -> None:
    assert redact_url("mongodb://app:s3cret@db.example:27017/x?tls=true") == (
        "mongodb://app:***@db.example:27017/x?tls=true"
    )
    assert redact_url("nats://u:p@127.0.0.1:4222") == "nats://u:***@127.0.0.1:4222"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
