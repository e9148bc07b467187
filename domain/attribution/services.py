"""Attribution over stored data: credit conversions, recompute, preview another model, and the
data-driven models over a program's journeys.

The math is the pure engine's (`rules`, `datadriven`); this module only loads plain values
and stores results.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from tortoise import connections
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.attribution import batch, datadriven, rules
from domain.attribution.batch import I64
from domain.attribution.models import AttributionCredit
from domain.audit import services as audit
from domain.clock import epoch_us, utcnow
from domain.commissions import ledger
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.gamification import rewards, tiers
from domain.pagination import in_list
from domain.programs import rules as program_rules
from domain.programs.models import FunnelRole, Program
from domain.tracking.models import ConversionKind


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
class Journeys:
    """A program's conversions and the touchpoints their credit may use, as columns.

    Conversion `i` is `conversion_ids[i]` (increasing); `conversions.at[i]` is where its window
    ends: its own instant, or a renewal's first sale's. Touchpoints outside the window are
    still in `touchpoints`: the engine applies the window (`rules.journey`).
    """

    conversion_ids: I64
    currencies: list[str]
    conversions: batch.ConversionColumns
    touchpoints: batch.TouchpointColumns

    def __len__(self) -> int:
        return len(self.conversion_ids)

    def paths(self, lookback_days: int) -> list[tuple[int, ...]]:
        """Each conversion's journey as enrollments in time order (window and exclusions
        applied as the rule-based models apply them); empty journeys left out."""
        tp, at = self.touchpoints, self.conversions.at
        end = at[tp.conversion]
        keep = ~tp.excluded & (tp.at <= end) & (tp.at >= end - lookback_days * DAY_US)
        conversion, ids, when = tp.conversion[keep], tp.id[keep], tp.at[keep]
        order = np.lexsort((ids, when, conversion))
        enrollments, groups = tp.enrollment_id[keep][order], conversion[order]
        cuts = np.flatnonzero(np.diff(groups)) + 1
        return [tuple(part.tolist()) for part in np.split(enrollments, cuts) if len(part)]


DAY_US = 86_400_000_000
_ROLE_SQL = (
    "CASE t.role WHEN 'SOURCE' THEN 0 WHEN 'INFLUENCE' THEN 1 WHEN 'CLOSE' THEN 2 ELSE -1 END"
)
# How a conversion names the touchpoints of its journey (the contract's "Ingestion semantics").
_LINKS = (
    "t.customer_id = c.customer_id",
    "t.program_id = c.program_id AND t.visitor_id = c.visitor_id",
    "t.program_id = c.program_id AND t.click_id = c.click_id",
    "t.id = c.code_touchpoint_id",
)


# bit i set: the conversion names a touchpoint by _LINKS[i]
_NAMED = (
    "(CASE WHEN c.customer_id IS NULL THEN 0 ELSE 1 END + CASE WHEN c.visitor_id IS NULL THEN 0 "
    "ELSE 2 END + CASE WHEN c.click_id IS NULL THEN 0 ELSE 4 END + CASE WHEN "
    "c.code_touchpoint_id IS NULL THEN 0 ELSE 8 END)"
)


class _Sql:
    """Hand-written SQL for the bulk reads (the ORM would build 1M objects): placeholders and
    instants as integer microseconds, in the dialect of the connection."""

    def __init__(self) -> None:
        self.connection = connections.get("default")
        self.sqlite = self.connection.capabilities.dialect == "sqlite"

    def micros(self, column: str) -> str:
        if self.sqlite:  # stored as ISO 8601 text in UTC, microseconds written as 6 digits
            return (
                f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000 + CASE WHEN "
                f"substr({column}, 20, 1) = '.' THEN CAST(substr({column}, 21, 6) AS INTEGER) "
                "ELSE 0 END)"
            )
        return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"

    async def rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        marks = ["?" if self.sqlite else f"${n}" for n in range(1, len(params) + 1)]
        _, rows = await self.connection.execute_query(sql.format(*marks), list(params))
        return list(rows)


def _range_sql(sql: _Sql, start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    # unverified conversions (the pixel's, until confirmed) are never credited
    where, params = ["c.program_id = {}", "c.verified"], []
    if start is not None:
        where.append(f"{sql.micros('c.occurred_at')} >= {{}}")
        params.append(epoch_us(start))
    if end is not None:
        where.append(f"{sql.micros('c.occurred_at')} < {{}}")
        params.append(epoch_us(end))
    return " AND ".join(where), params


async def _touch_rows(
    sql: _Sql, where: str, params: list[Any], links: Sequence[str] = _LINKS
) -> I64:
    """(conversion id, touchpoint id, enrollment, instant, flags) for every touchpoint a
    conversion names, by each link in turn (a touchpoint named twice comes twice: the caller
    drops the repeats). Flags: 1 a checkout code, 2 excluded, 4 x (role code + 1).

    Each link answers one comma-separated text that numpy parses: a million rows never become
    a million Python tuples (that alone would cost seconds).
    """
    flags = (
        "(CASE WHEN t.kind = 'CODE' THEN 1 ELSE 0 END + CASE WHEN t.excluded THEN 2 ELSE 0 END"
        f" + 4 * ({_ROLE_SQL} + 1))"
    )
    columns = f"c.id, t.id, t.enrollment_id, t.occurred_us, {flags}"
    joined = columns.replace(", ", " || ',' || ")
    packed = (
        f"group_concat({joined}, ',')"
        if sql.sqlite
        else f"string_agg(concat_ws(',', {columns}), ',')"
    )
    parts = []
    for link in links:
        rows = await sql.rows(
            f"SELECT {packed} FROM conversions c JOIN touchpoints t ON {link} WHERE {where}",
            params,
        )
        text = rows[0][0] if rows else None
        if text:
            parts.append(np.fromstring(text, dtype=np.int64, sep=","))
    if not parts:
        return np.zeros((0, 5), dtype=np.int64)
    return np.concatenate(parts).reshape(-1, 5)


async def _first_sales(
    sql: _Sql, program_id: int, where: str, params: list[Any]
) -> dict[int, tuple[int, int]]:
    """customer -> (id, at) of its first SALE, for the customers renewing in the range."""
    rows = await sql.rows(
        f"SELECT s.customer_id, s.id, {sql.micros('s.occurred_at')} FROM conversions s "
        "WHERE s.program_id = {} AND s.kind = 'SALE' AND s.customer_id IN (SELECT "
        f"c.customer_id FROM conversions c WHERE {where} AND c.kind = 'RENEWAL') "
        "ORDER BY s.occurred_at, s.id",
        [program_id, *params],
    )
    first: dict[int, tuple[int, int]] = {}
    for customer_id, sale_id, at in rows:
        first.setdefault(customer_id, (sale_id, at))
    return first


def _once(rows: I64) -> I64:
    """Each (conversion, touchpoint) once, sorted by conversion id."""
    if not len(rows):
        return rows
    if int(rows[:, :2].max()) < 1 << 31:  # one 64-bit key: far faster than unique rows
        _, first = np.unique((rows[:, 0] << 32) | rows[:, 1], return_index=True)
        return rows[first]
    _, first = np.unique(rows[:, :2], axis=0, return_index=True)
    return rows[first]


def _gather(rows: I64, sources: I64) -> tuple[I64, I64]:
    """The rows of each source conversion (rows sorted by source id), repeated for every
    conversion using it: (row indexes, conversion index of each)."""
    lo = np.searchsorted(rows[:, 0], sources, side="left")
    hi = np.searchsorted(rows[:, 0], sources, side="right")
    counts = hi - lo
    owner = np.repeat(np.arange(len(sources), dtype=np.int64), counts)
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    return np.repeat(lo, counts) + offsets, owner


async def load_journeys(program: Program, start: datetime | None, end: datetime | None) -> Journeys:
    """The journeys of the program's conversions with `start <= occurredAt < end`.

    A conversion's touchpoints are its customer's, its visitor's, its click's and its
    checkout code's; a RENEWAL of a customer is credited like the customer's first SALE: that
    sale's journey, at that sale's time. At most seven queries, whatever the size.
    """
    sql = _Sql()
    where, params = _range_sql(sql, start, end)
    return await _load(sql, program, where, [program.pk, *params])


async def _load(sql: _Sql, program: Program, where: str, params: list[Any]) -> Journeys:
    conversions = await sql.rows(
        f"SELECT c.id, c.kind, c.amount_minor, c.currency, {sql.micros('c.occurred_at')}, "
        f"c.customer_id, {_NAMED} FROM conversions c WHERE {where} ORDER BY c.id",
        params,
    )
    named = 0  # which links any conversion uses: the others need no query
    for row in conversions:
        named |= row[6]
    ids = np.array([row[0] for row in conversions], dtype=np.int64)
    amounts = np.array([row[2] for row in conversions], dtype=np.int64)
    ats = np.array([row[4] for row in conversions], dtype=np.int64)
    sources = ids.copy()
    first: dict[int, tuple[int, int]] = {}
    if any(row[1] == ConversionKind.RENEWAL and row[5] is not None for row in conversions):
        first = await _first_sales(sql, program.pk, where, params)
        for i, row in enumerate(conversions):
            if row[1] == ConversionKind.RENEWAL and row[5] in first:
                sources[i], ats[i] = first[row[5]]
    links = [link for bit, link in enumerate(_LINKS) if named >> bit & 1]
    rows = await _touch_rows(sql, where, params, links)
    outside = sorted({sale for sale, _ in first.values()} - set(ids.tolist()))
    for chunk in range(0, len(outside), 1000):
        part = outside[chunk : chunk + 1000]
        extra = await _touch_rows(sql, f"c.id IN ({in_list(len(part))})", part)
        rows = np.concatenate([rows, extra])
    rows = _once(rows)
    picked, owner = _gather(rows, sources)
    rows = rows[picked]
    flags = rows[:, 4]
    touchpoints = batch.TouchpointColumns(
        owner, rows[:, 1], rows[:, 2], rows[:, 3], flags & 1 == 1, (flags >> 2) - 1, flags & 2 == 2
    )
    return Journeys(
        ids,
        [row[3] for row in conversions],
        batch.ConversionColumns(ats, amounts),
        touchpoints,
    )


_CREDIT_COLUMNS = (
    "conversion_id", "enrollment_id", "model", "points", "total", "amount_minor", "currency",
    "touchpoints",
)  # fmt: skip


def _credit_values(journeys: Journeys, result: batch.BatchAttribution) -> list[tuple[Any, ...]]:
    """Each credit as plain values in the order of _CREDIT_COLUMNS."""
    credits, touches = result.credits, result.touch_weights
    bounds = np.searchsorted(touches.credit, np.arange(len(credits.conversion) + 1)).tolist()
    touch_ids, touch_points = touches.touchpoint_id.tolist(), touches.points.tolist()
    conversion_ids = journeys.conversion_ids.tolist()
    rows = []
    columns = (credits.conversion, credits.enrollment_id, credits.points, credits.total)
    for k, (conv, enrollment, points, total, amount) in enumerate(
        zip(*(c.tolist() for c in columns), credits.amount_minor.tolist(), strict=True)
    ):
        explanation: list[list[int | str]] = [
            [touch_ids[i], str(touch_points[i])] for i in range(bounds[k], bounds[k + 1])
        ]
        rows.append(
            (
                conversion_ids[conv],
                enrollment,
                result.model,
                str(points),
                str(total),
                amount,
                journeys.currencies[conv],
                explanation,
            )
        )
    return rows


def _credit_rows(journeys: Journeys, result: batch.BatchAttribution) -> list[AttributionCredit]:
    return [
        AttributionCredit(**dict(zip(_CREDIT_COLUMNS, values, strict=True)))
        for values in _credit_values(journeys, result)
    ]


async def store_credits(journeys: Journeys, settings: rules.ModelSettings) -> int:
    """Replace the credits of these conversions by the model's (call inside a transaction)."""
    ids = journeys.conversion_ids.tolist()
    for chunk in range(0, len(ids), 1000):
        await AttributionCredit.filter(conversion_id__in=ids[chunk : chunk + 1000]).delete()
    result = batch.attribute_batch(journeys.touchpoints, journeys.conversions, settings)
    rows = _credit_rows(journeys, result)
    if rows:
        await AttributionCredit.bulk_create(rows, batch_size=1000)
    return len(ids)


