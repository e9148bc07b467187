"""Global IDs, the Node interface and Relay connections (with `totalCount`, `first` capped).

Our own, small: strawberry.relay has no `totalCount` and would resolve nodes one type at a
time outside our loaders; this keeps every lookup on the per-request, partner-scoped loaders.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import strawberry

from api.errors import bad_argument
from domain.errors import DomainError, ErrorCode
from domain.pagination import MAX_PAGE, Page, PageRequest

T = TypeVar("T")
M = TypeVar("M")

DEFAULT_PAGE = 20


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(_b64(f"{type_name}:{pk}"))


def from_global_id(global_id: str) -> tuple[str, int] | None:
    """(type name, primary key), or None for anything that is not one of our IDs."""
    decoded = _unb64(global_id) if len(global_id) <= 200 else None
    if decoded is None:
        return None
    type_name, _, pk = decoded.partition(":")
    if not type_name or not pk.isdigit() or len(pk) > 18:
        return None
    return type_name, int(pk)


def parse_id(global_id: str, type_name: str, field: list[str]) -> int:
    """The primary key in an input ID of the expected type; otherwise a NOT_FOUND user error."""
    parsed = from_global_id(global_id)
    if parsed is None or parsed[0] != type_name:
        raise DomainError(ErrorCode.NOT_FOUND, field, f"no {type_name} with this ID")
    return parsed[1]


def parse_optional_id(global_id: str | None, type_name: str, field: list[str]) -> int | None:
    return None if global_id is None else parse_id(global_id, type_name, field)


@strawberry.interface(description="An object with a global, opaque, stable ID.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many items there are in all pages.")
    async def total_count(self) -> int:
        return await self._count()


def _cursor(pk: int) -> str:
    return _b64(f"cursor:{pk}")


def page_request(first: int | None, after: str | None) -> PageRequest:
    """Connection arguments to a page: `first` 0 to 100 (default 20), `after` a cursor."""
    limit = DEFAULT_PAGE if first is None else first
    if not 0 <= limit <= MAX_PAGE:
        raise bad_argument(f"first must be between 0 and {MAX_PAGE}")
    after_pk = None
    if after is not None:
        decoded = _unb64(after)
        prefix, _, pk = (decoded or "").partition(":")
        if prefix != "cursor" or not pk.isdigit():
            raise bad_argument("after is not a cursor of this connection")
        after_pk = int(pk)
    return PageRequest(limit=limit, after=after_pk)


def connection(page: Page[Any], convert: Callable[[Any], T], after: bool) -> Connection[T]:
    edges = [Edge(cursor=_cursor(item.pk), node=convert(item)) for item in page.items]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=after,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        _count=page.count,
    )
