"""The architecture stays visible: no service imports another; shared libraries import no service;
Telethon lives only in tg-session (and the emulator); contracts import no broker."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "tgm_gateway": ROOT / "services/gateway/src/tgm_gateway",
    "tgm_session": ROOT / "services/tg-session/src/tgm_session",
    "tgm_campaign": ROOT / "services/campaign/src/tgm_campaign",
    "tgm_ai": ROOT / "services/ai/src/tgm_ai",
    "tgm_analytics": ROOT / "services/analytics/src/tgm_analytics",
    "tgm_tailchat": ROOT / "services/tailchat/src/tgm_tailchat",
}
LIBS = {
    "tgm_contracts": ROOT / "libs/contracts/src/tgm_contracts",
    "tgm_runtime": ROOT / "libs/runtime/src/tgm_runtime",
}


def imports(package_dir: Path) -> list[tuple[Path, str]]:
    found = []
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found += [(path, a.name.split(".")[0]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((path, node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_no_service_imports_another(name: str) -> None:
    if not SERVICES[name].exists():
        pytest.skip(f"{name} not present")
    others = set(SERVICES) - {name}
    bad = [(p.relative_to(ROOT).as_posix(), m) for p, m in imports(SERVICES[name]) if m in others]
    assert not bad, f"{name} imports other services: {bad}"


def test_libraries_import_no_service() -> None:
    for lib, path in LIBS.items():
        bad = [(p.name, m) for p, m in imports(path) if m in SERVICES]
        assert not bad, f"{lib} imports a service: {bad}"


def test_contracts_import_no_broker() -> None:
    bad = [
        (p.name, m)
        for p, m in imports(LIBS["tgm_contracts"])
        if m in {"faststream", "nats", "pymongo", "tgm_runtime", "telethon"}
    ]
    assert not bad


def test_telethon_only_in_tg_session() -> None:
    for name, path in {**SERVICES, **LIBS}.items():
        if name == "tgm_session" or not path.exists():
            continue
        assert not [p for p, m in imports(path) if m == "telethon"], f"{name} imports telethon"
