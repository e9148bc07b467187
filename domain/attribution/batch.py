"""The attribution engine over columns: many conversions at once, with numpy.

`attribute_batch` gives, conversion by conversion, the credits `rules.attribute` gives: the same
enrollments in the same order, equal shares (as fractions: `points / total` may be on another
common scale), identical amounts, and each counted touchpoint's weight. It is what the storage
layer uses for bulk work (recomputing and previewing a program's conversions); `attribute`
stays the reference and the engine for one conversion.

Input, flat arrays (no ORM): every touchpoint of every journey, grouped by conversion index
(`TouchpointColumns`), and per conversion its instant and amount (`ConversionColumns`), all
instants as int64 microseconds since the Unix epoch (UTC). `columns` builds both from
`rules.Touchpoint`/`rules.Conversion` lists (for tests and notebooks: at ~1 µs a touchpoint in
Python it costs more than the engine). Output, columns too: one row per credit
(`CreditColumns`) and one per touchpoint of a credited enrollment (`TouchWeightColumns`).

How (all vectorized, no Python loop over conversions; conversions go in chunks of `chunk` so
the temporaries stay in the CPU caches):

1. the journey: excluded and out-of-window touchpoints dropped, then ordered by
   (conversion, time, id) with one sort of packed 64-bit keys (skipped when the input is
   already in that order, as a query ordered by conversion, time and id returns it);
2. integer weights per touchpoint, per model, in the proportions of `rules.raw_weights`
   (TIME_DECAY computes `rules.decay_points` with the very same float operations);
3. the enrollments: a sort by (conversion, enrollment, position) groups them; each group is
   placed by its last touchpoint, as `attribute` orders them;
4. the largest-remainder split: `amount * points // total` exactly in int64 (with a
   multiply-divide that needs no 128-bit integers when the product would overflow, `_muldiv`),
   then a sort by (conversion, remainder, points, later enrollment) hands out the units left.

FIRST_TOUCH and LAST_TOUCH skip 3 and 4: one touchpoint has all the weight.

Conversions the vectorized path cannot do exactly go through `attribute` itself, with Python
integers (`BatchAttribution.scalar_conversions` lists them): a total weight above 2^53 (a
TIME_DECAY journey of more than 8192 touchpoints, a ROLE_WEIGHTED one with very many
touchpoints per role), the amount -2^63, two touchpoints of different enrollments with the
same instant and the same id (`attribute` orders those enrollments by first appearance, which a
sort by last touchpoint cannot see). Settings outside what `domain.programs.rules.
ensure_attribution` accepts (a negative weight, position weights above 1, a half-life that is
not positive and finite, a lookback outside 0 to 36 500 days), and role or position weights
whose common denominator exceeds 2^53 (more than ~15 significant digits), send every
conversion that way. Points and
totals are int64: a conversion whose reduced weights still need more than 63 bits raises
OverflowError. Instants are plain integers here: a window reaching before year 1, where
`attribute` raises OverflowError, is simply computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Integral
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from domain.attribution.rules import (
    CODE,
    DECAY_POLY,
    DECAY_TABLE,
    MICROSECONDS_PER_DAY,
    TIME_DECAY_BITS,
    Conversion,
    Credit,
    ModelSettings,
    Touchpoint,
    TouchWeight,
    attribute,
    journey,
)
from domain.clock import epoch_us, from_epoch_us
from domain.programs.models import AttributionModelKind, FunnelRole
from domain.programs.rules import DEFAULT_HALF_LIFE_DAYS, DEFAULT_POSITION_WEIGHT

I64 = NDArray[np.int64]
Bools = NDArray[np.bool_]
Floats = NDArray[np.float64]

ROLES: tuple[FunnelRole, ...] = tuple(FunnelRole)  # role codes 0, 1, 2 (-1: no role)
ROLE_CODES: dict[FunnelRole | None, int] = {None: -1, **{r: i for i, r in enumerate(ROLES)}}
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
EXACT_TOTAL = 1 << 53  # the largest total weight the vectorized path handles
MAX_LOOKBACK_DAYS = 36_500
micros, from_micros = epoch_us, from_epoch_us  # the instants of the columns (names kept)
DEFAULT_CHUNK = 1 << 11  # conversions per chunk: the temporaries stay in L2/L3 (measured best)


def _i64(values: ArrayLike) -> I64:
    array = np.asarray(values)
    if array.dtype.kind == "M":  # numpy datetime64, any unit
        array = array.astype("datetime64[us]").view(np.int64)
    if array.dtype.kind not in "iub" and array.size:
        raise TypeError(f"expected integers, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.int64).reshape(-1)


def _bools(values: ArrayLike | None, size: int) -> Bools:
    if values is None:
        return np.zeros(size, dtype=np.bool_)
    return np.ascontiguousarray(values, dtype=np.bool_).reshape(-1)


def _ready(array: NDArray[Any], dtype: type[np.generic]) -> bool:
    return bool(array.dtype == dtype and array.ndim == 1 and array.flags.c_contiguous)


def _empty() -> I64:
    return np.zeros(0, dtype=np.int64)


# -- input ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TouchpointColumns:
    """Every touchpoint of every journey, one row each, grouped by `conversion` (the rows of a
    conversion together, conversions in increasing order; other orders are sorted first, at a
    cost). Within a conversion any order: as for `attribute`'s iterable, it only decides
    between touchpoints with the same instant and the same id."""

    conversion: I64  # index of the conversion (0 to N - 1)
    id: I64
    enrollment_id: I64
    at: I64  # microseconds since the Unix epoch (UTC); `of` also takes datetime64
    is_code: Bools  # kind == "CODE"
    role: I64  # -1 none; 0 SOURCE, 1 INFLUENCE, 2 CLOSE (the FunnelRole order)
    excluded: Bools

    @classmethod
    def of(
        cls,
        *,
        conversion: ArrayLike,
        id: ArrayLike,  # noqa: A002 - the column's name
        enrollment_id: ArrayLike,
        at: ArrayLike,
        is_code: ArrayLike | None = None,
        role: ArrayLike | None = None,
        excluded: ArrayLike | None = None,
    ) -> TouchpointColumns:
        """Columns from any integer (or datetime64 for `at`) and boolean arrays; roles
        default to none, kinds to not a code, nothing excluded."""
        conv = _i64(conversion)
        size = len(conv)
        columns = cls(
            conv,
            _i64(id),
            _i64(enrollment_id),
            _i64(at),
            _bools(is_code, size),
            np.full(size, -1, dtype=np.int64) if role is None else _i64(role),
            _bools(excluded, size),
        )
        return columns.check()

    def __len__(self) -> int:
        return len(self.conversion)

    def check(self) -> TouchpointColumns:
        """These columns, as int64 and bool arrays (converted if they are not), checked."""
        size = len(self.conversion)
        for name in ("id", "enrollment_id", "at", "is_code", "role", "excluded"):
            if len(getattr(self, name)) != size:
                raise ValueError(f"touchpoint column {name!r} has not {size} rows")
        if size and (int(self.role.min()) < -1 or int(self.role.max()) > 2):
            raise ValueError("roles are -1 (none), 0, 1 or 2")
        ints = (self.conversion, self.id, self.enrollment_id, self.at, self.role)
        flags = (self.is_code, self.excluded)
        if all(_ready(a, np.int64) for a in ints) and all(_ready(a, np.bool_) for a in flags):
            return self
        return TouchpointColumns(
            _i64(self.conversion),
            _i64(self.id),
            _i64(self.enrollment_id),
            _i64(self.at),
            _bools(self.is_code, size),
            _i64(self.role),
            _bools(self.excluded, size),
        )

    def take(self, rows: I64) -> TouchpointColumns:
        return TouchpointColumns(*(getattr(self, name)[rows] for name in self.__slots__))


@dataclass(frozen=True, slots=True)
class ConversionColumns:
    at: I64  # microseconds since the Unix epoch (UTC); `of` also takes datetime64
    amount_minor: I64

    @classmethod
    def of(cls, *, at: ArrayLike, amount_minor: ArrayLike) -> ConversionColumns:
        return cls(_i64(at), _i64(amount_minor)).check()

    def __len__(self) -> int:
        return len(self.at)

    def check(self) -> ConversionColumns:
        """These columns, as int64 arrays (converted if they are not), checked."""
        if len(self.at) != len(self.amount_minor):
            raise ValueError("conversion columns differ in length")
        if _ready(self.at, np.int64) and _ready(self.amount_minor, np.int64):
            return self
        return ConversionColumns(_i64(self.at), _i64(self.amount_minor))


def columns(
    journeys: Sequence[Iterable[Touchpoint]], conversions: Sequence[Conversion]
) -> tuple[TouchpointColumns, ConversionColumns]:
    """Columns from `rules` objects: `journeys[i]` are the touchpoints of `conversions[i]`."""
    if len(journeys) != len(conversions):
        raise ValueError("one journey per conversion")
    conv: list[int] = []
    ids: list[int] = []
    enrollments: list[int] = []
    ats: list[int] = []
    codes: list[bool] = []
    roles: list[int] = []
    excluded: list[bool] = []
    for i, path in enumerate(journeys):
        for t in path:
            conv.append(i)
            ids.append(t.id)
            enrollments.append(t.enrollment_id)
            ats.append(micros(t.at))
            codes.append(t.kind == CODE)
            roles.append(ROLE_CODES[t.role])
            excluded.append(t.excluded)
    touchpoints = TouchpointColumns(
        np.array(conv, dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array(enrollments, dtype=np.int64),
        np.array(ats, dtype=np.int64),
        np.array(codes, dtype=np.bool_),
        np.array(roles, dtype=np.int64),
        np.array(excluded, dtype=np.bool_),
    )
    return touchpoints, ConversionColumns(
        np.array([micros(c.at) for c in conversions], dtype=np.int64),
        np.array([c.amount_minor for c in conversions], dtype=np.int64),
    )


# -- output ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreditColumns:
    """One row per credit, as `attribute` returns them: grouped by conversion (increasing),
    in `attribute`'s order within one; credits with no weight and no amount left out."""

    conversion: I64
    enrollment_id: I64
    points: I64  # share = points / total, equal to `Credit.share`
    amount_minor: I64
    conversion_total: I64  # per conversion (not per credit): the total of its weights

    def __len__(self) -> int:
        return len(self.conversion)

    @property
    def total(self) -> I64:
        """Per credit: the total its points are over."""
        return self.conversion_total[self.conversion]


