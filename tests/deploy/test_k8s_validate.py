"""The Kubernetes manifests as the cluster gets them, validated offline (issue 17, finding 5 and the
validator runs its Done-when asks for):

- `deploy/k8s` rendered like `kubectl kustomize` (resources, the nats-config ConfigMap generator, the
  namespace and the common label) and every object validated against the Kubernetes 1.30 and 1.33 API
  schemas with kubernetes-validate (strict: an unknown field is an error);
- `deploy/k8s/extras` (Ingress with TLS; ServiceMonitor and PrometheusRule for the Prometheus
  Operator): the Ingress validated likewise, the PrometheusRule's groups equal to
  `deploy/prometheus/alerts.yml` (one source of rules), a ServiceMonitor for every service;
- `compose.yaml` against the Compose Specification's schema (check-jsonschema's vendored copy);
- the NetworkPolicies evaluated as the API defines them (policies add up; a pod selected by no policy
  of a direction is open in it): every connection the system needs is allowed and the ones it must
  not make are denied, from default-deny on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
EXTRAS = K8S / "extras"
VERSIONS = ("1.30.0", "1.33.0")
NAMESPACE = "tg-matrix"
SERVICES = ("gateway", "tg-session", "campaign", "ai", "analytics", "tailchat")
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}  # CRDs: not in the core API schemas


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def render(base: Path) -> list[dict[str, Any]]:
    """What `kubectl kustomize base` gives for the features our kustomizations use."""
    kust = yaml.safe_load((base / "kustomization.yaml").read_text())
    docs = [d for r in kust.get("resources", []) for d in _docs(base / r)]
    for gen in kust.get("configMapGenerator", []):
        data = {Path(f).name: (base / f).read_text() for f in gen["files"]}
        docs.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
        )
    labels = {k: v for item in kust.get("labels", []) for k, v in item["pairs"].items()}
    for d in docs:
        meta = d.setdefault("metadata", {})
        if d["kind"] != "Namespace" and kust.get("namespace"):
            meta["namespace"] = kust["namespace"]
        meta["labels"] = {**meta.get("labels", {}), **labels}
    return docs


@pytest.fixture(scope="module")
def cluster() -> list[dict[str, Any]]:
    return render(K8S)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_object_is_valid_for_the_kubernetes_api(cluster: list[dict[str, Any]], version: str) -> None:
    extras = [d for d in render(EXTRAS) if d["kind"] not in OPERATOR_KINDS]
    assert {d["kind"] for d in extras} == {"Ingress"}
    problems = []
    for doc in cluster + extras:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def test_the_operator_objects_follow_the_plain_files() -> None:
    extras = render(EXTRAS)
    rules = [d for d in extras if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rules[0]["spec"]["groups"] == alerts["groups"], "regenerate: make schemas"
    monitors = {d["metadata"]["name"]: d for d in extras if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == set(SERVICES)
    for name, mon in monitors.items():
        assert mon["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert mon["spec"]["endpoints"][0]["path"] == "/metrics"
    ingress = next(d for d in extras if d["kind"] == "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway"


def test_jetstream_stops_short_of_its_volume(cluster: list[dict[str, Any]]) -> None:
    """`max_file_store` must leave the volume room (finding 5: 20GB on a 20 Gi volume)."""
    import re

    units = {"Gi": 2**30, "GB": 10**9, "G": 10**9, "MB": 10**6, "Mi": 2**20}

    def size(text: str) -> int:
        number, unit = re.fullmatch(r"(\d+)\s*([A-Za-z]+)", text.strip()).groups()  # type: ignore[union-attr]
        return int(number) * units[unit]

    conf = (K8S / "nats" / "nats.conf").read_text()
    limit = size(re.search(r"max_file_store:\s*(\S+)", conf).group(1))  # type: ignore[union-attr]
    nats = next(d for d in cluster if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "nats")
    volume = size(nats["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"])
    assert limit <= 0.85 * volume, (limit, volume)


def test_compose_follows_the_compose_specification() -> None:
    cli = Path(sys.executable).with_name("check-jsonschema")
    out = subprocess.run(
        [str(cli), "--builtin-schema", "vendor.compose-spec", str(ROOT / "compose.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# --- NetworkPolicy semantics --------------------------------------------------------------------


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        has, value = e["key"] in labels, labels.get(e["key"])
        ok = {
            "In": has and value in e.get("values", []),
            "NotIn": not has or value not in e.get("values", []),
            "Exists": has,
            "DoesNotExist": not has,
        }[e["operator"]]
        if not ok:
            return False
    return True


class Endpoint:
    """A pod (its namespace and labels) or an address outside the cluster (`external`)."""

    def __init__(self, namespace: str | None, labels: dict[str, str] | None = None) -> None:
        self.namespace, self.labels = namespace, labels or {}

    @property
    def external(self) -> bool:
        return self.namespace is None

    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace or ""}


def _peer_matches(peer: dict[str, Any], other: Endpoint, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        return other.external  # CIDRs: outside the cluster's pods (the pods have their own rules)
    if other.external:
        return False
    ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
    in_ns = _selects(ns_sel, other.namespace_labels()) if ns_sel is not None else other.namespace == policy_ns
    return in_ns and (pod_sel is None or _selects(pod_sel, other.labels))


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    return not ports or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)


def _allowed(
    policies: list[dict[str, Any]], pod: Endpoint, other: Endpoint, port: int, protocol: str, direction: str
) -> bool:
    """May `pod` make (Egress) or take (Ingress) this connection with `other`, by its own policies."""
    if pod.external:
        return True  # the outside world is not ours to police
    mine = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _selects(p["spec"]["podSelector"], pod.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not mine:
        return True
    key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    for p in mine:
        for rule in p["spec"].get(key, []):
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(x, other, pod.namespace or "") for x in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connects(
    policies: list[dict[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    return _allowed(policies, src, dst, port, protocol, "Egress") and _allowed(
        policies, dst, src, port, protocol, "Ingress"
    )


def _pods(cluster: list[dict[str, Any]]) -> dict[str, Endpoint]:
    pods = {}
    for d in cluster:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            labels = d["spec"]["template"]["metadata"]["labels"]
            pods[labels["app.kubernetes.io/name"]] = Endpoint(NAMESPACE, labels)
    return pods


def test_the_network_policies_allow_what_the_system_needs_and_nothing_else(
    cluster: list[dict[str, Any]],
) -> None:
    policies = [d for d in cluster if d["kind"] == "NetworkPolicy"]
    pods = _pods(cluster)
    assert set(pods) == {*SERVICES, "nats", "mongodb", "mongodb-rs-init"}
    outside = Endpoint(None)
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"})
    monitoring = Endpoint("monitoring", {"app.kubernetes.io/name": "prometheus"})
    stranger = Endpoint("default", {"app": "something-else"})
    needed = [(pods[s], pods["nats"], 4222) for s in SERVICES]
    needed += [(pods[s], pods["mongodb"], 27017) for s in SERVICES]
    needed += [(pods["nats"], pods["nats"], 6222), (pods["mongodb"], pods["mongodb"], 27017)]
    needed += [(pods["mongodb-rs-init"], pods["mongodb"], 27017)]
    needed += [(monitoring, pods[s], 8081) for s in SERVICES if s != "gateway"]
    needed += [(monitoring, pods["nats"], 8222), (stranger, pods["gateway"], 8080)]
    needed += [(outside, pods["gateway"], 8080)]
    needed += [(pods[s], outside, 443) for s in ("tg-session", "ai", "analytics", "tailchat")]
    refused = [(pods[s], outside, 443) for s in ("gateway", "campaign", "nats", "mongodb")]
    refused += [(stranger, pods["nats"], 4222), (stranger, pods["mongodb"], 27017)]
    refused += [(stranger, pods["nats"], 8222), (stranger, pods["campaign"], 8081)]
    refused += [(pods["gateway"], pods["campaign"], 8081), (pods["campaign"], pods["tg-session"], 8081)]
    refused += [(outside, pods["nats"], 4222), (outside, pods["mongodb"], 27017)]

    def name(e: Endpoint) -> str:
        return (
            "outside" if e.external else f"{e.namespace}/{e.labels.get('app.kubernetes.io/name', e.labels)}"
        )

    wrong = [
        f"needed but denied: {name(a)} -> {name(b)}:{p}"
        for a, b, p in needed
        if not connects(policies, a, b, p)
    ]
    wrong += [
        f"allowed but unneeded: {name(a)} -> {name(b)}:{p}"
        for a, b, p in refused
        if connects(policies, a, b, p)
    ]
    for pod in pods.values():
        if not connects(policies, pod, dns, 53, "UDP"):
            wrong.append(f"no DNS for {name(pod)}")
    assert not wrong, "\n".join(wrong)
    # and default deny covers both directions for every pod
    deny = next(p for p in policies if p["metadata"]["name"] == "default-deny")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
