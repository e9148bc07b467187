"""Points: a program's point rules, and the append-only points ledger of its enrollments.

A credited conversion earns each credited enrollment

    round_half_even(share * pointsPerConversion + pointsPerUnit * whole currency units of
    its credited amount)

by the program's rule for the conversion's kind (`criteria.points_for_credit`), as one
CONVERSION entry. A refund appends REVERSAL entries that keep each position (an enrollment's
points for one conversion) worth `round_half_even(earned * (amount - refunded) / amount)`,
cumulatively, never more than earned. A recompute prices positions again with the rules as
they are then and appends the differences. No entry is ever edited or deleted; an
enrollment's points are the sum of its entries (badges add BADGE entries: `badges.py`).

`setPointRules` changes what conversions credited from then on earn (a recompute applies the
new rules to earlier ones). Call the settling functions inside the transaction of the change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from tortoise.transactions import in_transaction

from domain import db
from domain.actor import Actor
from domain.audit import services as audit
from domain.clock import utcnow
from domain.db import select
from domain.errors import ErrorCollector, not_found
from domain.gamification import criteria
from domain.gamification.criteria import PointTerms, Position
from domain.gamification.models import PointKind, PointRule
from domain.money import minor_units
from domain.pagination import chunks, in_list
from domain.programs.models import Program
from domain.tracking.models import ConversionKind

# --- rules ----------------------------------------------------------------------------------


def _terms(row: PointRule) -> PointTerms:
    return PointTerms(
        ConversionKind(row.conversion_kind), row.points_per_conversion, row.points_per_unit
    )


def _rules_json(rules: Iterable[PointTerms]) -> list[dict[str, Any]]:
    return [
        {"conversionKind": str(r.conversion_kind), "pointsPerConversion": r.per_conversion,
         "pointsPerUnit": r.per_unit}
        for r in sorted(rules, key=lambda r: str(r.conversion_kind))
    ]  # fmt: skip


async def point_rules_of(program_id: int) -> list[PointRule]:
    """A program's point rules, by conversion kind."""
    return await PointRule.filter(program_id=program_id).order_by("conversion_kind")


async def point_rules_by_programs(program_ids: list[int]) -> list[list[PointRule]]:
    found: dict[int, list[PointRule]] = defaultdict(list)
    rows = await PointRule.filter(program_id__in=program_ids).order_by("conversion_kind")
    for row in rows:
        found[row.program_id].append(row)
    return [found[p] for p in program_ids]


async def set_point_rules(actor: Actor, program_id: int, rules: list[PointTerms]) -> Program:
    """Replace all of a program's point rules (an empty list: conversions earn no points).
    They price conversions credited from now on; audited with the rules before and after."""
    errors = ErrorCollector()
    criteria.ensure_point_rules(errors, rules)
    errors.raise_if_any()
    async with in_transaction():
        program = await Program.filter(id=program_id).select_for_update().first()
        if program is None:
            raise not_found(["programId"], "program")
        before = [_terms(row) for row in await point_rules_of(program.pk)]
        await PointRule.filter(program_id=program.pk).delete()
        await PointRule.bulk_create(
            [
                PointRule(program_id=program.pk, conversion_kind=r.conversion_kind,
                          points_per_conversion=r.per_conversion, points_per_unit=r.per_unit)
                for r in rules
            ]
        )  # fmt: skip
        await audit.record(
            actor,
            "setPointRules",
            program,
            before={"rules": _rules_json(before)},
            after={"rules": _rules_json(rules)},
        )
    return program


# --- the ledger -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credit:
    """One enrollment's credit on one conversion, with what settling needs of the conversion."""

    conversion_id: int
    enrollment_id: int
    kind: str
    credited_minor: int
    share: Fraction
    amount_minor: int
    refunded_minor: int


@dataclass(frozen=True, slots=True)
class NewPoints:
    """An entry a settle appended."""

    enrollment_id: int
    conversion_id: int | None
    kind: PointKind
    points: int
    reason: str
    award_id: int | None = None


async def credits_of(conversion_ids: Sequence[int]) -> list[Credit]:
    """The credits of these conversions (one query per chunk)."""
    found = []
    for chunk in chunks(conversion_ids):
        rows = await select(
            "SELECT a.conversion_id, a.enrollment_id, c.kind, a.amount_minor, a.points, a.total, "
            "c.amount_minor, c.refunded_minor FROM attribution_credits a JOIN conversions c ON "
            f"c.id = a.conversion_id WHERE a.conversion_id IN ({in_list(len(chunk))})",
            chunk,
        )
        for conv, enrollment, kind, credited, points, total, amount, refunded in rows:
            share = Fraction(int(points), int(total)) if int(total) else Fraction(0)
            found.append(Credit(conv, enrollment, str(kind), int(credited), share, int(amount),
                                int(refunded)))  # fmt: skip
    return found


