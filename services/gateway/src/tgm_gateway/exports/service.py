"""Downloading an export: who may have it and whether this gateway serves one that large.

An export's object name starts with the least role that may download it (`tgm_runtime.exports`), the
role of the command that made it; a key below it is refused (and the refusal audited by the handler).
A name that is not an export's (another bucket's layout, or made up) is simply not found: nothing but
exports is served from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from tgm_contracts import ErrorCode
from tgm_runtime import DomainError, Invalid, NotFound
from tgm_runtime.exports import export_role

from ..keys.service import Principal
from .store import ExportObjects


@dataclass(frozen=True)
class Download:
    filename: str
    size: int
    body: IO[bytes]


class ExportDownloads:
    def __init__(self, objects: ExportObjects, max_bytes: int) -> None:
        self.objects, self.max_bytes = objects, max_bytes

    async def open(self, principal: Principal, name: str) -> Download:
        role = export_role(name) if len(name) <= 512 else None
        if role is None:
            raise NotFound("no such export")
        if principal.role < role:
            raise DomainError(ErrorCode.FORBIDDEN, f"this export needs the {role.label} role")
        size = await self.objects.size(name)
        if size is None:
            raise NotFound("no such export (exports are kept for a day)")
        if size > self.max_bytes:
            raise Invalid(
                f"this export is {size} bytes, over this gateway's download limit of {self.max_bytes}",
                {"size": size, "limit": self.max_bytes},
            )
        body = await self.objects.spooled(name)
        if body is None:
            raise NotFound("no such export (exports are kept for a day)")
        return Download(name.rsplit("/", 1)[-1], size, body)
