from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tgm_stack import DEFAULT_MODULES, Stack

FAKES = Path(__file__).parent / "fakes"
FAKE_MODULES = {name: "stack_fake_child" for name in DEFAULT_MODULES}


def fake_env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, **extra}


@pytest.fixture
def cli_args_env() -> tuple[list[str], dict[str, str]]:
    """Arguments and environment for `tgm-stack up` running the fake child everywhere."""
    args: list[str] = []
    for name, module in FAKE_MODULES.items():
        args += ["--module", f"{name}={module}"]
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "MONGODB_URI", "TGM_DATA_DIR")}
    env.update(fake_env())
    return args, env


@pytest.fixture(autouse=True)
def _no_external_infra(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stack honours NATS_URL / MONGODB_URI from the environment; tests decide explicitly.
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.delenv("MONGODB_URI", raising=False)


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Builds (not starts) stacks that run the fake child; stops every one after the test."""
    made: list[Stack] = []

    def make(data_dir: Path | None = None, *, extra_env: dict[str, str] | None = None, **kwargs) -> Stack:
        kwargs.setdefault("gateway_port", 0)
        kwargs.setdefault("ready_timeout", 20)
        kwargs.setdefault("grace", 5)
        stack = Stack(
            data_dir or tmp_path / "data",
            modules=FAKE_MODULES,
            extra_env=fake_env(**(extra_env or {})),
            **kwargs,
        )
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
