"""Write prometheusrule.yaml: the Prometheus Operator's PrometheusRule holding exactly the groups of
deploy/prometheus/alerts.yml (one source of alert rules; tests/deploy/test_k8s_validate.py checks it
is current). Run: python deploy/k8s/extras/generate.py"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[1] / "prometheus" / "alerts.yml"
HEADER = "# Generated from deploy/prometheus/alerts.yml by deploy/k8s/extras/generate.py: do not edit.\n"


def render() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tg-matrix", "labels": {"app.kubernetes.io/name": "tg-matrix"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(rule, sort_keys=False, allow_unicode=True, width=110)


if __name__ == "__main__":
    (HERE / "prometheusrule.yaml").write_text(render())
