"""Dashboards and alerts that cannot drift (issue 17, finding 3): the live half.

One stack for the module (nats-server, the database server, the five services and the gateway as
processes, `tests/e2e/conftest.py`'s fixtures) against the Telegram emulator. A little traffic goes
through every service — an account logs in, a private message is sent through the paced queue and
lands in the emulator, a FLOOD_WAIT answers the next one, the local AI provider writes a reply and
the unconfigured openai one fails,
analytics ingests the events — then every process's `/metrics` is scraped. The test fails when a
Grafana panel query or an alert rule of `deploy/` names a metric no process exports with a sample, or
a label (selector, `by`/`on`, legend, annotation) none of its metrics carries; and when a process
exports a metric `deploy/METRICS.md` (the registry, `deploy/metrics_doc.py`) does not list.

A keyword-rule match is not driven: no panel or rule reads automation's metrics yet.
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient, wait_until
from tgm_testing.procs import WaitTimeout

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).resolve().parent


def _load(name: str, path: Path) -> ModuleType:
    """A module by path (test folders are not packages under --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: a dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


_e2e = _load("tgm_deploy_e2e_fixtures", HERE.parent / "e2e" / "conftest.py")
_files = _load("tgm_deploy_files", HERE / "test_deploy_files.py")
# The e2e fixtures, reused as they are (pytest finds fixtures among a module's attributes).
start_module_stack = _e2e.start_module_stack
module_emulator = _e2e.module_emulator

TARGET_LABELS = {"service", "instance", "job"}


def scrape(url: str) -> dict[str, set[str]]:
    """Sample name -> label names of one `/metrics`, target labels added; a family without samples is
    left out (no series: a query on it shows nothing)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            out.setdefault(sample.name, set(TARGET_LABELS)).update(sample.labels)
    return out


@pytest.fixture(scope="module")
def stack(module_emulator: Any, start_module_stack: Any) -> Stack:
    env = {"TGM_SESSION_CLAIM_INTERVAL_SECONDS": "0.5"}
    return start_module_stack(emulator=module_emulator, env=env)


@pytest.mark.timeout(180)
def test_every_panel_and_rule_reads_a_live_metric(stack: Stack, module_emulator: Any) -> None:
    emulator, world = module_emulator, module_emulator.world
    with GatewayClient(stack) as gw:
        gw.ok("save-settings", {"settings": {"pacing": dict(_e2e.FAST_PACING)}})
        sender = emulator.do(world.add_user, "+15550170001", first_name="Mia", username="mia_m")
        emulator.do(world.add_user, "+15550170002", first_name="Noa", username="noa_n")
        acc = gw.ok("add-account", {"phone": "+15550170001", "label": "metrics"})
        assert gw.ok("login-account", {"accountId": acc["id"]})["next"] == "code"
        code = wait_until(lambda: emulator.do(world.last_code, "+15550170001"), 20, "login code")
        assert gw.ok("verify-code", {"accountId": acc["id"], "phoneCode": code})["next"] == "done"

        def connected() -> bool:
            (item,) = gw.ok("get-accounts", {"ids": [acc["id"]]})["items"]
            return bool(item["connected"] and item["state"] == "active")

        wait_until(connected, 30, "the account connected")
        sent = gw.ok("send-private-message", {"accountId": acc["id"], "peer": "@noa_n", "text": "hi noa",
                                              "waitSeconds": 30})  # fmt: skip
        assert sent["state"] == "sent", sent
        assert emulator.do(lambda: [d.text for d in world.deliveries if d.from_user_id == sender.id]) == [
            "hi noa"
        ]
        emulator.do(world.faults.fail_next, "messages.sendMessage", "FLOOD_WAIT_30", user_id=sender.id)
        gw.call("send-private-message", {"accountId": acc["id"], "peer": "@noa_n", "text": "again",
                                         "waitSeconds": 15})  # fmt: skip
        reply = gw.ok("ai-generate-response", {"accountId": acc["id"], "userId": "u1", "message": "price?"})
        assert reply["provider"] == "local" and reply["text"]
        # A provider error: openai is not configured on this stack.
        failed = gw.call("ai-generate-response", {"accountId": acc["id"], "userId": "u1", "message": "price?",
                                                  "provider": "openai"})  # fmt: skip
        assert not failed["ok"], failed

    urls = {name: child.ready_url.replace("/readyz", "/metrics") for name, child in stack.children.items()}

    def exported() -> dict[str, set[str]]:
        out: dict[str, set[str]] = {"up": set(TARGET_LABELS)}
        for url in urls.values():
            for name, labels in scrape(url).items():
                out.setdefault(name, set()).update(labels)
        return out

    queries = _files.panel_and_rule_queries()
    # Gauges set by periodic work (the fleet count, the queue snapshot) and the ingest take a few seconds.
    seen: list[tuple[dict[str, set[str]], set[str]]] = []

    def backed() -> bool:
        now = exported()
        seen[:] = [(now, _files.unbacked(queries, now))]
        return not seen[0][1]

    try:
        wait_until(backed, 60, "every panel and rule backed by a live metric", interval=2)
    except WaitTimeout:
        pytest.fail(f"dashboard/alert queries on metrics or labels no process exports: {sorted(seen[0][1])}")
    live = seen[0][0]
    assert live["tgm_session_flood_waits_total"] >= {"category"}

    # Everything a process exports is in the generated METRICS.md (nothing registered only at start).
    registry = _files.exported_labels(_files.metric_families())
    extra = {n for n in live if n not in registry and not n.endswith("_created")}
    assert not extra, f"exported but not in deploy/METRICS.md: {sorted(extra)}"
