"""Attribution over stored data: credit conversions, recompute, preview another model, and the
data-driven models over a program's journeys.

The math is the pure engine's (`rules`, `datadriven`); this module only loads plain values
and stores results.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.attribution import datadriven, rules
from domain.attribution.models import AttributionCredit
from domain.audit import services as audit
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.programs import rules as program_rules
from domain.programs.models import FunnelRole, Program
from domain.tracking.models import Conversion, ConversionKind, Touchpoint

EPOCH_FLOOR = datetime(1970, 1, 1, tzinfo=UTC)


def model_settings(program: Program) -> rules.ModelSettings:
    """The program's stored attribution settings as the engine's plain value."""
    weights = None
    if program.role_weights:
        weights = {FunnelRole(r): Decimal(w) for r, w in program.role_weights.items()}
    return rules.ModelSettings(
        model=program.attribution_model,
        lookback_days=program.lookback_days,
        half_life_days=program.half_life_days,
        first_weight=program.first_weight,
        last_weight=program.last_weight,
        role_weights=weights,
        code_wins=program.code_wins,
    )


def settings_from(spec: program_rules.AttributionSettings, program: Program) -> rules.ModelSettings:
    """Settings asked for in a what-if, validated like a program's; the lookback window and
    "code wins" default to the program's."""
    errors = ErrorCollector()
    program_rules.ensure_attribution(errors, spec)
    errors.raise_if_any()
    return rules.ModelSettings(
        model=spec.model,
        lookback_days=spec.lookback_days or program.lookback_days,
        half_life_days=spec.half_life_days,
        first_weight=spec.first_weight,
        last_weight=spec.last_weight,
        role_weights=dict(spec.role_weights) if spec.role_weights else None,
        code_wins=program.code_wins if spec.code_wins is None else spec.code_wins,
    )


@dataclass(frozen=True, slots=True)
class _Conversion:
    id: int
    kind: ConversionKind
    amount_minor: int
    currency: str
    at: datetime
    customer_id: int | None
    visitor_id: str | None
    click_id: str | None
    code_touchpoint_id: int | None


@dataclass(frozen=True, slots=True)
class _Touch:
    point: rules.Touchpoint
    customer_id: int | None
    visitor_id: str | None
    click_id: str | None


@dataclass(frozen=True, slots=True)
class Journey:
    """A conversion with the touchpoints that may be credited for it (before the window is
    applied) and the instant the window ends: its own, or a renewal's first sale's."""

    conversion_id: int
    currency: str
    conversion: rules.Conversion
    touchpoints: tuple[rules.Touchpoint, ...]


_CONVERSION_FIELDS = (
    "id",
    "kind",
    "amount_minor",
    "currency",
    "occurred_at",
    "customer_id",
    "visitor_id",
    "click_id",
    "code_touchpoint_id",
)
_TOUCH_FIELDS = (
    "id",
    "enrollment_id",
    "kind",
    "role",
    "occurred_at",
    "excluded",
    "customer_id",
    "visitor_id",
    "click_id",
)


async def _conversions(
    program_id: int, start: datetime | None, end: datetime | None
) -> list[_Conversion]:
    query = Conversion.filter(program_id=program_id)
    if start is not None:
        query = query.filter(occurred_at__gte=start)
    if end is not None:
        query = query.filter(occurred_at__lt=end)
    rows = await query.order_by("occurred_at", "id").values_list(*_CONVERSION_FIELDS)
    return [_Conversion(*row) for row in rows]


def _touch(row: Sequence[Any]) -> _Touch:
    tid, enrollment_id, kind, role, at, excluded, customer_id, visitor_id, click_id = row
    point = rules.Touchpoint(
        tid, enrollment_id, at, str(kind), None if role is None else FunnelRole(role), excluded
    )
    return _Touch(point, customer_id, visitor_id, click_id)


async def _touchpoints(program_id: int, start: datetime, end: datetime | None) -> list[_Touch]:
    query = Touchpoint.filter(program_id=program_id, occurred_at__gte=start)
    if end is not None:
        query = query.filter(occurred_at__lte=end)
    return [_touch(row) for row in await query.values_list(*_TOUCH_FIELDS)]


async def _first_sales(program_id: int, customer_ids: set[int]) -> dict[int, _Conversion]:
    """Each customer's first SALE: a renewal is credited like it."""
    if not customer_ids:
        return {}
    rows = (
        await Conversion.filter(
            program_id=program_id, kind=ConversionKind.SALE, customer_id__in=customer_ids
        )
        .order_by("occurred_at", "id")
        .values_list(*_CONVERSION_FIELDS)
    )
    first: dict[int, _Conversion] = {}
    for row in rows:
        sale = _Conversion(*row)
        if sale.customer_id is not None:
            first.setdefault(sale.customer_id, sale)
    return first