async def credit_conversions(program: Program, conversion_ids: Sequence[int]) -> int:
    """Credit these conversions (just recorded or confirmed) with the program's model, in the
    transaction that stored them, replacing any credits they had: journeys loaded by id,
    credits written as plain rows (no ORM object per credit: this runs for every batch)."""
    sql, settings = _Sql(), model_settings(program)
    now = utcnow()
    marks = ", ".join("?" if sql.sqlite else f"${n}" for n in range(1, len(_CREDIT_COLUMNS) + 2))
    insert = (
        f"INSERT INTO attribution_credits ({', '.join(_CREDIT_COLUMNS)}, created_at) "
        f"VALUES ({marks})"
    )
    for chunk in range(0, len(conversion_ids), 1000):
        ids = list(conversion_ids[chunk : chunk + 1000])
        await AttributionCredit.filter(conversion_id__in=ids).delete()
        where = f"c.program_id = {{}} AND c.id IN ({in_list(len(ids))})"
        journeys = await _load(sql, program, where, [program.pk, *ids])
        result = batch.attribute_batch(journeys.touchpoints, journeys.conversions, settings)
        rows = [
            [*values[:2], str(values[2]), *values[3:7], json.dumps(values[7]),
             now.isoformat(sep=" ") if sql.sqlite else now]
            for values in _credit_values(journeys, result)
        ]  # fmt: skip
        if rows:
            await sql.connection.execute_many(insert, rows)
    return len(conversion_ids)


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
        conversion_ids = journeys.conversion_ids.tolist()
        entries = await ledger.price_conversions(
            program, conversion_ids, reason="recomputeAttribution"
        )
        await rewards.conversions_credited(program, conversion_ids, new=False)
        await tiers.promote_credited(actor, program, conversion_ids)
        await audit.record(
            actor,
            "recomputeAttribution",
            program,
            after={
                "model": str(settings.model),
                "from": None if start is None else start.isoformat(),
                "to": None if end is None else end.isoformat(),
                "conversionsRecomputed": count,
                **ledger.summary(entries),
            },
        )
    return count