@dataclass(frozen=True, slots=True)
class TouchWeightColumns:
    """One row per touchpoint of a credited enrollment (`Credit.touchpoints`): grouped by
    credit (increasing), in journey (time) order within one. The columns other than
    `credit`, `row` and `points` are looked up on access."""

    credit: I64  # row in `credits`
    row: I64  # the touchpoint's row in the input `touchpoints`
    points: I64  # weight = points / total, equal to `TouchWeight.weight`
    credits: CreditColumns
    touchpoints: TouchpointColumns

    def __len__(self) -> int:
        return len(self.credit)

    @property
    def conversion(self) -> I64:
        return self.credits.conversion[self.credit]

    @property
    def enrollment_id(self) -> I64:
        return self.credits.enrollment_id[self.credit]

    @property
    def touchpoint_id(self) -> I64:
        return self.touchpoints.id[self.row]

    @property
    def at(self) -> I64:
        return self.touchpoints.at[self.row]

    @property
    def total(self) -> I64:
        return self.credits.conversion_total[self.conversion]


@dataclass(frozen=True, slots=True)
class BatchAttribution:
    model: AttributionModelKind
    credits: CreditColumns
    touch_weights: TouchWeightColumns
    scalar_conversions: I64 = field(default_factory=_empty)  # done by `attribute` (exactness)

    def credit_lists(self) -> list[list[Credit]]:
        """The credits as `attribute` returns them, one list per conversion (for tests and
        small previews: it builds Python objects again)."""
        credits, touches = self.credits, self.touch_weights
        result: list[list[Credit]] = [[] for _ in range(len(credits.conversion_total))]
        bounds = np.searchsorted(touches.credit, np.arange(len(credits) + 1)).tolist()
        tid, tat, tpoints = (
            a.tolist() for a in (touches.touchpoint_id, touches.at, touches.points)
        )
        rows = zip(
            credits.conversion.tolist(),
            credits.enrollment_id.tolist(),
            credits.points.tolist(),
            credits.total.tolist(),
            credits.amount_minor.tolist(),
            strict=True,
        )
        for k, (conv, enrollment, points, total, amount) in enumerate(rows):
            weights = tuple(
                TouchWeight(tid[i], from_micros(tat[i]), tpoints[i], total)
                for i in range(bounds[k], bounds[k + 1])
            )
            result[conv].append(Credit(enrollment, points, total, amount, self.model, weights))
        return result


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Plan:
    """The settings as the integers the vectorized path needs (None: not vectorizable)."""

    model: AttributionModelKind
    lookback_us: int
    code_wins: bool
    half_life_us: float = 1.0
    first: int = 0  # POSITION_BASED: first / denominator, last / denominator
    last: int = 0
    denominator: int = 1
    role_points: tuple[int, int, int] = (0, 0, 0)  # ROLE_WEIGHTED, over a common denominator


