"""Typed errors a use case raises; the runtime turns them into the error envelope."""

from __future__ import annotations

from typing import Any

from tgm_contracts import ErrorCode


class DomainError(Exception):
    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: Any | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


class NotFound(DomainError):
    def __init__(self, message: str, details: Any | None = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, details)


class Conflict(DomainError):
    def __init__(self, message: str, details: Any | None = None) -> None:
        super().__init__(ErrorCode.CONFLICT, message, details)


class Invalid(DomainError):
    def __init__(self, message: str, details: Any | None = None) -> None:
        super().__init__(ErrorCode.VALIDATION_ERROR, message, details)


class Unavailable(DomainError):
    def __init__(self, message: str, details: Any | None = None) -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message, details)
