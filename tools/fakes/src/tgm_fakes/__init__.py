"""Seed-faithful fakes of MaiAgent (seed 001), DmFlow (seed 003) and an OpenAI-compatible endpoint.

Each `build()` returns a Starlette app; `LoopbackServer(app).start()` serves it on 127.0.0.1 in a
background thread. `POST /_fake/faults {"mode": "401"|"400"|"404"|"429"|"500"|"timeout"|"malformed"|
"schema"|"stream-cut", "count": n}` injects errors; `GET /_fake/requests` shows what was received.
"""

from .common import FAULT_MODES, FakeState, Faults, LoopbackServer

__all__ = ["FAULT_MODES", "FakeState", "Faults", "LoopbackServer"]