def _plan(settings: ModelSettings) -> _Plan | None:
    lookback, model = settings.lookback_days, settings.model
    if not isinstance(lookback, Integral) or not 0 <= lookback <= MAX_LOOKBACK_DAYS:
        return None
    if not isinstance(model, AttributionModelKind):  # `attribute` compares by identity
        return None
    plan = _Plan(model, int(lookback) * MICROSECONDS_PER_DAY, bool(settings.code_wins))
    try:
        if model is AttributionModelKind.TIME_DECAY:
            half_life = settings.half_life_days or DEFAULT_HALF_LIFE_DAYS
            if not isinstance(half_life, int | float) or not 0 < half_life < math.inf:
                return None
            return _Plan(
                model,
                plan.lookback_us,
                plan.code_wins,
                half_life_us=half_life * float(MICROSECONDS_PER_DAY),
            )
        if model is AttributionModelKind.POSITION_BASED:
            first, last = (
                Fraction(DEFAULT_POSITION_WEIGHT if w is None else w)
                for w in (settings.first_weight, settings.last_weight)
            )
            denominator = math.lcm(first.denominator, last.denominator)
            f, g = (int(w * denominator) for w in (first, last))
            if f < 0 or g < 0 or f + g > denominator or denominator > EXACT_TOTAL:
                return None
            return _Plan(model, plan.lookback_us, plan.code_wins, first=f, last=g,
                         denominator=denominator)  # fmt: skip
        if model is AttributionModelKind.ROLE_WEIGHTED:
            given = settings.role_weights or {}
            weights = [Fraction(given.get(r, 0)) for r in ROLES]
            denominator = math.lcm(*(w.denominator for w in weights))
            points = tuple(int(w * denominator) for w in weights)
            if min(points) < 0 or sum(points) > EXACT_TOTAL:
                return None
            return _Plan(
                model,
                plan.lookback_us,
                plan.code_wins,
                role_points=(points[0], points[1], points[2]),
            )
    except (ArithmeticError, ValueError, TypeError):
        return None  # `attribute` raises the same, or not, conversion by conversion
    return plan


_DECAY_TABLE = np.array(DECAY_TABLE, dtype=np.float64)


