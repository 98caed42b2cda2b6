"""Write the deploy files that are generated, each from its one source; `--check` writes nothing and
exits 1 naming every file that is not current.

| file | source |
|---|---|
| `deploy/k8s/nats/accounts.conf` | the bus permissions, `tgm_contracts.bus` |
| `deploy/METRICS.md` | every service's metrics registry (`deploy/metrics_doc.py`) |
| `deploy/k8s/extras/prometheusrule.yaml` | the alert rules, `deploy/prometheus/alerts.yml` |

Run by `make schemas` (after the contracts' JSON Schemas); `tests/deploy` runs `--check`:

    .venv/bin/python deploy/generate.py            # rewrite whatever is not current
    .venv/bin/python deploy/generate.py --check    # exit 1 when a committed file is stale
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
sys.path.insert(0, str(DEPLOY))

import metrics_doc  # noqa: E402  (deploy/ is not a package)
from tgm_contracts.bus import render_accounts_conf  # noqa: E402

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RULE_HEADER = "# Generated from deploy/prometheus/alerts.yml by deploy/generate.py: do not edit.\n"


def prometheus_rule() -> str:
    """The Prometheus Operator's PrometheusRule holding exactly the groups of alerts.yml."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tg-matrix", "labels": {"app.kubernetes.io/name": "tg-matrix"}},
        "spec": {"groups": groups},
    }
    return RULE_HEADER + yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=110)


#: Each generated file and what renders it.
OUTPUTS: dict[Path, Callable[[], str]] = {
    DEPLOY / "k8s" / "nats" / "accounts.conf": render_accounts_conf,
    DEPLOY / "METRICS.md": lambda: metrics_doc.render(metrics_doc.families()),
    DEPLOY / "k8s" / "extras" / "prometheusrule.yaml": prometheus_rule,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, render in OUTPUTS.items():
        text = render()
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(DEPLOY.parent)}")
    for path in stale:
        print(f"{path.relative_to(DEPLOY.parent)} is stale: run `make schemas`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
