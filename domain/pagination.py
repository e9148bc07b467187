"""Keyset pagination over a queryset, ordered by primary key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise import connections
from tortoise.models import Model
from tortoise.queryset import QuerySet

M = TypeVar("M", bound=Model)
T = TypeVar("T")

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


async def select_where(
    model: type[M], where: str, params: Sequence[Any], order_by: str = '"id"'
) -> list[M]:
    """Rows of `model` by a hand-written WHERE clause, for the hottest DataLoader queries.

    Tortoise's query builder costs 4 to 10 times the query itself there (bench/README.md).
    `where` writes `{}` for each parameter; the database's placeholders are put in.
    """
    connection = connections.get(model._meta.default_connection or "default")
    sqlite = connection.capabilities.dialect == "sqlite"
    marks = ["?" if sqlite else f"${n}" for n in range(1, len(params) + 1)]
    table = model._meta.db_table
    sql = f'SELECT * FROM "{table}" WHERE {where.format(*marks)} ORDER BY {order_by}'
    _, rows = await connection.execute_query(sql, list(params))
    return [model._init_from_db(**dict(row)) for row in rows]


def chunks(values: Sequence[T], size: int = 500) -> Iterator[list[T]]:
    """`values` in lists of at most `size`: for IN lists and bulk statements."""
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def in_list(count: int) -> str:
    """`{},{},...`: `count` parameter slots for an IN list."""
    return ",".join("{}" for _ in range(count))


async def by_ids(
    model: type[M], ids: list[int], also: str | None = None, params: Sequence[Any] = ()
) -> list[M | None]:
    """Rows of `model` for `ids`, in the order of `ids` (None where missing): for DataLoaders.

    `also` is an extra SQL condition (with `{}` slots for `params`), such as a partner scope.
    """
    unique = sorted(set(ids))
    if not unique:
        return []
    where = f'"id" IN ({in_list(len(unique))})' + (f" AND ({also})" if also else "")
    rows = await select_where(model, where, [*unique, *params])
    found = {row.pk: row for row in rows}
    return [found.get(i) for i in ids]
