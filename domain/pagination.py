"""Keyset pagination over a queryset, ordered by primary key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

M = TypeVar("M", bound=Model)

MAX_PAGE = 100


@dataclass(frozen=True)
class PageRequest:
    """`limit` items after the item with primary key `after` (exclusive)."""

    limit: int = 20
    after: int | None = None
    descending: bool = False


@dataclass
class Page(Generic[M]):
    items: list[M]
    has_next: bool
    count: Callable[[], Awaitable[int]]


async def paginate(queryset: QuerySet[M], page: PageRequest) -> Page[M]:
    """One page by primary key; the total is counted only if someone asks for it."""
    limit = max(0, min(page.limit, MAX_PAGE))
    total_query = queryset.count()
    ordered = queryset.order_by("-id" if page.descending else "id")
    if page.after is not None:
        ordered = (
            ordered.filter(id__lt=page.after)
            if page.descending
            else ordered.filter(id__gt=page.after)
        )
    rows = await ordered.limit(limit + 1)
    count_cache: dict[str, int] = {}

    async def count() -> int:
        if "n" not in count_cache:
            count_cache["n"] = await total_query
        return count_cache["n"]

    return Page(items=list(rows[:limit]), has_next=len(rows) > limit, count=count)


async def by_ids(model: type[M], ids: list[int], **filters: Any) -> list[M | None]:
    """Rows of `model` for `ids`, in the order of `ids` (None where missing): for DataLoaders."""
    rows = await model.filter(id__in=set(ids), **filters)
    found = {row.pk: row for row in rows}
    return [found.get(i) for i in ids]
