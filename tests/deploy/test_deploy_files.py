"""The deployment files (compose.yaml, deploy/) are consistent with the code and with each other.

No Docker engine or Kubernetes cluster is needed: files are parsed and cross-checked; the NATS permissions
are also exercised against a real `nats-server` (integration test at the end).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from tgm_contracts import REGISTRY, bus
from tgm_contracts.bus import password_var

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
ACCOUNTS_CONF = K8S / "nats" / "accounts.conf"

#: service -> (python module, port serving /healthz, /readyz and /metrics)
SERVICES: dict[str, tuple[str, int]] = {
    "gateway": ("tgm_gateway", 8080),
    "tg-session": ("tgm_session", 8081),
    "campaign": ("tgm_campaign", 8081),
    "ai": ("tgm_ai", 8081),
    "analytics": ("tgm_analytics", 8081),
    "tailchat": ("tgm_tailchat", 8081),
}

#: The bus permissions: one declaration in contracts (tgm_contracts.bus), accounts.conf generated from it.
BUS_USERS = {u.name: u for u in bus.USERS}


def load_yaml_docs(path: Path) -> list[Any]:
    with path.open() as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# --- a small reader for the nats-server config format (the subset accounts.conf uses) ------------------


class NatsConfError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>(?:\#|//)[^\n]*)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<punct>[{}\[\],:=])
      | (?P<word>[^\s{}\[\],:=#"]+)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip():
                raise NatsConfError(f"cannot read nats config at {text[pos : pos + 30]!r}")
            break
        pos = m.end()
        if m.lastgroup == "comment":
            continue
        kind = m.lastgroup or ""
        val = m.group(kind)
        out.append((kind, json.loads(val) if kind == "str" else val))
    return out


def parse_nats_conf(text: str) -> dict[str, Any]:
    """Maps (`k: v`, `k = v`, `k { ... }`), lists, quoted strings, bare words, `$VAR` references
    (kept as the string "$VAR"). Enough to check users and permissions; nats-server itself reads it too
    (see the integration test)."""
    toks = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(toks):
            raise NatsConfError("unexpected end of config")
        pos += 1
        return toks[pos - 1]

    def value() -> Any:
        kind, val = take()
        if (kind, val) == ("punct", "{"):
            return mapping(closing="}")
        if (kind, val) == ("punct", "["):
            items = []
            while peek() != ("punct", "]"):
                if peek() == ("punct", ","):
                    take()
                    continue
                items.append(value())
            take()
            return items
        if kind in ("str", "word"):
            return {"true": True, "false": False, "enabled": True}.get(val, val) if kind == "word" else val
        raise NatsConfError(f"unexpected {val!r}")

    def mapping(closing: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while True:
            nxt = peek()
            if nxt is None:
                if closing:
                    raise NatsConfError(f"missing {closing!r}")
                return out
            if nxt == ("punct", closing):
                take()
                return out
            if nxt == ("punct", ","):
                take()
                continue
            kind, key = take()
            if kind not in ("word", "str"):
                raise NatsConfError(f"expected a key, got {key!r}")
            if peek() in (("punct", ":"), ("punct", "=")):
                take()
            if key in out:
                raise NatsConfError(f"duplicate key {key!r}")
            out[key] = value()

    return mapping(closing=None)


def nats_users() -> dict[str, dict[str, Any]]:
    conf = parse_nats_conf(ACCOUNTS_CONF.read_text())
    users = conf["accounts"]["TGM"]["users"]
    return {u["user"]: u for u in users}


# --- metric names in PromQL ------------------------------------------------------------------------------

_PROMQL_KEYWORDS = {
    "and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "e",
}  # fmt: skip


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels, keywords and durations removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)  # label values
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\w+", " ", s)  # Grafana variables
    s = re.sub(r"\boffset\s+\d+[smhdwy]+", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        name, call = m.group(1), m.group(2)
        if call or name in _PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def promql_labels(expr: str) -> tuple[set[tuple[str, str]], set[str]]:
    """Labels an expression uses: (metric, label) of each selector's matchers, and the labels of its
    grouping clauses (`by`, `without`, `on`, `ignoring`, `group_*`)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    selected = {
        (m.group(1), label.group(1))
        for m in _SELECTOR.finditer(s)
        if m.group(1)
        for label in _MATCHER.finditer(m.group(2))
    }
    grouped = {x.strip() for g in _GROUPING.finditer(s) for x in g.group(1).split(",") if x.strip()}
    return selected, grouped


