"""`promtool` on the alert rules: they parse, and the cases of `alerts_test.yml` fire as stated.

promtool comes with Debian's `prometheus` package; `make install` installs it when it is missing (the
`promtool` target, which keeps the package's daemon from starting). Without it this test is skipped,
and `make check-deploy` installs it and runs the deploy checks.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (make check-deploy installs it)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=50, cwd=HERE)


@needs_promtool
def test_the_alert_rules_parse() -> None:
    res = promtool("check", "rules", str(ALERTS))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 18 rules found" in res.stdout, res.stdout


@needs_promtool
def test_the_alerts_fire_as_their_cases_say() -> None:
    res = promtool("test", "rules", "alerts_test.yml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout, res.stdout