def decay_points(elapsed_us: I64, half_life_us: float) -> I64:
    """`rules.decay_points` on an array: the same IEEE-754 operations in the same order, so
    the same integers (tests/domain/attribution/test_batch.py checks it)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        t: Floats = elapsed_us / half_life_us
        ok = t < TIME_DECAY_BITS + 1
        t = np.where(ok, t, 0.0)
        k = np.floor(t)
        f = t - k
        j = (f * 256.0).astype(np.int64)
        r = f - j * 0.00390625
        c1, c2, c3, c4 = DECAY_POLY
        p = c4 * r
        p += c3
        p *= r
        p += c2
        p *= r
        p += c1
        p *= r
        p += 1.0
        v = _DECAY_TABLE[j] * p
        points = np.ldexp(v, (TIME_DECAY_BITS - k).astype(np.int32)).astype(np.int64)
    points[~ok] = 0
    return points


# -- sorting helpers ------------------------------------------------------------------------


def _bits(largest: int) -> int:
    return max(int(largest), 0).bit_length()


def _break_ties(order: I64, ranked: I64, rest: Sequence[I64]) -> I64:
    """`order` sorts rows by `ranked` (its values in that order): rows tied on it are put in
    the order of the `rest` keys (most significant first), then of `order` itself."""
    tie = ranked[1:] == ranked[:-1]
    if not rest or not tie.any():
        return order
    involved = np.zeros(len(order), dtype=np.bool_)
    involved[1:] |= tie
    involved[:-1] |= tie
    at = np.flatnonzero(involved)
    rows = order[at]
    keys = [rows, *(values[rows] for values in reversed(rest)), ranked[at]]
    order[at] = rows[np.lexsort(keys)]
    return order


def _lexorder(keys: Sequence[tuple[I64, int | None]]) -> I64:
    """The stable permutation sorting rows by `keys`, most significant first. A key given with
    a bit width holds values in [0, 2^bits): leading keys are packed into one int64 for a
    single sort; rows tied on it are then ordered by the other keys (a small lexsort)."""
    packed: I64 | None = None
    used = taken = 0
    for values, bits in keys:
        if bits is None or used + bits > 63:
            break
        packed = values.copy() if packed is None else (packed << bits) | values
        used += bits
        taken += 1
    if packed is None:
        return np.lexsort([values for values, _ in reversed(keys)]).astype(np.int64)
    order = np.argsort(packed, kind="stable").astype(np.int64)
    return _break_ties(order, packed[order], [values for values, _ in keys[taken:]])


def _segment_starts(groups: I64) -> tuple[I64, I64]:
    """For a non-decreasing array: where each run starts, and each row's run number."""
    new = np.ones(len(groups), dtype=np.bool_)
    new[1:] = groups[1:] != groups[:-1]
    return np.flatnonzero(new), np.cumsum(new) - 1


def _muldiv(amount: I64, points: I64, total: I64) -> tuple[I64, I64]:
    """divmod(amount * points, total) exactly, for 0 <= amount, 0 <= points <= total <= 2^53,
    where amount * points may overflow int64.

    amount = qa * total + ra, so amount * points = qa * points * total + ra * points with
    qa * points <= amount. ra * points < 2^106 is divided in floating point (all three exact
    doubles, two roundings: the quotient is off by at most 3), then the remainder
    ra * points - estimate * total is computed modulo 2^64 (exact, since its true value lies
    within 4 * total <= 2^55 of 0) and the estimate corrected by its floor division by total."""
    qa, ra = np.divmod(amount, total)
    estimate = np.floor(ra.astype(np.float64) * points.astype(np.float64) / total).astype(np.int64)
    u = np.uint64
    wrapped = ra.astype(u) * points.astype(u) - estimate.astype(u) * total.astype(u)
    rest = wrapped.view(np.int64)
    correction = rest // total
    return qa * points + estimate + correction, rest - correction * total


# -- one chunk of conversions ---------------------------------------------------------------


class _Out:
    """The result columns, allocated once for the whole batch (there are at most as many
    credits, and touch weights, as input touchpoints; pages never written cost no memory)
    and filled chunk by chunk, in order."""

    def __init__(self, capacity: int, conversions: int) -> None:
        def column() -> I64:
            return np.empty(capacity, dtype=np.int64)

        self.conversion, self.enrollment_id, self.points, self.amount = (column() for _ in "1234")
        self.total = np.zeros(conversions, dtype=np.int64)
        self.credit, self.row, self.touch_points = column(), column(), column()
        self.credits = 0
        self.touches = 0
        self.scalar: list[I64] = []


class _Journey(NamedTuple):
    """A chunk's journeys: the touchpoints that count, in (conversion, time, id) order."""

    t0: int  # the chunk's input rows
    t1: int
    rows: I64 | None  # their rows in the chunk's input (None: all of them, as they came)
    c: I64  # local conversion index (non-decreasing)
    at: I64
    tid: I64
    e: I64
    n: I64  # per conversion: how many
    start: I64  # per conversion: where its journey starts
    tied: Bools  # row k and k + 1: same conversion, same instant

    def column(self, values: NDArray[Any]) -> NDArray[Any]:
        rows = values[self.t0 : self.t1]
        return rows if self.rows is None else rows[self.rows]

    def input_rows(self, positions: I64) -> I64:
        return (positions if self.rows is None else self.rows[positions]) + self.t0


