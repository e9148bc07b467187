"""Errors the domain raises on bad input; the API maps them to `userErrors` in one place."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    FORBIDDEN = "FORBIDDEN"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"


class DomainError(Exception):
    """One refused input: a code, the path of the input field, and a message for people."""

    def __init__(self, code: ErrorCode, field: Sequence[str] | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = list(field) if field is not None else None
        self.message = message

    def __repr__(self) -> str:
        return f"DomainError({self.code}, {self.field}, {self.message!r})"


class DomainErrors(Exception):
    """Several refused inputs at once, so a client can fix them all in one round trip."""

    def __init__(self, errors: Sequence[DomainError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)


class ErrorCollector:
    """Collects validation errors and raises them together (`ensure_*` helpers add to it)."""

    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)
        self.errors: list[DomainError] = []

    def add(self, code: ErrorCode, field: Sequence[str], message: str) -> None:
        self.errors.append(DomainError(code, [*self.prefix, *field], message))

    def invalid(self, field: Sequence[str], message: str) -> None:
        self.add(ErrorCode.INVALID, field, message)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise DomainErrors(self.errors)


def not_found(field: Sequence[str], what: str) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, field, f"{what} not found")
