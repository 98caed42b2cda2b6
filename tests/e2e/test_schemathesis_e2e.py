"""Schemathesis over the per-command OpenAPI on the process stack (issue 13): every operation of
`/openapi.json` (all catalogue commands, IPC, SSE, keys, exports, uploads, callbacks, ops) is called
with generated payloads, valid and invalid, with the admin key, without one and with a wrong one, and
every answer is checked: no 500, the status documented for the operation, the body valid against the
documented response schema (for errors too), the content type documented, invalid payloads refused
with a 4xx, authentication not ignored.

What is left out, and why:
- `graceful-shutdown` (it stops the stack under test; `test_catalogue_served_e2e` calls it);
- the checks `not_a_server_error` and `positive_data_acceptance`: 502/503/504 are documented answers
  (Telegram, an AI provider, a service, a deadline; the emulator has none of the random peers the
  generated payloads name), and a payload valid by the schema may still name nothing that exists
  (NOT_FOUND) or conflict with the state (CONFLICT). `schemathesis_hooks.no_internal_error` keeps the
  point of the first: a 500 (INTERNAL) is a bug in a service and fails the run.

The rate limits are raised for this stack (the fuzzer would otherwise spend most calls on 429). The
bounded run here takes `MAX_EXAMPLES` payloads per operation (1 in `make test`, about a minute);
`make test-soak` (`TGM_SOAK=1`) runs 25 with the coverage phase. After the run the stack is still
whole: every service answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from tg_emulator.threaded import EmulatorThread
from tgm_contracts import BACKEND_SERVICES
from tgm_stack import Stack
from tgm_testing.gateway import GatewayClient

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.timeout(1500 if os.environ.get("TGM_SOAK") else 400),
]

SOAK = bool(os.environ.get("TGM_SOAK"))
MAX_EXAMPLES = 25 if SOAK else 1
PHASES = "examples,coverage,fuzzing" if SOAK else "examples,fuzzing"
UNLIMITED = {
    "TGM_GATEWAY_KEY_RATE_PER_SECOND": "100000",
    "TGM_GATEWAY_KEY_RATE_BURST": "100000",
    "TGM_GATEWAY_FAILED_AUTH_PER_SECOND": "100000",
    "TGM_GATEWAY_FAILED_AUTH_BURST": "100000",
}

#: Failure texts that are fuzzed once more alone before they fail the test (see below).
RETRIED_ONCE = ("Inconsistent results", "AST constructor recursion depth mismatch")


def test_the_openapi_holds_under_fuzzing(
    start_module_stack: Callable[..., Stack], module_emulator: EmulatorThread, tmp_path: Path
) -> None:
    stack = start_module_stack(emulator=module_emulator, env=UNLIMITED)
    gw = GatewayClient(stack)
    report = tmp_path / "schemathesis.xml"
    cli = Path(sys.executable).with_name("schemathesis")
    base = [
        str(cli), "run", f"{gw.url}/openapi.json",
        "-H", f"Authorization: Bearer {gw.key}",
        "--max-examples", str(MAX_EXAMPLES),
        "--phases", PHASES,
        "--exclude-path-regex", "graceful-shutdown",
        "--checks", "all",
        "--exclude-checks", "not_a_server_error,positive_data_acceptance",
        "--request-timeout", "60",
        # a restore or a send that waits (`waitSeconds`) takes its time by design: no latency check
        "--max-response-time", "120",
        "--workers", "2",
        "--seed", "20261203",
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(Path(__file__).parent)}

    def fuzz(junit: Path, *only: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        cmd = [*base, "--report", "junit", "--report-junit-path", str(junit)]
        for name in only:
            cmd += ["--include-name", name]
        run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1400 if SOAK else 330)
        print(run.stdout[-6000:] + run.stderr[-2000:])
        failed = {
            str(case.get("name")): ((f.get("message") or "") + (f.text or ""))[:1500]
            for case in ET.parse(junit).getroot().iter("testcase")
            for f in [*case.findall("failure"), *case.findall("error")]
        }
        return run, failed

    run, failed = fuzz(report)
    # Hypothesis calls a case that failed once and not on its replay "Inconsistent results" (a
    # request that timed out under load, then answered). Such an operation is fuzzed once more on
    # its own: it fails the test only if it fails again.
    # The same for an error inside the fuzzer itself, not an answer of ours: Python 3.11's `ast`,
    # which hypothesis uses to describe its lambdas, raised "AST constructor recursion depth
    # mismatch" under schemathesis' two worker threads (session 19's clean clone, save-scenario).
    inconsistent = [name for name, text in failed.items() if any(m in text for m in RETRIED_ONCE)]
    if inconsistent:
        again, still = fuzz(tmp_path / "again.xml", *inconsistent)
        for name in inconsistent:
            if name not in still:
                print(f"{name}: inconsistent on the first run, passed when fuzzed again alone")
                del failed[name]
        run = run if failed else again
    failures = [f"{name}: {text}" for name, text in failed.items()]
    assert not failures, f"{len(failures)} operations failed:\n" + "\n\n".join(failures)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # every operation of the spec ran, the excluded one aside (one junit test case per operation)
    spec = httpx.get(f"{gw.url}/openapi.json", timeout=30).json()
    operations = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        if "graceful-shutdown" not in path
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    tested = [case.get("name") for case in ET.parse(report).getroot().iter("testcase")]
    assert len(operations) > 200 and len(tested) == len(set(tested)) == len(operations), (
        len(operations),
        sorted(operations - set(tested))[:10],
    )
    services = gw.ok("get-system-info")["services"]
    down = [s.value for s in BACKEND_SERVICES if services.get(s.value, {}).get("status") != "up"]
    assert not down, services