def _journey(
    tp: TouchpointColumns, conv: ConversionColumns, plan: _Plan, t0: int, t1: int, c0: int, c1: int
) -> _Journey:
    nc = c1 - c0
    local = tp.conversion[t0:t1] - c0
    at_all = tp.at[t0:t1]
    conv_at = conv.at[c0:c1]
    at_t = conv_at[local]
    keep = at_all <= at_t
    keep &= at_all >= at_t - plan.lookback_us
    keep &= ~tp.excluded[t0:t1]
    rows: I64 | None = None
    if keep.all():
        c, at, tid = local, at_all, tp.id[t0:t1]
    else:
        rows = np.flatnonzero(keep)
        c, at, tid = local[rows], at_all[rows], tp.id[t0:t1][rows]
    n = np.bincount(c, minlength=nc).astype(np.int64)
    start = np.cumsum(n) - n
    tied: Bools = np.zeros(0, dtype=np.bool_)
    if len(c) > 1:
        same = c[1:] == c[:-1]
        step = at[1:] - at[:-1]
        tied = same & (step == 0)
        if (same & ((step < 0) | (tied & (tid[1:] < tid[:-1])))).any():
            since = at - (conv_at - plan.lookback_us)[c]
            order = _journey_order(c, since, tid, n, start, _bits(plan.lookback_us))
            rows = order if rows is None else rows[order]
            at, tid = at[order], tid[order]  # c is unchanged: it leads the order
            step = at[1:] - at[:-1]
            tied = same & (step == 0)
    e = tp.enrollment_id[t0:t1] if rows is None else tp.enrollment_id[t0:t1][rows]
    return _Journey(t0, t1, rows, c, at, tid, e, n, start, tied)


def _journey_order(c: I64, since: I64, tid: I64, n: I64, start: I64, sbits: int) -> I64:
    """The stable order by (conversion, instant, id): one sort of (conversion, instant,
    position) packed in 64 bits when they fit, decoded; ties on the instant by id."""
    cbits, pbits = _bits(len(n) - 1), _bits(int(n.max()) - 1)
    if cbits + sbits + pbits > 63:
        return _lexorder([(c, cbits), (since, sbits), (tid, None)])
    pos = np.arange(len(c), dtype=np.int64) - start[c]
    key = (((c << sbits) | since) << pbits) | pos
    key.sort()
    order = start[key >> (sbits + pbits)] + (key & ((1 << pbits) - 1))
    return _break_ties(order, key >> pbits, [tid])


def _last_codes(j: _Journey, code: Bools) -> tuple[I64, I64]:
    """The conversions with a code on their journey, and the position of their last one."""
    is_code = np.flatnonzero(code)
    code_conv = j.c[is_code]
    last = np.ones(len(is_code), dtype=np.bool_)
    last[:-1] = code_conv[1:] != code_conv[:-1]
    return code_conv[last], is_code[last]


def _one_hot(
    j: _Journey, plan: _Plan, tp: TouchpointColumns, amount: I64, c0: int, out: _Out
) -> None:
    """FIRST_TOUCH and LAST_TOUCH: one touchpoint weighs 1 and its enrollment takes the whole
    amount; the others get neither weight nor amount, hence no credit."""
    c, n, start = j.c, j.n, j.start
    nc = len(n)
    filled = np.flatnonzero(n)
    if not len(filled):
        return
    winner = np.zeros(nc, dtype=np.int64)
    first = plan.model is AttributionModelKind.FIRST_TOUCH
    winner[filled] = start[filled] if first else start[filled] + n[filled] - 1
    if plan.code_wins:
        coded, last_code = _last_codes(j, j.column(tp.is_code))
        winner[coded] = last_code
    winner = winner[filled]
    k, o = len(filled), out.credits
    np.add(filled, c0, out=out.conversion[o : o + k])
    out.enrollment_id[o : o + k] = j.e[winner]
    out.points[o : o + k] = 1
    out.amount[o : o + k] = amount[filled]
    out.total[c0 + filled] = 1
    out.credits += k

    won_by = np.zeros(nc, dtype=np.int64)
    won_by[filled] = j.e[winner]
    rows = np.flatnonzero(j.e == won_by[c])  # the winning enrollment's touchpoints
    credit_of = np.zeros(nc, dtype=np.int64)
    credit_of[filled] = np.arange(o, o + k)
    is_winner = np.zeros(len(c), dtype=np.int64)
    is_winner[winner] = 1
    t, size = out.touches, len(rows)
    out.credit[t : t + size] = credit_of[c[rows]]
    out.row[t : t + size] = j.input_rows(rows)
    out.touch_points[t : t + size] = is_winner[rows]
    out.touches += size