def template_labels(text: str) -> set[str]:
    """Labels a Grafana legend (`{{state}}`) or an alert annotation (`{{ $labels.state }}`) shows."""
    return set(re.findall(r"\{\{\s*(?:\$labels\.)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", text))


def metric_families() -> dict[str, dict[str, Any]]:
    """{name: {type, labels, services, help}} from every service's registry (deploy/metrics_doc.py)."""
    out = subprocess.run(
        [sys.executable, str(DEPLOY / "metrics_doc.py"), "--json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def exported_labels(families: dict[str, dict[str, Any]]) -> dict[str, set[str]]:
    """Every name PromQL can select -> the labels its series carry (target labels included)."""
    target = {"service", "instance", "job"}
    out: dict[str, set[str]] = {"up": set(target)}
    for name, fam in families.items():
        labels = set(fam["labels"]) | target
        out[name] = labels
        if fam["type"] == "histogram":
            out[name + "_bucket"] = labels | {"le"}
            out[name + "_sum"] = out[name + "_count"] = labels
    return out


def panel_and_rule_queries() -> list[tuple[str, str, set[str]]]:
    """(where, PromQL, labels shown in its legend or annotations) of every panel target and alert rule."""
    queries = [
        (r["alert"], r["expr"], template_labels(json.dumps(r.get("annotations", {})))) for r in alert_rules()
    ]
    for panel in dashboard()["panels"]:
        queries += [
            (panel["title"], t["expr"], template_labels(t.get("legendFormat", "")))
            for t in panel.get("targets", [])
        ]
    return queries


def unbacked(queries: list[tuple[str, str, set[str]]], exported: dict[str, set[str]]) -> set[str]:
    """What the queries name that `exported` (name -> labels) does not have: metrics, and labels of a
    selector or of a grouping/legend that none of the query's metrics carries."""
    problems = set()
    for where, expr, shown in queries:
        names = promql_metric_names(expr)
        problems |= {f"{where}: metric {n}" for n in names if n not in exported}
        selected, grouped = promql_labels(expr)
        for name, label in selected:
            if name in exported and label not in exported[name]:
                problems.add(f"{where}: {name} has no label {label}")
        carried = set().union(*(exported.get(n, set()) for n in names))
        problems |= {f"{where}: no metric of the query has label {x}" for x in (grouped | shown) - carried}
    return problems


def dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana/dashboards/tg-matrix.json").read_text())


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


# ===================================================== unit tests =======================================


@pytest.mark.parametrize(
    "path",
    sorted([ROOT / "compose.yaml", *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.json")]),
    ids=lambda p: str(p.relative_to(ROOT)),
)
@pytest.mark.unit
@pytest.mark.timeout(30)
def test_every_yaml_and_json_file_parses(path: Path) -> None:
    if path.suffix == ".json":
        assert isinstance(json.loads(path.read_text()), dict)
    else:
        assert load_yaml_docs(path), f"{path} is empty"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.unit
@pytest.mark.timeout(30)
def test_service_packages_match_the_image_recipe(service: str) -> None:
    """The Dockerfile installs `tgm-<SERVICE>` and the entrypoint runs the matching module."""
    module, _ = SERVICES[service]
    project = tomllib.loads((ROOT / f"services/{service}/pyproject.toml").read_text())["project"]
    assert project["name"] == f"tgm-{service}"
    assert (ROOT / f"services/{service}/src/{module}").is_dir()
    entry = (DEPLOY / "docker/entrypoint.sh").read_text()
    assert f"{service}) echo {module} ;;" in entry


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_dockerfile_uses_the_lock_and_a_non_root_user() -> None:
    text = (DEPLOY / "docker/Dockerfile").read_text()
    assert "ARG SERVICE" in text
    syncs = re.findall(r"uv sync ([^\n]+)", text)
    assert len(syncs) == 2
    for args in syncs:
        assert "--frozen" in args and "--no-dev" in args and '--package "tgm-${SERVICE}"' in args
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["tgm-entrypoint"]' in text
    # the ports the probes use are the image defaults
    assert "TGM_HEALTH_PORT=8081" in text and "TGM_GATEWAY_PORT=8080" in text
    assert "TGM_HEALTH_HOST=0.0.0.0" in text and "TGM_GATEWAY_HOST=0.0.0.0" in text
    ignore = (DEPLOY / "docker/Dockerfile.dockerignore").read_text().split()
    for needed in ("!pyproject.toml", "!uv.lock", "!libs/", "!services/", "!deploy/docker/entrypoint.sh"):
        assert needed in ignore


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_compose_runs_every_service_with_health_checks() -> None:
    services = _compose()["services"]
    for infra in ("nats", "mongodb", "mongodb-init", "prometheus", "grafana"):
        assert infra in services
    assert "--replSet" in services["mongodb"]["command"]
    assert "rs.initiate" in services["mongodb-init"]["entrypoint"][-1]
    assert "-js" not in services["nats"]["command"]  # JetStream comes from nats.conf
    assert "jetstream" in (K8S / "nats/nats.conf").read_text()
    for name, (_module, port) in SERVICES.items():
        svc = services[name]
        assert svc["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert svc["build"]["args"]["SERVICE"] == name
        env = svc["environment"]
        assert env["TGM_SERVICE"] == name
        assert env["NATS_URL"].startswith(f"nats://{name}:${{{password_var(name)}:?")
        assert env["NATS_URL"].endswith("@nats:4222")
        assert "replicaSet=rs0" in env["MONGODB_URI"]
        assert env["TGM_MASTER_KEY"].startswith("${TGM_MASTER_KEY:?")
        assert svc["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py", "/readyz"]
        assert svc["depends_on"]["nats"]["condition"] == "service_healthy"
        assert svc["depends_on"]["mongodb-init"]["condition"] == "service_completed_successfully"
        assert svc["logging"]["options"]["max-size"] and svc["logging"]["options"]["max-file"]
        assert svc["deploy"]["resources"]["limits"]["memory"]
        if name == "gateway":
            assert env["TGM_GATEWAY_PORT"] == str(port)
            assert svc["ports"] == ["${TGM_GATEWAY_PUBLISH:-127.0.0.1:8080}:8080"]  # loopback by default
            assert env["TGM_ADMIN_KEY_FILE"] == "/data/admin.key"
            assert "gateway-data:/data" in svc["volumes"]
        else:
            assert env["TGM_HEALTH_PORT"] == str(port)
            assert env["TGM_HEALTH_HOST"] == "0.0.0.0"


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_every_compose_container_rotates_its_logs_and_has_limits() -> None:
    # issue 17, finding 5: the infrastructure containers (NATS, its exporter, MongoDB, Prometheus,
    # Grafana) logged without rotation and ran without limits; only TG-Matrix's own services had both.
    for name, svc in _compose()["services"].items():
        logging = svc.get("logging") or {}
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 1, name
        limits = svc["deploy"]["resources"]["limits"]
        assert limits["memory"] and float(limits["cpus"]) > 0, name


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_compose_variables_are_in_the_env_example() -> None:
    lines = (ROOT / "compose.yaml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = (DEPLOY / "compose.env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", example, re.MULTILINE))
    assert used - listed == set(), "variables compose.yaml uses but compose.env.example does not list"
    # Every NATS user's password reaches the nats container.
    nats_env = _compose()["services"]["nats"]["environment"]
    for user, spec in nats_users().items():
        assert spec["password"].startswith("$")
        assert spec["password"][1:] in nats_env, user


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_prometheus_scrapes_every_service_on_its_port() -> None:
    conf = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    assert "/etc/prometheus/alerts.yml" in conf["rule_files"]
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    for name, (_module, port) in SERVICES.items():
        sd = jobs[name]["dns_sd_configs"][0]
        assert sd["names"] == [name] and sd["port"] == port
        assert {"target_label": "service", "replacement": name} in jobs[name]["relabel_configs"]
    mounted = " ".join(_compose()["services"]["prometheus"]["volumes"])
    assert "deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounted


def _k8s_resources() -> list[dict[str, Any]]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for res in kust["resources"]:
        assert (K8S / res).is_file(), f"kustomization names a missing file {res}"
        docs += load_yaml_docs(K8S / res)
    for gen in kust["configMapGenerator"]:
        for f in gen["files"]:
            assert (K8S / f).is_file()
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _k8s_resources() if d["kind"] == kind}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.unit
@pytest.mark.timeout(30)
def test_k8s_deployment_probes_the_health_port(service: str) -> None:
    _module, port = SERVICES[service]
    dep = _by_kind("Deployment")[service]
    pod = dep["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports[get["port"]] == port, f"{service} {probe} is not on port {port}"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TGM_SERVICE"]["value"] == service
    assert env["NATS_URL"]["value"] == f"nats://{service}:$(TGM_NATS_PASSWORD)@nats:4222"
    assert env["TGM_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == password_var(service)
    assert env["TGM_MASTER_KEY_FILE"]["value"].startswith("/var/run/secrets/tgm/")
    # The env var that defines NATS_URL's $(TGM_NATS_PASSWORD) must come before it.
    names = [e["name"] for e in container["env"]]
    assert names.index("TGM_NATS_PASSWORD") < names.index("NATS_URL")
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    selector = dep["spec"]["selector"]["matchLabels"]
    assert all(pod["metadata"]["labels"][k] == v for k, v in selector.items())
    if service != "gateway":
        config = _by_kind("ConfigMap")["tgm-config"]["data"]
        assert config["TGM_HEALTH_PORT"] == str(port) and config["TGM_HEALTH_HOST"] == "0.0.0.0"
    else:
        assert env["TGM_GATEWAY_PORT"]["value"] == str(port)
    svc = _by_kind("Service")[service]
    assert svc["spec"]["selector"] == selector
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= set(ports)


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_k8s_hpas_target_existing_deployments() -> None:
    deployments = _by_kind("Deployment")
    hpas = _by_kind("HorizontalPodAutoscaler")
    assert set(hpas) == set(SERVICES)
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["apiVersion"]) == ("Deployment", "apps/v1")
        assert ref["name"] in deployments, f"HPA {name} targets a missing Deployment {ref['name']}"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # the HPA owns the replica count: a fixed one would be reset on every apply
        assert "replicas" not in deployments[ref["name"]]["spec"]


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_k8s_secrets_cover_every_reference() -> None:
    example = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    keys = set(example["stringData"])
    refs = set()
    for doc in _k8s_resources():
        text = json.dumps(doc)
        refs |= set(re.findall(r'"secretKeyRef": \{"name": "tgm-secrets", "key": "([A-Z_]+)"\}', text))
        refs |= set(re.findall(r'"key": "([A-Z_]+)", "path"', text))
    assert refs and refs <= keys, refs - keys
    assert {password_var(u) for u in nats_users()} <= keys
    # NATS pods get every password accounts.conf references.
    nats = _by_kind("StatefulSet")["nats"]["spec"]["template"]["spec"]["containers"][0]
    assert {password_var(u) for u in nats_users()} <= {e["name"] for e in nats["env"]}


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_nats_conf_reader_reads_what_it_must() -> None:
    conf = parse_nats_conf('a { b: [ "x", y ], c = $V, d: true }  # note\n e: 1')
    assert conf == {"a": {"b": ["x", "y"], "c": "$V", "d": True}, "e": "1"}
    with pytest.raises(NatsConfError):
        parse_nats_conf("a { b: 1")


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_accounts_conf_is_generated_from_the_bus_declaration() -> None:
    """deploy/k8s/nats/accounts.conf is what tgm_contracts.bus renders (`make schemas` writes it)."""
    assert ACCOUNTS_CONF.read_text() == bus.render_accounts_conf(), "stale: run `make schemas`"
    check = subprocess.run(
        [sys.executable, str(DEPLOY / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_nats_permissions_give_each_service_its_own_subjects_only() -> None:
    users = nats_users()
    assert set(users) == set(SERVICES) == set(BUS_USERS)
    for name, user in users.items():
        declared = BUS_USERS[name]
        perms = user["permissions"]
        pub = set(perms["publish"]["allow"])
        sub = set(perms["subscribe"]["allow"])
        own = f"tgm.{name}.>"
        assert pub == set(declared.publish_allow()) and sub == set(declared.subscribe_allow()), name
        assert own in pub and own in sub
        assert sub - {own, "tgm.*.evt.>", f"_INBOX.{name}.>"} == set(declared.hears), name
        assert set(perms["publish"]["deny"]) == {"$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.TGM_EVENTS"}
        assert perms["allow_responses"] is True
        assert user["password"] == "$" + password_var(name)
        # Rules, beyond the declaration: nobody gets everything; nobody reads another's replies; events
        # are published only by their owner; only the gateway sends commands by wildcard (a service that
        # runs another's command names it exactly); only tg-session serves accounts.
        for subject in pub | sub:
            assert subject not in (">", "tgm.>", "tgm.*.>", "$JS.>")
        assert "_INBOX.>" not in sub and not {
            s for s in sub if s.startswith("_INBOX.") and s != f"_INBOX.{name}.>"
        }
        for subject in pub:
            parts = subject.split(".")
            if parts[0] == "tgm" and len(parts) > 2 and parts[1] not in (name, "acct", "stream"):
                kind = parts[2]
                assert kind in ("rpc", "cmd", "sys"), (name, subject)
                # Besides the gateway, only these sys ops, each named: analytics' read-only probe and
                # timezone; campaign's timezone and ai's auto-reply switch (automation's AI control).
                named = {
                    "analytics": {"tgm.*.sys.info.v1", "tgm.gateway.sys.settings-get.v1"},
                    "campaign": {
                        "tgm.gateway.sys.settings-get.v1",
                        "tgm.ai.sys.settings-get.v1",
                        "tgm.ai.sys.settings-save.v1",
                    },
                }
                allowed = subject in named.get(name, set())
                assert kind != "sys" or name == "gateway" or allowed, (name, subject)
                if kind == "cmd" and name != "gateway":
                    assert subject in COMMAND_SUBJECTS, (name, subject)
        if name != "tg-session":
            assert "tgm.acct.>" not in sub


COMMAND_SUBJECTS = {REGISTRY.get(n).SUBJECT for n in REGISTRY.names()}  # type: ignore[union-attr]


def _called_by(package: Path) -> set[str]:
    """Subjects of other services' commands and rpcs a service package calls by contract class
    (`runtime.call(GetAccounts, ...)`, `self.call(AiGenerateResponse, ...)`)."""
    import ast

    from tgm_contracts import RPCS

    classes: dict[str, Any] = {REGISTRY.get(n).__name__: REGISTRY.get(n) for n in REGISTRY.names()}  # type: ignore[union-attr]
    classes.update({c.__name__: c for c in RPCS})
    service = package.parts[package.parts.index("services") + 1]
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Name)):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            target = classes.get(node.args[0].id)
            if name == "call" and target is not None and target.OWNER.value != service:
                found.add(target.SUBJECT)
        found |= _sys_ops_of(path, service)
    return found


def _sys_ops_of(path: Path, service: str) -> set[str]:
    """Other services' sys ops a module names as `<SysOp>.subject(Service.<X>)` (`SettingsGet`,
    `sysops.SettingsSave`, ...): sent with `runtime.request`, so not found as a `call`."""
    import ast

    from tgm_contracts import Service
    from tgm_contracts.sys import SYS_OPS

    ops = {op.__name__: op for op in SYS_OPS}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "subject"
        ):
            continue
        owner = node.func.value
        op = ops.get(owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", ""))
        arg = node.args[0] if node.args else None
        if op is None or not (isinstance(arg, ast.Attribute) and getattr(arg.value, "id", "") == "Service"):
            continue
        callee = Service[arg.attr]
        if callee.value != service:
            found.add(op.subject(callee))
    return found


@pytest.mark.unit
@pytest.mark.timeout(60)
def test_every_call_a_service_makes_is_granted_by_the_declaration() -> None:
    """A call the declaration forgets is a `Permissions Violation` (and a TIMEOUT) on a real server:
    every command or rpc a service calls by its contract class is in its publish allow list."""
    seen = 0
    for user in bus.USERS:
        (package,) = (ROOT / "services" / user.name / "src").glob("tgm_*")
        called = _called_by(package)
        seen += len(called)
        missing = {s for s in called if not user.may_publish(s)}
        assert not missing, f"{user.name} calls {sorted(missing)}: declare them in tgm_contracts/bus.py"
    assert seen >= 8  # the scan finds the calls there are (campaign's and analytics', sys ops too)


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_promql_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (service, le) (rate(tgm_command_seconds_bucket{service=~"$service"}'
        "[$__rate_interval]))) > 2 and max(x_total offset 30m) - y unless on(job) up"
    )
    assert promql_metric_names(expr) == {"tgm_command_seconds_bucket", "x_total", "y", "up"}


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_promql_label_extraction() -> None:
    selected, grouped = promql_labels(
        'sum by (category) (increase(x_total{state=~"a|b", le!="1"}[5m])) / on(job) y{code="}"}'
    )
    assert selected == {("x_total", "state"), ("x_total", "le"), ("y", "code")}
    assert grouped == {"category", "job"}
    assert template_labels("{{state}} {{ $labels.provider }} {{ $value }}") == {"state", "provider"}
    exported = {"x_total": {"state", "service"}, "y": {"code"}}
    assert unbacked([("p", "sum by (method) (x_total)", {"service"})], exported) == {
        "p: no metric of the query has label method"
    }
    assert unbacked([("p", 'max(z{state="a"}) + x_total{le="1"}', set())], exported) == {
        "p: metric z",
        "p: x_total has no label le",
    }


@pytest.mark.unit
@pytest.mark.timeout(90)
def test_metrics_md_is_generated_from_the_registry_and_current() -> None:
    out = subprocess.run(
        [sys.executable, str(DEPLOY / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.unit
@pytest.mark.timeout(90)
def test_dashboard_and_alerts_use_only_registered_metrics_and_labels() -> None:
    """Static half of the drift check (the live half: tests/deploy/test_metrics_live.py)."""
    queries = panel_and_rule_queries()
    assert len(queries) > 20
    assert not unbacked(queries, exported_labels(metric_families()))


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_dashboard_covers_the_required_views() -> None:
    dash = dashboard()
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    text = json.dumps(panels)
    for metric in (
        "tgm_commands_total", "tgm_command_seconds_bucket", "tgm_gateway_commands_total",
        "tgm_session_accounts", "tgm_session_sends_total", "tgm_session_flood_waits_total",
        "tgm_campaign_jobs", "tgm_campaign_oldest_pending_seconds", "tgm_ai_request_seconds_bucket",
        "tgm_ai_tokens_total", "tgm_ai_provider_errors_total",
    ):  # fmt: skip
        assert metric in text, metric
    for p in panels:
        assert p["datasource"]["uid"] == "prometheus" and p["targets"], p["title"]
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["uid"] == "prometheus"
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/tg-matrix.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_alert_rules_cover_the_required_conditions() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    for name in (
        "TgmServiceDown", "TgmHighErrorRate", "TgmCommandLatencyP99High", "TgmFloodWaitSpike",
        "TgmQueueAgeGrowing", "TgmAccountsUnauthorized", "TgmAccountsBanned",
    ):  # fmt: skip
        assert name in rules
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


# ================================================ integration: real nats-server ========================


@pytest.mark.integration
@pytest.mark.timeout(60)
async def test_nats_permissions_on_a_real_server(tmp_path: Path) -> None:
    """nats-server accepts nats.conf + accounts.conf, and each user can do exactly its part."""
    import asyncio

    import nats
    from nats.js.api import StreamConfig
    from tgm_testing.procs import ManagedProcess, free_port, port_is_open
    from tgm_testing.servers import find_executable

    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "accounts.conf").write_text(ACCOUNTS_CONF.read_text())
    # The one thing changed: the JetStream store (nats-server refuses -sd next to a configured store_dir).
    main_conf = (K8S / "nats/nats.conf").read_text()
    assert 'store_dir: "/data/jetstream"' in main_conf
    (conf_dir / "nats.conf").write_text(main_conf.replace("/data/jetstream", str(tmp_path / "js")))
    passwords = {u: f"pw-{u}" for u in [*SERVICES, "sys"]}
    env = {password_var(u): p for u, p in passwords.items()}
    port, monitor = free_port(), free_port()
    server = ManagedProcess(
        [find_executable("nats-server"), "-c", conf_dir / "nats.conf", "-a", "127.0.0.1",
         "-p", str(port), "-m", str(monitor)],
        name="nats-server-perms", env=env, log_path=tmp_path / "nats.log",
        ready=lambda: port_is_open("127.0.0.1", port), ready_timeout=20, grace=5,
    )  # fmt: skip
    server.start()
    clients: dict[str, Any] = {}
    errors: dict[str, asyncio.Queue[str]] = {}
    try:
        for user in SERVICES:
            errors[user] = asyncio.Queue()

            async def on_error(exc: Exception, q: asyncio.Queue[str] = errors[user]) -> None:
                await q.put(str(exc))

            clients[user] = await nats.connect(
                f"nats://{user}:{passwords[user]}@127.0.0.1:{port}",
                error_cb=on_error,
                allow_reconnect=False,
                connect_timeout=5,
                inbox_prefix=bus.inbox_prefix(user),
            )
        # Without credentials (or with a wrong password) nobody gets in at all.
        for url in (f"nats://127.0.0.1:{port}", f"nats://campaign:wrong@127.0.0.1:{port}"):
            with pytest.raises(Exception, match=r"(?i)authorization"):
                await nats.connect(url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=0)

        async def denied(user: str, op: str, subject: str) -> bool:
            """Do `op` on `subject`, then a surely-denied sentinel publish; errors arrive in order, so the
            first error says whether `op` was refused (no waiting on a timeout)."""
            nc = clients[user]
            if op == "pub":
                await nc.publish(subject, b"x")
            else:
                await nc.subscribe(subject)
            await nc.publish("denied.sentinel", b"x")
            await nc.flush(timeout=5)
            first = await asyncio.wait_for(errors[user].get(), 5)
            if "denied.sentinel" in first:
                return False
            assert subject.lower() in first.lower(), first
            second = await asyncio.wait_for(errors[user].get(), 5)
            assert "denied.sentinel" in second
            return True

        cases = [
            ("campaign", "pub", "tgm.campaign.evt.job-done.v1", False),
            ("campaign", "pub", "tgm.ai.evt.reply.v1", True),
            ("campaign", "pub", "tgm.tg-session.rpc.pick-accounts.v1", False),
            ("campaign", "pub", "tgm.tg-session.cmd.add-account.v1", True),
            ("campaign", "pub", "tgm.tg-session.cmd.get-accounts.v1", False),
            ("campaign", "sub", "_INBOX.>", True),
            ("campaign", "sub", "_INBOX.gateway.>", True),
            ("campaign", "sub", "_INBOX.campaign.>", False),
            ("gateway", "sub", "_INBOX.tg-session.>", True),
            ("tg-session", "sub", "_INBOX.tg-session.>", False),
            ("campaign", "pub", "tgm.acct.a1.send.v1", False),
            ("ai", "pub", "tgm.acct.a1.send.v1", True),
            ("ai", "pub", "tgm.stream.abc", False),
            ("analytics", "pub", "tgm.stream.abc", True),
            ("analytics", "pub", "tgm.acct.a1.send.v1", False),
            ("analytics", "pub", "tgm.acct.a1.join-group.v1", True),
            ("analytics", "pub", "tgm.campaign.sys.info.v1", False),
            ("analytics", "pub", "tgm.campaign.sys.restore.v1", True),
            ("analytics", "pub", "tgm.gateway.sys.settings-get.v1", False),
            ("gateway", "pub", "tgm.campaign.cmd.get-queue-status.v1", False),
            ("gateway", "pub", "tgm.analytics.sys.info.v1", False),
            ("gateway", "pub", "tgm.campaign.evt.job-done.v1", True),
            ("gateway", "pub", "tgm.tailchat.rpc.receive-tailchat-callback.v1", False),
            ("gateway", "pub", "tgm.campaign.rpc.anything.v1", True),
            ("tg-session", "sub", "tgm.acct.>", False),
            ("campaign", "sub", "tgm.acct.>", True),
            ("ai", "sub", "tgm.ai.cmd.>", False),
            ("ai", "sub", "tgm.campaign.cmd.>", True),
            ("analytics", "sub", "tgm.*.evt.>", False),
            ("gateway", "sub", "tgm.stream.>", False),
            ("ai", "sub", "tgm.stream.>", True),
        ]
        for user, op, subject, expect_denied in cases:
            assert await denied(user, op, subject) is expect_denied, (user, op, subject)

        # Request/reply across users: the gateway calls a command, ai answers (allow_responses).
        async def answer(msg: Any) -> None:
            await msg.respond(b'{"ok": true}')

        await clients["ai"].subscribe("tgm.ai.cmd.ping.v1", queue="ai", cb=answer)
        await clients["ai"].flush()
        # ai also holds a plain subscription on tgm.ai.cmd.> (from the cases above), so the request reaches
        # this connection twice: the case where allow_responses alone refuses the answer.
        reply = await clients["gateway"].request("tgm.ai.cmd.ping.v1", b"{}", timeout=5)
        assert reply.data == b'{"ok": true}'

        # JetStream as the runtime uses it: create the event stream, publish an event with an ack,
        # consume it durably from another service, write a backup part; deleting the stream is refused.
        js_ai = clients["ai"].jetstream()
        await js_ai.add_stream(
            StreamConfig(name="TGM_EVENTS", subjects=["tgm.*.evt.>"], duplicate_window=120)
        )
        ack = await js_ai.publish("tgm.ai.evt.answered.v1", b"{}", headers={"Nats-Msg-Id": "e1"})
        assert ack.stream == "TGM_EVENTS"
        js_an = clients["analytics"].jetstream()
        sub = await js_an.subscribe("tgm.ai.evt.>", durable="analytics_ai", queue="analytics_ai")
        msg = await sub.next_msg(timeout=5)
        await msg.ack()
        store = await js_an.create_object_store("tgm_backups")
        await store.put("b1/analytics.jsonl.gz", b"data")
        assert (await store.get("b1/analytics.jsonl.gz")).data == b"data"
        kv = await clients["tg-session"].jetstream().create_key_value(bucket="tgm_account_leases", ttl=15)
        await kv.create("a1", b"replica-1")
        # The server drops the refused API request, so the client sees no answer.
        with pytest.raises(Exception, match=r"(?i)permission|timeout"):
            await clients["analytics"].jetstream(timeout=0.5).delete_stream("TGM_EVENTS")
        assert (await js_ai.stream_info("TGM_EVENTS")).config.name == "TGM_EVENTS"
    finally:
        for nc in clients.values():
            await nc.close()
        server.terminate()


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_k8s_admin_key_comes_from_the_secret_and_jetstream_keeps_three_copies() -> None:
    """Issue 17 findings 1 and 2: every gateway replica reads one admin key from the Secret (not an
    emptyDir each); JetStream keeps 3 copies on the 3-node cluster, compose's single node 1."""
    pod = _by_kind("Deployment")["gateway"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mount = next(m for m in container["volumeMounts"] if env["TGM_ADMIN_KEY_FILE"].startswith(m["mountPath"]))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    items = {i["path"]: i["key"] for i in volume["secret"]["items"]}
    assert volume["secret"]["secretName"] == "tgm-secrets"
    assert items[env["TGM_ADMIN_KEY_FILE"].rsplit("/", 1)[1]] == "TGM_ADMIN_KEY"
    assert _by_kind("ConfigMap")["tgm-config"]["data"]["TGM_JS_REPLICAS"] == "3"
    nats = _by_kind("StatefulSet")["nats"]["spec"]
    assert nats["replicas"] == 3
    assert yaml.safe_load((ROOT / "compose.yaml").read_text())["x-tgm-env"]["TGM_JS_REPLICAS"] == "1"
