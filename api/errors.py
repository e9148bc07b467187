"""The one mapper from domain errors to GraphQL `userErrors`, and top-level error helpers."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from domain.errors import DomainError, DomainErrors
from domain.errors import ErrorCode as DomainErrorCode

T = TypeVar("T")

ErrorCode = DomainErrorCode
strawberry.enum(ErrorCode, name="ErrorCode", description="Why input was refused.")


@strawberry.type(description="A refused input: which field, why, and a code to branch on.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path to the input field, if any.")
    message: str
    code: ErrorCode


def user_errors(exc: DomainError | DomainErrors) -> list[UserError]:
    errors = exc.errors if isinstance(exc, DomainErrors) else [exc]
    return [UserError(field=e.field, message=e.message, code=e.code) for e in errors]


async def attempt(operation: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Run a domain operation: its result, or the user errors it refused with."""
    try:
        return await operation, []
    except (DomainError, DomainErrors) as exc:
        return None, user_errors(exc)


class ApiError(GraphQLError):
    """A top-level error we raise on purpose (shown to clients, never masked)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


def unauthenticated() -> ApiError:
    return ApiError(
        "authentication required: send 'Authorization: Bearer <token>'", "UNAUTHENTICATED"
    )


def forbidden(what: str = "this operation") -> ApiError:
    return ApiError(f"not allowed: {what}", "FORBIDDEN")


def bad_argument(message: str) -> ApiError:
    return ApiError(message, "BAD_USER_INPUT")
