"""Benchmark: the attribution engines, one core, every rule-based model.

    taskset -c 0 python bench/attribution.py [--conversions 1000000] [--scalar 20000]
        [--runs 3] [--chunk 2048] [--seed 1] [--presorted]

Journeys of 1 to 20 touchpoints (random enrollments among 1000, roles, ages inside a 30-day
window, in no particular order), an amount of 12 345 minor units. The bar (issue 3): 1M
conversions in under 10 s for every model, on one core.

- batch: `domain.attribution.batch.attribute_batch` on `--conversions` conversions already in
  columns (numpy arrays, as the storage layer hands them over), best of `--runs`; the time of
  building those columns from Python objects is NOT included (it is measured apart, below).
  The engine sorts each journey itself; `--presorted` hands it the rows already ordered by
  (conversion, time, id), as a query with that ORDER BY returns them.
- scalar: `rules.attribute` conversion by conversion on `--scalar` conversions (Python
  objects), extrapolated to 1M.
- columns(): `batch.columns`, Python objects to columns, on the `--scalar` conversions,
  extrapolated to 1M.

Before timing, both engines' credits are compared on the `--scalar` conversions (every model):
the benchmark exits with status 2 on any difference. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from domain.attribution.batch import (  # noqa: E402
    DEFAULT_CHUNK,
    ConversionColumns,
    TouchpointColumns,
    attribute_batch,
    columns,
    micros,
)
from domain.attribution.rules import Conversion, ModelSettings, Touchpoint, attribute  # noqa: E402
from domain.programs.models import AttributionModelKind, FunnelRole  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AMOUNT = 12_345
BAR_SECONDS_PER_MILLION = 10.0
ROLE_WEIGHTS = {
    FunnelRole.SOURCE: Decimal("0.5"),
    FunnelRole.INFLUENCE: Decimal("0.2"),
    FunnelRole.CLOSE: Decimal("0.3"),
}


def journeys(count: int, seed: int) -> list[list[Touchpoint]]:
    """Python objects, for `attribute`."""
    rng = random.Random(seed)
    roles = list(FunnelRole)
    return [
        [
            Touchpoint(
                j,
                rng.randint(1, 1000),
                T0 - timedelta(days=rng.uniform(0, 29)),
                role=rng.choice(roles),
            )
            for j in range(rng.randint(1, 20))
        ]
        for _ in range(count)
    ]


def journey_columns(
    count: int, seed: int, presorted: bool
) -> tuple[TouchpointColumns, ConversionColumns]:
    """The same distribution, straight into columns (Python objects for 10M touchpoints would
    take minutes and gigabytes to make)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 21, count)
    rows = int(sizes.sum())
    conversion = np.repeat(np.arange(count, dtype=np.int64), sizes)
    ids = np.arange(rows, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    at = micros(T0) - np.round(rng.uniform(0, 29, rows) * 86_400e6).astype(np.int64)
    if presorted:  # by (conversion, time); ids follow the time order
        at = at[np.lexsort((at, conversion))]
    touchpoints = TouchpointColumns.of(
        conversion=conversion,
        id=ids,
        enrollment_id=rng.integers(1, 1001, rows),
        at=at,
        role=rng.integers(0, 3, rows),
    )
    conversions = ConversionColumns.of(
        at=np.full(count, micros(T0)), amount_minor=np.full(count, AMOUNT)
    )
    return touchpoints, conversions


def settings_for(model: AttributionModelKind) -> ModelSettings:
    return ModelSettings(model, role_weights=ROLE_WEIGHTS)


def same_credits(data: list[list[Touchpoint]], chunk: int) -> bool:
    touchpoints, conversions = columns(data, [Conversion(T0, AMOUNT)] * len(data))
    for model in AttributionModelKind:
        settings = settings_for(model)
        got = attribute_batch(touchpoints, conversions, settings, chunk=chunk).credit_lists()
        for path, credits in zip(data, got, strict=True):
            expected = attribute(path, Conversion(T0, AMOUNT), settings)
            if [(c.enrollment_id, c.share, c.amount_minor) for c in credits] != [
                (c.enrollment_id, c.share, c.amount_minor) for c in expected
            ] or [[t.weight for t in c.touchpoints] for c in credits] != [
                [t.weight for t in c.touchpoints] for c in expected
            ]:
                print(f"{model}: the batch engine differs from attribute()", file=sys.stderr)
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--conversions", type=int, default=1_000_000, help="for the batch engine")
    parser.add_argument("--scalar", type=int, default=20_000, help="for attribute()")
    parser.add_argument("--runs", type=int, default=3, help="batch runs per model (best)")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="conversions per chunk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--presorted", action="store_true", help="rows in journey order")
    args = parser.parse_args()

    data = journeys(args.scalar, args.seed)
    if not same_credits(data, args.chunk):
        sys.exit(2)
    start = time.perf_counter()
    columns(data, [Conversion(T0, AMOUNT)] * len(data))
    builder = (time.perf_counter() - start) / args.scalar * 1_000_000

    touchpoints, conversions = journey_columns(args.conversions, args.seed, args.presorted)
    python = sys.version.split()[0]
    order = "presorted by (conversion, time, id)" if args.presorted else "unsorted journeys"
    print(
        f"batch: {args.conversions} conversions, {len(touchpoints)} touchpoints ({order}), "
        f"columns ready, best of {args.runs}, chunks of {args.chunk}; scalar: {args.scalar} "
        f"conversions; Python {python}, numpy {np.__version__}; both engines agree"
    )
    print(
        f"{'model':16} {'batch 1M':>9} {'conv/s':>11} {'bar <10s':>8}   "
        f"{'scalar 1M':>9} {'conv/s':>8} {'speed-up':>8}"
    )
    for model in AttributionModelKind:
        settings = settings_for(model)
        best = float("inf")
        for _ in range(args.runs):
            start = time.perf_counter()
            result = attribute_batch(touchpoints, conversions, settings, chunk=args.chunk)
            best = min(best, time.perf_counter() - start)
            del result
        batch = best / args.conversions * 1_000_000
        start = time.perf_counter()
        for path in data:
            attribute(path, Conversion(T0, AMOUNT), settings)
        scalar = (time.perf_counter() - start) / args.scalar * 1_000_000
        verdict = "ok" if batch < BAR_SECONDS_PER_MILLION else "FAIL"
        print(
            f"{model:16} {batch:8.2f}s {1e6 / batch:11,.0f} {verdict:>8}   "
            f"{scalar:8.1f}s {1e6 / scalar:8,.0f} {scalar / batch:7.1f}x"
        )
    print(
        f"columns() from Python objects (not in the batch figures): {builder:.1f} s per 1M "
        f"conversions ({builder / 10.5:.2f} µs per touchpoint)"
    )


if __name__ == "__main__":
    main()
