"""Secrets at rest. Sessions, partial login sessions, API hashes and proxy passwords are stored only
as `enc:v1:…` tokens, sealed with the runtime's master key and bound to the owning record's id, so a
token copied onto another record does not decrypt.
"""

from __future__ import annotations

import json
from typing import Any


class Vault:
    """Seals and opens secrets with the runtime's SecretBox (AES-GCM, key id, bound context)."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def seal(self, text: str, context: str) -> str:
        return self.box.encrypt(text, context=context)

    def open(self, token: str, context: str) -> str:
        return self.box.decrypt(token, context=context)

    def seal_json(self, data: dict[str, Any], context: str) -> str:
        return self.seal(json.dumps(data, separators=(",", ":")), context)

    def open_json(self, token: str, context: str) -> dict[str, Any]:
        return json.loads(self.open(token, context))
