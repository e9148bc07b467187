"""Reading conversions and touchpoints, scoped to a partner where one is given.

A partner sees a conversion only if one of its enrollments holds a credit on it, and a
touchpoint only of its own enrollments. The scope is a SQL condition: nothing is filtered
after loading.
"""

from __future__ import annotations

from domain.pagination import Page, PageRequest, by_ids, paginate
from domain.tracking.models import Conversion, Touchpoint

# The partner's credit on the conversion ({} is the partner's id).
_CREDITED = (
    'EXISTS (SELECT 1 FROM "attribution_credits" AS "c" '
    'JOIN "enrollments" AS "e" ON "e"."id" = "c"."enrollment_id" '
    'WHERE "c"."conversion_id" = "conversions"."id" AND "e"."partner_id" = {})'
)
# The touchpoint's enrollment is the partner's.
_OWN_TOUCHPOINT = (
    'EXISTS (SELECT 1 FROM "enrollments" AS "e" '
    'WHERE "e"."id" = "touchpoints"."enrollment_id" AND "e"."partner_id" = {})'
)


async def conversions_by_ids(
    ids: list[int], partner_id: int | None = None
) -> list[Conversion | None]:
    """Conversions by id, in the order of `ids`; with a partner, only those it is credited
    with (others are None)."""
    if partner_id is None:
        return await by_ids(Conversion, ids)
    return await by_ids(Conversion, ids, _CREDITED, [partner_id])


async def touchpoints_by_ids(
    ids: list[int], partner_id: int | None = None
) -> list[Touchpoint | None]:
    """Touchpoints by id, in the order of `ids`; with a partner, only its own enrollments'."""
    if partner_id is None:
        return await by_ids(Touchpoint, ids)
    return await by_ids(Touchpoint, ids, _OWN_TOUCHPOINT, [partner_id])


async def list_conversions(
    partner_id: int | None, page: PageRequest, program_id: int
) -> Page[Conversion]:
    """A program's conversions, the last recorded first (by id, descending); with a partner,
    only those one of its enrollments is credited with."""
    queryset = Conversion.filter(program_id=program_id)
    if partner_id is not None:
        # one enrollment per partner and program, one credit per enrollment and conversion:
        # the join makes no duplicates, `distinct` is only a guard
        queryset = queryset.filter(credits__enrollment__partner_id=partner_id).distinct()
    return await paginate(queryset, PageRequest(page.limit, page.after, descending=True))
