"""Reading stored credits and their explanations, scoped to a partner where one is given.

A partner sees only the credits of its own enrollments, also on a conversion it shares with
other partners. The scope is a SQL condition: nothing is filtered after loading.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from domain.attribution import rules
from domain.attribution.models import AttributionCredit
from domain.pagination import Page, PageRequest, in_list, paginate, select_where

# The credit's enrollment is the partner's ({} is the partner's id).
_OWN_CREDIT = (
    'EXISTS (SELECT 1 FROM "enrollments" AS "e" '
    'WHERE "e"."id" = "attribution_credits"."enrollment_id" AND "e"."partner_id" = {})'
)


async def credits_by_conversions(
    conversion_ids: list[int], partner_id: int | None = None
) -> list[list[AttributionCredit]]:
    """Each conversion's credits in the order they were stored, in the order of
    `conversion_ids`; with a partner, only its own enrollments' credits."""
    unique = sorted(set(conversion_ids))
    grouped: dict[int, list[AttributionCredit]] = {i: [] for i in conversion_ids}
    if unique:
        where = f'"conversion_id" IN ({in_list(len(unique))})'
        params: list[int] = list(unique)
        if partner_id is not None:
            where += f" AND {_OWN_CREDIT}"
            params.append(partner_id)
        for row in await select_where(AttributionCredit, where, params):
            grouped[row.conversion_id].append(row)
    return [grouped[i] for i in conversion_ids]


async def list_credits(
    partner_id: int | None, page: PageRequest, enrollment_id: int
) -> Page[AttributionCredit]:
    """An enrollment's credits, newest first (by id, descending); with a partner, nothing
    unless the enrollment is its own."""
    queryset = AttributionCredit.filter(enrollment_id=enrollment_id)
    if partner_id is not None:
        queryset = queryset.filter(enrollment__partner_id=partner_id)
    return await paginate(queryset, PageRequest(page.limit, page.after, descending=True))


def share(credit: AttributionCredit) -> Fraction:
    """The enrollment's exact share of the conversion."""
    return Fraction(int(credit.points), int(credit.total))


class TouchpointPart(NamedTuple):
    """One touchpoint's part in a credit."""

    touchpoint_id: int
    weight: Fraction  # its exact share of the whole conversion
    amount_minor: int  # its part of the credit's amount


def explain(credit: AttributionCredit) -> list[TouchpointPart]:
    """The touchpoints that earned the credit, in journey order: their weights sum to the
    credit's share, and their amounts (largest remainder over the weights, ties to the later
    touchpoint) to the credit's amount."""
    total = int(credit.total)
    pairs = [(int(touchpoint_id), int(points)) for touchpoint_id, points in credit.touchpoints]
    if not pairs:
        return []
    ids = [touchpoint_id for touchpoint_id, _ in pairs]
    whole = sum(points for _, points in pairs)
    if whole > 0:
        amounts = rules.split_minor(
            credit.amount_minor, [Fraction(points, whole) for _, points in pairs], ids
        )
    else:  # no weight at all (never stored so): nothing to split by
        amounts = [0] * len(pairs)
    return [
        TouchpointPart(touchpoint_id, Fraction(points, total), amount)
        for (touchpoint_id, points), amount in zip(pairs, amounts, strict=True)
    ]