async def _positions(conversion_ids: Sequence[int]) -> dict[tuple[int, int], Position]:
    sums: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for chunk in chunks(conversion_ids):
        rows = await select(
            "SELECT conversion_id, enrollment_id, kind, SUM(points) FROM point_entries WHERE "
            f"conversion_id IN ({in_list(len(chunk))}) GROUP BY conversion_id, enrollment_id, "
            "kind",
            chunk,
        )
        for conv, enrollment, kind, total in rows:
            sums[(conv, enrollment)][0 if kind == PointKind.CONVERSION else 1] += int(total or 0)
    return {key: Position(earned, taken) for key, (earned, taken) in sums.items()}


async def _amounts(conversion_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(amount, refunded) of each conversion."""
    found = {}
    for chunk in chunks(conversion_ids):
        rows = await select(
            "SELECT id, amount_minor, refunded_minor FROM conversions WHERE id IN "
            f"({in_list(len(chunk))})",
            chunk,
        )
        found.update({conv: (int(amount), int(refunded)) for conv, amount, refunded in rows})
    return found


async def rules_by_kind(program_id: int) -> dict[str, PointTerms]:
    return {str(r.conversion_kind): _terms(r) for r in await point_rules_of(program_id)}


async def settle_credits(
    program: Program,
    conversion_ids: Sequence[int],
    credits: Sequence[Credit],
    rules: dict[str, PointTerms],
    new: bool,
) -> list[NewPoints]:
    """Move every position of these conversions to what its credit now earns (`new`: they
    were just credited and have no entries yet, so none are read). A position whose
    enrollment lost its credit is settled to zero."""
    digits = minor_units(program.currency)
    positions = {} if new else await _positions(conversion_ids)
    appended: list[NewPoints] = []
    seen = set()
    for credit in credits:
        key = (credit.conversion_id, credit.enrollment_id)
        seen.add(key)
        priced = criteria.points_for_credit(
            rules.get(credit.kind), credit.share, credit.credited_minor, digits
        )
        moves = criteria.settle_credit(positions.get(key, Position()), priced.earned,
                                       credit.amount_minor, credit.refunded_minor)  # fmt: skip
        appended += _entries(key, moves, priced.explanation, new)
    gone = [key for key in positions if key not in seen]
    amounts = await _amounts(sorted({conv for conv, _ in gone})) if gone else {}
    for key in gone:
        amount, refunded = amounts[key[0]]
        moves = criteria.settle_credit(positions[key], 0, amount, refunded)
        appended += _entries(key, moves, "no credit on this conversion any more", False)
    await write(program, appended)
    return appended


def _entries(
    key: tuple[int, int], moves: list[tuple[PointKind, int]], explanation: str, new: bool
) -> list[NewPoints]:
    prefix = "" if new else "recomputed: "
    return [
        NewPoints(key[1], key[0], kind, points, prefix + explanation if kind == PointKind.CONVERSION
                  else f"{prefix}refunded part taken back")
        for kind, points in moves
    ]  # fmt: skip


async def reverse_refunds(program: Program, conversion_ids: Sequence[int]) -> list[NewPoints]:
    """Append the REVERSAL entries the conversions' refunds so far call for."""
    positions = await _positions(conversion_ids)
    amounts = await _amounts(sorted({conv for conv, _ in positions}))
    appended = []
    for (conv, enrollment), position in sorted(positions.items()):
        amount, refunded = amounts[conv]
        delta = criteria.settle_refund(position, amount, refunded)
        if delta:
            reason = f"refund: {refunded} of {amount} refunded, position now worth " + str(
                position.net + delta
            )
            appended.append(NewPoints(enrollment, conv, PointKind.REVERSAL, delta, reason))
    await write(program, appended)
    return appended


_COLUMNS = (
    "program_id", "enrollment_id", "kind", "points", "conversion_id", "award_id", "reason",
    "created_at",
)  # fmt: skip


async def write(program: Program, entries: Sequence[NewPoints], at: datetime | None = None) -> None:
    """Append entries as plain rows (this runs for every ingested batch)."""
    if not entries:
        return
    stamp = db.stamp(at or utcnow())
    rows = [
        [program.pk, e.enrollment_id, e.kind.value, e.points, e.conversion_id, e.award_id,
         e.reason[:500], stamp]
        for e in entries
    ]  # fmt: skip
    await db.insert_many("point_entries", _COLUMNS, rows)


async def points_of(enrollment_ids: Sequence[int]) -> dict[int, int]:
    """Each enrollment's points: the sum of its entries (0 for none)."""
    found = dict.fromkeys(enrollment_ids, 0)
    for chunk in chunks(sorted(set(enrollment_ids))):
        rows = await select(
            "SELECT enrollment_id, SUM(points) FROM point_entries WHERE enrollment_id IN "
            f"({in_list(len(chunk))}) GROUP BY enrollment_id",
            chunk,
        )
        found.update({enrollment: int(total or 0) for enrollment, total in rows})
    return found
