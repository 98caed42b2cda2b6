"""What use cases are given of the runtime, as plain callables (never the runtime itself): so a use
case can be built in a unit test with fakes, and its constructor says which of them it needs.

`bootstrap.py` passes the runtime's own methods: `emit` (best-effort publish, counted and logged),
`spawn` (a tracked background task, cancelled at stop) and `forward` (`runtime.request`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pydantic import BaseModel
from tgm_contracts import Event

#: Publish an event if the bus takes it; never raises (`ServiceRuntime.emit`).
Emit = Callable[[Event], Awaitable[bool]]
#: Run a coroutine in the background, tracked and cancelled at stop (`ServiceRuntime.spawn`).
Spawn = Callable[[Coroutine[Any, Any, Any], str], "asyncio.Task[Any]"]
#: Ask another replica: subject, JSON body, response model, timeout (`ServiceRuntime.request`).
Forward = Callable[[str, dict[str, Any], type[BaseModel], float], Awaitable[Any]]
