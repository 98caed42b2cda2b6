"""Every service has one shape (docs/CONVENTIONS.md), checked on the source tree:

- `bootstrap.py` (the one composition root), `settings.py`, and domain packages with
  `handlers.py`, `service.py` and `store.py`;
- wiring is typed: no `SimpleNamespace` state bag, no `ctx.state` / `rt.state` lookups;
- background work goes through the runtime (`every`, `spawn`) and best-effort events through
  `runtime.emit`: no `asyncio.create_task` / `ensure_future` and no `_emit` copy in a service;
- edges stay at the edges: pymongo only in store modules (and migrations), httpx only in adapter
  modules, Telethon only in tg-session's `telegram/` package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "gateway": ROOT / "services/gateway/src/tgm_gateway",
    "tg-session": ROOT / "services/tg-session/src/tgm_session",
    "campaign": ROOT / "services/campaign/src/tgm_campaign",
    "ai": ROOT / "services/ai/src/tgm_ai",
    "analytics": ROOT / "services/analytics/src/tgm_analytics",
    "tailchat": ROOT / "services/tailchat/src/tgm_tailchat",
}
#: Packages whose modules talk to the outside world over HTTP or MTProto.
ADAPTER_PACKAGES = {"adapters", "providers", "telegram"}


def sources() -> list[tuple[str, Path]]:
    return [(name, p) for name, root in SERVICES.items() for p in sorted(root.rglob("*.py"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def is_store(path: Path) -> bool:
    return (
        path.name in ("store.py", "stores.py", "migrations.py")
        or path.name.endswith("_store.py")
        or "stores" in path.parts
    )


def is_adapter(path: Path) -> bool:
    return (
        bool(ADAPTER_PACKAGES & set(path.parts))
        or path.stem in ("adapter", "adapters")
        or (path.stem.endswith("_adapter"))
    )


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_has_bootstrap_settings_and_domain_packages(service: str) -> None:
    root = SERVICES[service]
    assert (root / "bootstrap.py").is_file(), f"{service}: no bootstrap.py"
    assert (root / "settings.py").is_file(), f"{service}: no settings.py"
    domains = [d for d in root.iterdir() if (d / "handlers.py").is_file()]
    assert domains, f"{service}: no domain package with handlers.py"
    for domain in domains:
        missing = [f for f in ("service.py", "store.py") if not (domain / f).is_file()]
        # A domain without state of its own (it only calls others) may do without a store.
        if missing == ["store.py"] and "pymongo" not in "".join(p.read_text() for p in domain.rglob("*.py")):
            continue
        assert not missing, f"{rel(domain)} lacks {missing}"
    assert not (root / "handlers.py").exists(), f"{service}: handlers belong to a domain package"


def test_no_untyped_state_bag() -> None:
    bad = [
        f"{rel(p)}:{n}"
        for _, p in sources()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "SimpleNamespace" in line or "ctx.state" in line or "rt.state" in line or "runtime.state" in line
    ]
    assert not bad, f"untyped wiring (use the service's app dataclass): {bad}"


def _bare_task_calls(tree: ast.AST) -> list[int]:
    """`asyncio.create_task(...)`, `asyncio.ensure_future(...)`, `<loop>.create_task(...)` (not a
    TaskGroup's, which its `async with` awaits)."""
    lines = []
    groups: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncWith):
            for item in node.items:
                call = item.context_expr
                is_group = isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "TaskGroup"
                if is_group and isinstance(item.optional_vars, ast.Name):
                    groups.add(item.optional_vars.id)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        attr, owner = node.func.attr, node.func.value
        if attr == "ensure_future":
            lines.append(node.lineno)
        elif attr == "create_task":
            if isinstance(owner, ast.Name) and owner.id in groups:
                continue
            lines.append(node.lineno)
    return lines


def test_no_hand_rolled_background_task_or_emit_copy() -> None:
    bad: list[str] = []
    for _, path in sources():
        tree = ast.parse(path.read_text(), str(path))
        bad += [f"{rel(path)}:{n} creates a task (use runtime.spawn / every)" for n in _bare_task_calls(tree)]
        bad += [
            f"{rel(path)}:{node.lineno} defines {node.name} (use runtime.emit)"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in ("_emit", "emit")
        ]
    assert not bad, "\n".join(bad)


def test_pymongo_only_in_stores_httpx_only_in_adapters_telethon_only_in_telegram() -> None:
    bad: list[str] = []
    for service, path in sources():
        mods = module_imports(ast.parse(path.read_text(), str(path)))
        if ("pymongo" in mods or "bson" in mods) and not is_store(path):
            bad.append(f"{rel(path)} imports pymongo outside a store module")
        if ("httpx" in mods or "aiohttp" in mods) and not is_adapter(path):
            bad.append(f"{rel(path)} imports httpx outside an adapter module")
        if "telethon" in mods and not (service == "tg-session" and "telegram" in path.parts):
            bad.append(f"{rel(path)} imports telethon outside tgm_session/telegram/")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_what_it_refuses() -> None:
    """The task walker is not vacuous: it flags a bare task and passes a TaskGroup's."""
    flagged = ast.parse("import asyncio\nasync def f():\n    asyncio.create_task(g())\n")
    grouped = ast.parse(
        "import asyncio\nasync def f():\n    async with asyncio.TaskGroup() as tg:\n        tg.create_task(g())\n"
    )
    assert _bare_task_calls(flagged) == [3] and _bare_task_calls(grouped) == []