class _Index:
    """Touchpoints by what a conversion can name: customer, visitor, click, own id."""

    def __init__(self, touches: Iterable[_Touch]) -> None:
        self.by_customer: dict[int, list[rules.Touchpoint]] = defaultdict(list)
        self.by_visitor: dict[str, list[rules.Touchpoint]] = defaultdict(list)
        self.by_click: dict[str, rules.Touchpoint] = {}
        self.by_id: dict[int, rules.Touchpoint] = {}
        for touch in touches:
            point = touch.point
            self.by_id[point.id] = point
            if touch.customer_id is not None:
                self.by_customer[touch.customer_id].append(point)
            if touch.visitor_id is not None:
                self.by_visitor[touch.visitor_id].append(point)
            if touch.click_id is not None:
                self.by_click[touch.click_id] = point

    def of(self, conversion: _Conversion) -> tuple[rules.Touchpoint, ...]:
        found: dict[int, rules.Touchpoint] = {}
        if conversion.customer_id is not None:
            found.update((t.id, t) for t in self.by_customer.get(conversion.customer_id, ()))
        if conversion.visitor_id is not None:
            found.update((t.id, t) for t in self.by_visitor.get(conversion.visitor_id, ()))
        if conversion.click_id is not None and conversion.click_id in self.by_click:
            click = self.by_click[conversion.click_id]
            found[click.id] = click
        code = conversion.code_touchpoint_id
        if code is not None and code in self.by_id:
            found[code] = self.by_id[code]
        return tuple(found.values())


async def load_journeys(
    program: Program,
    start: datetime | None,
    end: datetime | None,
    lookback_days: int | None = None,
) -> list[Journey]:
    """The journeys of the program's conversions with `start <= occurredAt < end`.

    A conversion's touchpoints are its customer's, its visitor's, its click's and its code's
    (the contract's "Ingestion semantics"); a RENEWAL of a customer is credited like the
    customer's first SALE: that sale's journey, at that sale's time.
    """
    conversions = await _conversions(program.pk, start, end)
    if not conversions:
        return []
    lookback = timedelta(days=max(lookback_days or 0, program.lookback_days))
    renewals = {
        c.customer_id
        for c in conversions
        if c.kind is ConversionKind.RENEWAL and c.customer_id is not None
    }
    first_sales = await _first_sales(program.pk, renewals)
    earliest = min([c.at for c in conversions] + [s.at for s in first_sales.values()])
    latest = max(c.at for c in conversions)
    index = _Index(await _touchpoints(program.pk, earliest - lookback, latest))
    journeys = []
    for conversion in conversions:
        source = conversion
        if conversion.kind is ConversionKind.RENEWAL and conversion.customer_id is not None:
            source = first_sales.get(conversion.customer_id, conversion)
        journeys.append(
            Journey(
                conversion.id,
                conversion.currency,
                rules.Conversion(source.at, conversion.amount_minor),
                index.of(source),
            )
        )
    return journeys


def _credit_rows(journey: Journey, settings: rules.ModelSettings) -> list[AttributionCredit]:
    return [
        AttributionCredit(
            conversion_id=journey.conversion_id,
            enrollment_id=credit.enrollment_id,
            model=credit.model,
            points=str(credit.points),
            total=str(credit.total),
            amount_minor=credit.amount_minor,
            currency=journey.currency,
            touchpoints=[[t.touchpoint_id, str(t.points)] for t in credit.touchpoints],
        )
        for credit in rules.attribute(journey.touchpoints, journey.conversion, settings)
    ]


async def store_credits(journeys: Sequence[Journey], settings: rules.ModelSettings) -> int:
    """Replace the credits of these conversions by the model's (call inside a transaction)."""
    ids = [j.conversion_id for j in journeys]
    for chunk in range(0, len(ids), 500):
        await AttributionCredit.filter(conversion_id__in=ids[chunk : chunk + 500]).delete()
    rows = [row for journey in journeys for row in _credit_rows(journey, settings)]
    if rows:
        await AttributionCredit.bulk_create(rows, batch_size=1000)
    return len(journeys)


async def _program(program_id: int) -> Program:
    program = await Program.get_or_none(id=program_id)
    if program is None:
        raise not_found("programId", "program")
    return program


def _ensure_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise DomainError(ErrorCode.INVALID, ["to"], "must be after `from`")


async def recompute(
    actor: Actor, program_id: int, start: datetime | None, end: datetime | None
) -> int:
    """Credit again, with the program's current model, its conversions in the range.

    Returns how many conversions were recomputed; audited with the model used.
    """
    _ensure_range(start, end)
    program = await _program(program_id)
    settings = model_settings(program)
    journeys = await load_journeys(program, start, end)
    async with in_transaction():
        count = await store_credits(journeys, settings)
        await audit.record(
            actor,
            "recomputeAttribution",
            program,
            after={
                "model": str(settings.model),
                "from": None if start is None else start.isoformat(),
                "to": None if end is None else end.isoformat(),
                "conversionsRecomputed": count,
            },
        )
    return count