def _weights(plan: _Plan, j: _Journey, role: I64 | None, code: Bools | None, scalar: Bools) -> I64:
    """Each journey touchpoint's integer weight, in the proportions of `rules.raw_weights`;
    flags in `scalar` the conversions whose total could exceed EXACT_TOTAL."""
    c, n, start = j.c, j.n, j.start
    m, nc = len(c), len(n)
    model = plan.model
    w: I64
    if model is AttributionModelKind.LINEAR:
        w = np.ones(m, dtype=np.int64)
    elif model is AttributionModelKind.TIME_DECAY:
        scalar |= n > (EXACT_TOTAL >> TIME_DECAY_BITS)
        youngest = j.at[np.maximum(start + n - 1, 0)]
        w = decay_points(youngest[c] - j.at, plan.half_life_us)
    elif model is AttributionModelKind.POSITION_BASED:
        f, g, d = plan.first, plan.last, plan.denominator
        scalar |= n - 2 > EXACT_TOTAL // d
        # n >= 3: f (n-2), d - f - g, ..., d - f - g, g (n-2); n = 2: f, g (1, 1 if both 0)
        pos = np.arange(m, dtype=np.int64) - start[c]
        nn = n[c]
        scale = np.where(scalar[c], 1, np.maximum(nn - 2, 1))
        w = np.where(pos == 0, f * scale, np.where(pos == nn - 1, g * scale, d - f - g))
        if f + g == 0:
            w[nn == 2] = 1
        w[nn == 1] = 1
    elif model is AttributionModelKind.ROLE_WEIGHTED:
        # a role's points shared by its touchpoints: over the lcm of the role counts
        assert role is not None
        points = np.array(plan.role_points, dtype=np.int64)
        role4 = role & 3  # no role (-1) is column 3
        counts = np.bincount(c * 4 + role4, minlength=4 * nc).reshape(nc, 4)[:, :3]
        active = (counts > 0) & (points > 0)
        present = (active * points).sum(axis=1)  # <= EXACT_TOTAL (checked by _plan)
        scalar |= n > (1 << 17)  # keeps the lcm of three counts below 2^51
        counts = np.where(active & ~scalar[:, None], counts, 1)
        lcm = np.lcm(np.lcm(counts[:, 0], counts[:, 1]), counts[:, 2])
        scalar |= lcm > EXACT_TOTAL // np.maximum(present, 1)
        lcm[scalar] = 1
        per_role = np.zeros((nc, 4), dtype=np.int64)
        per_role[:, :3] = points * (lcm[:, None] // counts)
        per_role[present == 0] = 1  # no role with a weight on the journey: equal weights
        w = per_role.reshape(-1)[c * 4 + role4]
    else:
        raise AssertionError(model)
    if code is not None and code.any():  # the last code takes it all
        coded, last_code = _last_codes(j, code)
        has_code = np.zeros(nc, dtype=np.bool_)
        has_code[coded] = True
        w = np.where(has_code[c], 0, w)
        w[last_code] = 1
    return w


def _weighted(
    j: _Journey, plan: _Plan, tp: TouchpointColumns, amount: I64, scalar: Bools, c0: int, out: _Out
) -> None:
    """LINEAR, TIME_DECAY, POSITION_BASED, ROLE_WEIGHTED: the general path."""
    c, e, n, start = j.c, j.e, j.n, j.start
    m, nc = len(c), len(n)
    if not m:
        return
    if len(j.tied):
        # same instant and id, different enrollments: `attribute` orders them by first
        # appearance, which a sort by last touchpoint cannot see
        clash = j.tied & (j.tid[1:] == j.tid[:-1]) & (e[1:] != e[:-1])
        if clash.any():
            scalar[c[1:][clash]] = True

    # 2. weights
    role = j.column(tp.role) if plan.model is AttributionModelKind.ROLE_WEIGHTED else None
    code = j.column(tp.is_code) if plan.code_wins else None
    w = _weights(plan, j, role, code, scalar)
    if scalar.any():  # keep their numbers small; their results are dropped
        w = np.where(scalar[c], 1, w)
        amount = np.where(scalar, 0, amount)
    filled = np.flatnonzero(n)
    total = np.zeros(nc, dtype=np.int64)
    total[filled] = np.add.reduceat(w, start[filled])

    # 3. the enrollments: grouped by a sort on (conversion, enrollment, position), then each
    # placed by its last touchpoint
    pos = np.arange(m, dtype=np.int64) - start[c]
    cbits, pbits = _bits(nc - 1), _bits(int(n.max()) - 1)
    lowest = int(e.min())
    spread = int(e.max()) - lowest
    ebits = _bits(spread) if spread <= INT64_MAX else 64
    new = np.ones(m, dtype=np.bool_)
    if cbits + ebits + pbits <= 63:  # one sort of packed keys, decoded
        key = (c << (ebits + pbits)) | ((e - lowest) << pbits) | pos
        key.sort()
        order = start[key >> (ebits + pbits)] + (key & ((1 << pbits) - 1))
        pair = key >> pbits
        new[1:] = pair[1:] != pair[:-1]
    else:
        order = _lexorder([(c, cbits), (e, None), (pos, pbits)])
        cs, es = c[order], e[order]
        new[1:] = (cs[1:] != cs[:-1]) | (es[1:] != es[:-1])
    gstart = np.flatnonzero(new)
    groups = len(gstart)
    gsum = np.add.reduceat(w[order], gstart)
    gsize = np.diff(np.append(gstart, m))
    last = order[gstart + gsize - 1]  # journey position of each group's last touchpoint
    is_last = np.zeros(m, dtype=np.bool_)
    is_last[last] = True
    slot = np.empty(m, dtype=np.int64)
    slot[last] = np.arange(groups, dtype=np.int64)
    lasts = np.flatnonzero(is_last)
    placed = slot[lasts]  # groups in credit order
    g_conv = c[lasts]
    g_points = gsum[placed]
    g_size = gsize[placed]

    # 4. the largest-remainder split, on |amount| (a refund is split as its mirror)
    whole = np.abs(amount)
    g_amount = whole[g_conv]
    g_total = total[g_conv]
    hard = whole > INT64_MAX // np.maximum(total, 1)
    if hard.any():
        quotient, remainder = np.empty(groups, np.int64), np.empty(groups, np.int64)
        is_hard = hard[g_conv]
        easy = np.flatnonzero(~is_hard)
        quotient[easy], remainder[easy] = np.divmod(g_amount[easy] * g_points[easy], g_total[easy])
        big = np.flatnonzero(is_hard)
        quotient[big], remainder[big] = _muldiv(g_amount[big], g_points[big], g_total[big])
    else:
        quotient, remainder = np.divmod(g_amount * g_points, g_total)
    per_conv = np.bincount(g_conv, minlength=nc)
    first_group = np.cumsum(per_conv) - per_conv
    left = np.zeros(nc, dtype=np.int64)
    left[filled] = whole[filled] - np.add.reduceat(quotient, first_group[filled])
    # the units left go to larger remainders, then larger weights, then later enrollments;
    # the remainders sum to left * total, each below total: only those above 0 can win
    rows = np.flatnonzero((left[g_conv] > 0) & (remainder > 0))
    if len(rows):
        rc, rr, rp = g_conv[rows], remainder[rows], g_points[rows]
        ri = rows - first_group[rc]
        top_r, top_p, top_i = int(rr.max()), int(rp.max()), int(ri.max())
        rbits, wbits, ibits = _bits(top_r), _bits(top_p), _bits(top_i)
        if cbits + rbits + wbits + ibits <= 63:  # one sort of packed keys, decoded
            key = (((rc << rbits | (top_r - rr)) << wbits | (top_p - rp)) << ibits) | (top_i - ri)
            key.sort()
            ranked_conv = key >> (rbits + wbits + ibits)
            ranked = first_group[ranked_conv] + top_i - (key & ((1 << ibits) - 1))
        elif cbits + rbits + ibits <= 63:  # the same without the weights, then equal remainders
            key = ((rc << rbits | (top_r - rr)) << ibits) | (top_i - ri)
            key.sort()
            ranked_conv = key >> (rbits + ibits)
            ranked = first_group[ranked_conv] + top_i - (key & ((1 << ibits) - 1))
            within = np.arange(groups, dtype=np.int64) - first_group[g_conv]
            ranked = _break_ties(ranked, key >> ibits, [top_p - g_points, top_i - within])
        else:
            keys = [(rc, cbits), (top_r - rr, rbits), (top_p - rp, wbits), (top_i - ri, ibits)]
            ranked = rows[_lexorder(keys)]
            ranked_conv = g_conv[ranked]
        seg_start, seg = _segment_starts(ranked_conv)
        rank = np.arange(len(ranked)) - seg_start[seg]
        quotient[ranked[rank < left[ranked_conv]]] += 1
    g_amount_minor = np.where(amount[g_conv] < 0, -quotient, quotient)

    # credits, and their touchpoints grouped by credit
    kept = ((g_points > 0) | (g_amount_minor != 0)) & ~scalar[g_conv]
    everything = bool(kept.all())
    k, o = (groups if everything else int(kept.sum())), out.credits
    if everything:
        np.add(g_conv, c0, out=out.conversion[o : o + k])
        np.take(e, lasts, out=out.enrollment_id[o : o + k], mode="clip")
        out.points[o : o + k] = g_points
        out.amount[o : o + k] = g_amount_minor
    else:
        np.add(g_conv[kept], c0, out=out.conversion[o : o + k])
        out.enrollment_id[o : o + k] = e[lasts[kept]]
        out.points[o : o + k] = g_points[kept]
        out.amount[o : o + k] = g_amount_minor[kept]
    out.total[c0 : c0 + nc] = total
    out.credits += k

    gid = np.cumsum(new) - 1  # the group of each row in `order`
    rank_of = np.empty(groups, dtype=np.int64)
    rank_of[placed] = np.arange(groups, dtype=np.int64)
    fin = rank_of[gid]
    sizes = g_size if everything else np.where(kept, g_size, 0)
    dest = (np.cumsum(sizes) - sizes)[fin] + (np.arange(m) - gstart[gid])
    if everything:
        src = np.empty(m, dtype=np.int64)
        src[dest] = order
    else:
        counted = kept[fin]
        src = np.empty(int(sizes.sum()), dtype=np.int64)
        src[dest[counted]] = order[counted]
    t, size = out.touches, len(src)
    credit_ids = np.arange(o, o + k, dtype=np.int64)
    out.credit[t : t + size] = np.repeat(credit_ids, sizes if everything else sizes[kept])
    out.row[t : t + size] = j.input_rows(src)
    np.take(w, src, out=out.touch_points[t : t + size], mode="clip")
    out.touches += size


def _chunk(
    tp: TouchpointColumns,
    conv: ConversionColumns,
    plan: _Plan,
    bounds: tuple[int, int, int, int],
    out: _Out,
) -> None:
    t0, t1, c0, c1 = bounds
    j = _journey(tp, conv, plan, t0, t1, c0, c1)
    amount = conv.amount_minor[c0:c1]
    if plan.model in (AttributionModelKind.FIRST_TOUCH, AttributionModelKind.LAST_TOUCH):
        _one_hot(j, plan, tp, amount, c0, out)
        return
    scalar = amount == INT64_MIN  # |amount| does not fit
    _weighted(j, plan, tp, amount, scalar, c0, out)
    if scalar.any():
        out.scalar.append(np.flatnonzero(scalar) + c0)


# -- conversions done by `attribute` ----------------------------------------------------------


class _Scalar(NamedTuple):
    conversion: I64
    enrollment_id: I64
    points: I64
    amount: I64
    total: I64  # per conversion in `which`
    credit: I64
    row: I64
    touch_points: I64


def _scalar(
    tp: TouchpointColumns, conv: ConversionColumns, settings: ModelSettings, which: I64
) -> _Scalar:
    """`attribute` on the given conversions, its integers reduced by their common divisor."""
    lo = np.searchsorted(tp.conversion, which, side="left").tolist()
    hi = np.searchsorted(tp.conversion, which, side="right").tolist()
    credit_rows: list[tuple[int, int, int, int]] = []
    touch_rows: list[tuple[int, int, int]] = []
    totals: list[int] = []
    for i, a, b in zip(which.tolist(), lo, hi, strict=True):
        objects = [
            Touchpoint(
                int(tp.id[k]),
                int(tp.enrollment_id[k]),
                from_micros(int(tp.at[k])),
                CODE if tp.is_code[k] else "CLICK",
                ROLES[int(tp.role[k])] if tp.role[k] >= 0 else None,
                bool(tp.excluded[k]),
            )
            for k in range(a, b)
        ]
        conversion = Conversion(from_micros(int(conv.at[i])), int(conv.amount_minor[i]))
        credits = attribute(objects, conversion, settings)
        if not credits:
            totals.append(0)
            continue
        divisor = math.gcd(credits[0].total, *(t.points for c in credits for t in c.touchpoints))
        totals.append(credits[0].total // divisor)
        row_of = {id(t): k for k, t in zip(range(a, b), objects, strict=True)}
        path = journey(objects, conversion.at, settings.lookback_days)
        for credit in credits:
            mine = [t for t in path if t.enrollment_id == credit.enrollment_id]
            assert [t.id for t in mine] == [t.touchpoint_id for t in credit.touchpoints]
            for t, weight in zip(mine, credit.touchpoints, strict=True):
                touch_rows.append((len(credit_rows), row_of[id(t)], weight.points // divisor))
            points = credit.points // divisor
            credit_rows.append((i, credit.enrollment_id, points, credit.amount_minor))
    if max(totals, default=0) > INT64_MAX:
        raise OverflowError("a conversion's weights need more than 63 bits even reduced")

    def cols(rows: Sequence[tuple[int, ...]], width: int) -> list[I64]:
        if not rows:
            return [_empty() for _ in range(width)]
        return [np.array(col, dtype=np.int64) for col in zip(*rows, strict=True)]

    c_conv, c_enrollment, c_points, c_amount = cols(credit_rows, 4)
    t_credit, t_row, t_points = cols(touch_rows, 3)
    c_total = np.array(totals, dtype=np.int64)
    return _Scalar(c_conv, c_enrollment, c_points, c_amount, c_total, t_credit, t_row, t_points)


# -- the engine -------------------------------------------------------------------------------


def attribute_batch(
    touchpoints: TouchpointColumns,
    conversions: ConversionColumns,
    settings: ModelSettings,
    *,
    chunk: int = DEFAULT_CHUNK,
) -> BatchAttribution:
    """`rules.attribute` for every conversion at once (see the module docstring)."""
    touchpoints, conversions = touchpoints.check(), conversions.check()
    count = len(conversions)
    tp, regrouped = _grouped(touchpoints, count)
    plan = _plan(settings)
    out = _Out(len(tp) if plan is not None else 0, count)
    if plan is None:
        scalar = np.arange(count, dtype=np.int64)
    else:
        bounds = np.searchsorted(tp.conversion, np.arange(0, count + chunk, chunk)).tolist()
        for k, c0 in enumerate(range(0, count, chunk)):
            c1 = min(c0 + chunk, count)
            _chunk(tp, conversions, plan, (bounds[k], bounds[k + 1], c0, c1), out)
        scalar = np.concatenate(out.scalar) if out.scalar else _empty()
    k, t = out.credits, out.touches
    credit_cols = [out.conversion[:k], out.enrollment_id[:k], out.points[:k], out.amount[:k]]
    touch_cols = [out.credit[:t], out.row[:t], out.touch_points[:t]]
    if len(scalar):
        _merge(
            credit_cols, touch_cols, out.total, scalar, _scalar(tp, conversions, settings, scalar)
        )
    if regrouped is not None:
        touch_cols[1] = regrouped[touch_cols[1]]
    credits = CreditColumns(
        credit_cols[0], credit_cols[1], credit_cols[2], credit_cols[3], out.total
    )
    touches = TouchWeightColumns(touch_cols[0], touch_cols[1], touch_cols[2], credits, touchpoints)
    return BatchAttribution(settings.model, credits, touches, scalar)


def _grouped(tp: TouchpointColumns, count: int) -> tuple[TouchpointColumns, I64 | None]:
    """The touchpoints grouped by conversion, and the input rows they come from (None: as
    they are)."""
    conv = tp.conversion
    if not len(conv):
        return tp, None
    if int(conv.min()) < 0 or int(conv.max()) >= count:
        raise ValueError(f"touchpoint conversion indexes must be in [0, {count})")
    if (conv[1:] >= conv[:-1]).all():
        return tp, None
    order = np.argsort(conv, kind="stable").astype(np.int64)
    return tp.take(order), order


def _merge(
    credit_cols: list[I64], touch_cols: list[I64], totals: I64, which: I64, more: _Scalar
) -> None:
    """`attribute`'s results in their conversions' places (in place of the lists' arrays)."""
    offset = len(credit_cols[0])
    added = (more.conversion, more.enrollment_id, more.points, more.amount)
    joined = [np.concatenate(pair) for pair in zip(credit_cols, added, strict=True)]
    order = np.argsort(joined[0], kind="stable")
    credit_cols[:] = [col[order] for col in joined]
    new_index = np.empty(len(order), dtype=np.int64)
    new_index[order] = np.arange(len(order), dtype=np.int64)
    credit = new_index[np.concatenate([touch_cols[0], more.credit + offset])]
    touch_order = np.argsort(credit, kind="stable")
    rows = np.concatenate([touch_cols[1], more.row])
    points = np.concatenate([touch_cols[2], more.touch_points])
    touch_cols[:] = [credit[touch_order], rows[touch_order], points[touch_order]]
    totals[which] = more.total
