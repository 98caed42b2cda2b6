"""The one body reader of every edge: an HTTP request body or a WebSocket text frame becomes a JSON
object, or an `Outcome` saying why not — never an exception.

Rules, in order (each refusal is a VALIDATION_ERROR envelope):
- size: more than `max_bytes` is 413; over HTTP the body is read in chunks and reading stops at the
  limit (a declared Content-Length over it is refused before reading anything);
- encoding: strict UTF-8 (a UTF-16 or Latin-1 body, or a byte order mark, is 400);
- syntax: strict JSON — no NaN/Infinity, no trailing data (400); an empty body is `{}`;
- depth: arrays and objects nested deeper than `max_depth` are 400 (the decoder's own recursion
  guard is turned into the same answer, so 10,000 levels cost nothing but the read);
- shape: the top level is an object (`null`, an array, a string or a number is 422).

The edges authenticate before they call this: no body is read for a caller without a valid key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from tgm_contracts import ErrorCode

from ..dispatch import Outcome, failure


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    max_depth: int


def _refused(status: int, message: str, details: Any = None) -> Outcome:
    out = failure(ErrorCode.VALIDATION_ERROR, message, details)
    out.status = status
    return out


def too_large(size: int | None, limits: BodyLimits) -> Outcome:
    got = f" ({size} bytes)" if size is not None else ""
    return _refused(
        413,
        f"the body is larger than {limits.max_bytes} bytes{got}, the largest the gateway accepts",
        {"limitBytes": limits.max_bytes},
    )


_KINDS = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether any array or object in `value` sits more than `limit` levels deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def parse_object(data: bytes | str, limits: BodyLimits) -> dict[str, Any] | Outcome:
    """One JSON object from a body or frame, or the refusal (see the module's rules)."""
    if len(data) > limits.max_bytes or (
        isinstance(data, str) and len(data) * 4 > limits.max_bytes and len(data.encode()) > limits.max_bytes
    ):
        return too_large(None, limits)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return _refused(400, f"the body is not UTF-8 (invalid byte at offset {exc.start})")
    else:
        text = data
    if text.startswith("\ufeff"):
        return _refused(400, "the body starts with a byte order mark; send UTF-8 JSON without one")
    if not text.strip():
        return {}
    too_deep = f"the body nests arrays/objects deeper than {limits.max_depth} levels"
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:
        return _refused(400, too_deep, {"maxDepth": limits.max_depth})
    except ValueError as exc:
        return _refused(400, f"the body is not valid JSON: {str(exc)[:200]}")
    if not isinstance(value, dict):
        return _refused(422, f"the body must be a JSON object, not {_KINDS.get(type(value), 'null')}")
    if _deeper_than(value, limits.max_depth):
        return _refused(400, too_deep, {"maxDepth": limits.max_depth})
    return value


async def read_object(request: Request, limits: BodyLimits) -> dict[str, Any] | Outcome:
    """The request's body as one JSON object, read no further than the size limit."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        return too_large(int(declared), limits)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_bytes:
            return too_large(None, limits)
        chunks.append(chunk)
    return parse_object(b"".join(chunks), limits)
