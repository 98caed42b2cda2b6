"""Taking an upload: who may, how large, and its name.

An upload serves the commands that take a file (today `rag-add-document`, whose least role is
operator), so a key needs at least that role. The body is read as it arrives into a spooled temporary
file (memory up to 8 MB, then disk) while it is counted and hashed; past `max_bytes` it is refused
before the rest is read. The name is `<32 random hex digits>/<the file's name>`: nobody can guess
another caller's upload, and the file name survives for the service that reads it (type detection)."""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from tgm_contracts import ErrorCode, Role
from tgm_runtime import DomainError, Invalid

from ..keys.service import Principal
from .store import UploadObjects

LEAST_ROLE = Role.OPERATOR
#: Characters kept in a file name: anything but separators and control characters.
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def safe_filename(name: str | None) -> str:
    base = _UNSAFE.sub("_", (name or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip(" .")
    return base[:120] or "upload.bin"


class TooLarge(Invalid):
    """Over the limit: VALIDATION_ERROR, answered with HTTP 413 like any body too large."""


@dataclass(frozen=True)
class Uploaded:
    object_name: str
    filename: str
    size: int
    sha256: str


class Uploads:
    def __init__(self, objects: UploadObjects, max_bytes: int) -> None:
        self.objects, self.max_bytes = objects, max_bytes

    def admit(self, principal: Principal, declared_size: int | None) -> None:
        """Refuse before reading: a key below the least role, or a declared size over the limit."""
        if principal.role < LEAST_ROLE:
            raise DomainError(ErrorCode.FORBIDDEN, f"uploads need the {LEAST_ROLE.label} role")
        if declared_size is not None and declared_size > self.max_bytes:
            raise self._too_large(declared_size)

    def _too_large(self, size: int) -> TooLarge:
        return TooLarge(
            f"the upload is over this gateway's limit of {self.max_bytes} bytes",
            {"size": size, "limitBytes": self.max_bytes},
        )

    async def take(self, filename: str | None, body: AsyncIterator[bytes]) -> Uploaded:
        name = safe_filename(filename)
        digest, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            async for block in body:
                size += len(block)
                if size > self.max_bytes:
                    raise self._too_large(size)
                digest.update(block)
                spool.write(block)
            if size == 0:
                raise Invalid("the upload is empty")
            spool.seek(0)
            object_name = f"{uuid.uuid4().hex}/{name}"
            await self.objects.put(object_name, spool)
        return Uploaded(object_name, name, size, digest.hexdigest())
