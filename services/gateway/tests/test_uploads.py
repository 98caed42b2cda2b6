"""Uploads (uploads/service.py): the role, the size limit (declared or streamed, refused before
anything is stored), the name, and what is stored (the bytes, counted and hashed)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import IO, Any

import pytest
from tgm_contracts import ErrorCode, Role, streams
from tgm_gateway.keys.service import Principal
from tgm_gateway.uploads.service import TooLarge, Uploads, safe_filename
from tgm_gateway.uploads.store import UploadObjects
from tgm_runtime import DomainError, Invalid

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def put(self, name: str, body: IO[bytes]) -> None:
        self.objects[name] = body.read()


def uploads(limit: int = 10) -> tuple[Uploads, Store]:
    store = Store()

    async def open_store(spec: streams.ObjectStoreSpec) -> Any:
        assert spec is streams.UPLOADS
        return store

    return Uploads(UploadObjects(open_store), limit), store


def principal(role: Role) -> Principal:
    return Principal(key_id="k1", name="t", role=role)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_a_file_is_stored_under_a_random_name_with_its_size_and_hash() -> None:
    up, store = uploads()
    up.admit(principal(Role.OPERATOR), 9)
    done = await up.take("../../etc/pass\x00wd.pdf", chunks(b"abc", b"defghi"))
    assert done.size == 9 and done.sha256 == hashlib.sha256(b"abcdefghi").hexdigest()
    assert done.filename == "pass_wd.pdf" and done.object_name.endswith("/pass_wd.pdf")
    assert len(done.object_name.split("/")[0]) == 32 and store.objects == {done.object_name: b"abcdefghi"}


async def test_limits_and_roles_refuse_before_anything_is_stored() -> None:
    up, store = uploads(limit=10)
    with pytest.raises(DomainError) as forbidden:
        up.admit(principal(Role.VIEWER), 1)
    assert forbidden.value.code is ErrorCode.FORBIDDEN
    with pytest.raises(TooLarge):
        up.admit(principal(Role.ADMIN), 11)  # declared
    with pytest.raises(TooLarge) as streamed:
        await up.take("a.txt", chunks(b"123456", b"78901"))  # no declared size: counted as it comes
    assert streamed.value.details == {"size": 11, "limitBytes": 10}
    with pytest.raises(Invalid):
        await up.take("a.txt", chunks())
    assert store.objects == {}


def test_file_names() -> None:
    assert safe_filename(None) == "upload.bin" and safe_filename("  ..") == "upload.bin"
    assert safe_filename("C:\\docs\\報告.docx") == "報告.docx"
    assert len(safe_filename("x" * 500)) == 120