@dataclass(frozen=True, slots=True)
class CreditSummary:
    """What one enrollment would be credited under a model, beside what it is credited."""

    enrollment_id: int
    currency: str
    conversions: float  # the sum of its shares: how many conversions it would be credited with
    amount_minor: int
    current_conversions: float
    current_amount_minor: int


async def _stored_sums(
    sql: _Sql, where: str, params: list[Any]
) -> list[tuple[int, str, int, float]]:
    """Stored credits of the conversions in the range: (enrollment, currency, amount, shares)."""
    real = "REAL" if sql.sqlite else "DOUBLE PRECISION"
    rows = await sql.rows(
        f"SELECT a.enrollment_id, a.currency, SUM(a.amount_minor), SUM(CAST(a.points AS {real}) "
        f"/ CAST(a.total AS {real})) FROM attribution_credits a JOIN conversions c ON "
        f"c.id = a.conversion_id WHERE {where} GROUP BY a.enrollment_id, a.currency",
        params,
    )
    return [(int(e), str(cur), int(amount), float(shares)) for e, cur, amount, shares in rows]


async def preview(
    program_id: int,
    spec: program_rules.AttributionSettings,
    start: datetime | None,
    end: datetime | None,
) -> list[CreditSummary]:
    """What each enrollment would have been credited under another model over the program's
    conversions in the range, beside its stored credits for the same conversions. Writes
    nothing. Amounts are exact; the sums of shares are floats (shown to 6 places). Sorted by
    the previewed amount (largest first), then the current amount, then enrollment id."""
    _ensure_range(start, end)
    program = await _program(program_id)
    settings = settings_from(spec, program)
    journeys = await load_journeys(program, start, end)
    result = batch.attribute_batch(journeys.touchpoints, journeys.conversions, settings)
    credits = result.credits
    codes = {c: i for i, c in enumerate(dict.fromkeys(journeys.currencies))}
    names = list(codes)
    currency = np.array([codes[c] for c in journeys.currencies], dtype=np.int64)
    key = credits.enrollment_id * max(1, len(codes)) + currency[credits.conversion]
    keys, inverse = np.unique(key, return_inverse=True)
    amounts = np.zeros(len(keys), dtype=np.int64)
    np.add.at(amounts, inverse, credits.amount_minor)
    shares = np.zeros(len(keys), dtype=np.float64)
    np.add.at(shares, inverse, credits.points / credits.total)
    table: dict[tuple[int, str], list[Any]] = {}
    width = max(1, len(codes))
    for k, amount, share in zip(keys.tolist(), amounts.tolist(), shares.tolist(), strict=True):
        table[k // width, names[k % width]] = [share, amount, 0.0, 0]
    sql = _Sql()
    where, params = _range_sql(sql, start, end)
    for enrollment_id, cur, amount, share in await _stored_sums(sql, where, [program.pk, *params]):
        row = table.setdefault((enrollment_id, cur), [0.0, 0, 0.0, 0])
        row[2], row[3] = share, amount
    summaries = [
        CreditSummary(enrollment_id, cur, *values) for (enrollment_id, cur), values in table.items()
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
    conversion in it; a touchpoint of neither (a lone lead) is a journey of its own.
    """
    _ensure_range(start, end)
    program = await _program(program_id)
    journeys = await load_journeys(program, start, end)
    paths: list[datadriven.JourneyInput] = [
        (path, True) for path in journeys.paths(program.lookback_days)
    ]
    paths.extend((path, False) for path in await _non_converting(program.pk, start, end))
    if method is datadriven.DataDrivenMethod.MARKOV:
        return datadriven.markov(paths)
    return datadriven.shapley(paths)


async def _non_converting(
    program_id: int, start: datetime | None, end: datetime | None
) -> list[tuple[int, ...]]:
    sql = _Sql()
    where, params = _range_sql(sql, start, end)
    at = "t.occurred_us"
    bounds = "".join(
        f" AND {at} {op} {{}}" for op, value in ((">=", start), ("<", end)) if value is not None
    )
    links = " OR ".join(f"({link})" for link in _LINKS)
    rows = await sql.rows(
        f"SELECT t.id, t.enrollment_id, {at}, t.customer_id, t.visitor_id FROM touchpoints t "
        "WHERE t.program_id = {} AND CASE WHEN t.excluded THEN 1 ELSE 0 END = 0"
        + bounds
        + f" AND NOT EXISTS (SELECT 1 FROM conversions c WHERE {where} AND ({links}))",
        [
            program_id,
            *(epoch_us(v) for v in (start, end) if v is not None),
            program_id,
            *params,
        ],
    )
    groups: dict[tuple[str, object], list[tuple[int, int, int]]] = defaultdict(list)
    for touchpoint_id, enrollment_id, when, customer_id, visitor_id in rows:
        if customer_id is not None:
            key: tuple[str, object] = ("customer", customer_id)
        elif visitor_id is not None:
            key = ("visitor", visitor_id)
        else:
            key = ("touchpoint", touchpoint_id)
        groups[key].append((when, touchpoint_id, enrollment_id))
    return [tuple(e for _, _, e in sorted(points)) for points in groups.values()]