@dataclass(frozen=True, slots=True)
class CreditSummary:
    """What one enrollment would be credited under a model, beside what it is credited."""

    enrollment_id: int
    currency: str
    conversions: Fraction  # the sum of its exact shares: conversions it would be credited with
    amount_minor: int
    current_conversions: Fraction
    current_amount_minor: int


async def preview(
    program_id: int,
    spec: program_rules.AttributionSettings,
    start: datetime | None,
    end: datetime | None,
) -> list[CreditSummary]:
    """What each enrollment would have been credited under another model over the program's
    conversions in the range, beside its stored credits for the same conversions. Writes
    nothing. Sorted by the previewed amount (largest first), then enrollment id."""
    _ensure_range(start, end)
    program = await _program(program_id)
    settings = settings_from(spec, program)
    journeys = await load_journeys(program, start, end, settings.lookback_days)
    shares: dict[tuple[int, str], list[Any]] = defaultdict(lambda: [Fraction(0), 0, Fraction(0), 0])
    for journey in journeys:
        for credit in rules.attribute(journey.touchpoints, journey.conversion, settings):
            row = shares[credit.enrollment_id, journey.currency]
            row[0] += credit.share
            row[1] += credit.amount_minor
    ids = [j.conversion_id for j in journeys]
    for chunk in range(0, len(ids), 500):
        stored = await AttributionCredit.filter(
            conversion_id__in=ids[chunk : chunk + 500]
        ).values_list("enrollment_id", "currency", "points", "total", "amount_minor")
        for enrollment_id, currency, points, total, amount in stored:
            row = shares[enrollment_id, currency]
            row[2] += Fraction(int(points), int(total))
            row[3] += amount
    summaries = [
        CreditSummary(enrollment_id, currency, *values)
        for (enrollment_id, currency), values in shares.items()
    ]
    summaries.sort(key=lambda s: (-s.amount_minor, -s.current_amount_minor, s.enrollment_id))
    return summaries


async def data_driven(
    program_id: int,
    method: datadriven.DataDrivenMethod,
    start: datetime | None,
    end: datetime | None,
) -> datadriven.DataDrivenResult:
    """Markov removal effects or Shapley values over the program's journeys in the range.

    Converting journeys: each conversion in range, with the touchpoints its rule-based credit
    used (same window, same exclusions), as enrollments in time order. Non-converting
    journeys: each customer, or never-identified visitor, with touchpoints in the range and no
    conversion in it.
    """
    _ensure_range(start, end)
    program = await _program(program_id)
    settings = model_settings(program)
    journeys = await load_journeys(program, start, end)
    paths: list[tuple[tuple[int, ...], bool]] = []
    for journey in journeys:
        path = rules.journey(journey.touchpoints, journey.conversion.at, settings.lookback_days)
        if path:
            paths.append((tuple(t.enrollment_id for t in path), True))
    paths.extend(await _non_converting(program.pk, start, end))
    if method is datadriven.DataDrivenMethod.MARKOV:
        return datadriven.markov(paths)
    return datadriven.shapley(paths)


async def _non_converting(
    program_id: int, start: datetime | None, end: datetime | None
) -> list[tuple[tuple[int, ...], bool]]:
    touches = await _touchpoints(program_id, start or EPOCH_FLOOR, None)
    if end is not None:
        touches = [t for t in touches if t.point.at < end]
    converted = await _conversions(program_id, start, end)
    customers = {c.customer_id for c in converted if c.customer_id is not None}
    visitors = {c.visitor_id for c in converted if c.visitor_id is not None}
    clicks = {c.click_id for c in converted if c.click_id is not None}
    codes = {c.code_touchpoint_id for c in converted if c.code_touchpoint_id is not None}
    groups: dict[tuple[str, object], list[rules.Touchpoint]] = defaultdict(list)
    for touch in touches:
        point = touch.point
        if point.excluded or point.id in codes:
            continue
        if touch.customer_id is not None:
            if touch.customer_id not in customers:
                groups["customer", touch.customer_id].append(point)
        elif touch.visitor_id is not None:
            if touch.visitor_id not in visitors and touch.click_id not in clicks:
                groups["visitor", touch.visitor_id].append(point)
        elif touch.click_id is None or touch.click_id not in clicks:
            groups["touchpoint", point.id].append(point)  # a lone lead, deal, meeting...
    return [
        (tuple(t.enrollment_id for t in sorted(points, key=lambda t: (t.at, t.id))), False)
        for points in groups.values()
    ]
