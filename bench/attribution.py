"""Benchmark: the pure attribution engine, one core, every rule-based model.

    python bench/attribution.py [--conversions 100000] [--seed 1]

Journeys of 1 to 20 touchpoints (random enrollments, roles and ages inside a 30-day window).
Prints conversions per second per model and the time 1M conversions would take; the bar
(issue 3) is 1M in under 10 s for every model. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(BENCH_DIR.parent))

from domain.attribution.rules import Conversion, ModelSettings, Touchpoint, attribute  # noqa: E402
from domain.programs.models import AttributionModelKind, FunnelRole  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)
BAR_SECONDS_PER_MILLION = 10.0
ROLE_WEIGHTS = {
    FunnelRole.SOURCE: Decimal("0.5"),
    FunnelRole.INFLUENCE: Decimal("0.2"),
    FunnelRole.CLOSE: Decimal("0.3"),
}


def journeys(count: int, seed: int) -> list[list[Touchpoint]]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversions", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data = journeys(args.conversions, args.seed)
    python = sys.version.split()[0]
    print(f"{args.conversions} conversions, journeys of 1-20 touchpoints, Python {python}")
    print(f"{'model':16} {'conv/s':>10} {'1M takes':>10}   bar < {BAR_SECONDS_PER_MILLION:.0f} s")
    for model in AttributionModelKind:
        settings = ModelSettings(model, role_weights=ROLE_WEIGHTS)
        start = time.perf_counter()
        for path in data:
            attribute(path, Conversion(T0, 12_345), settings)
        rate = args.conversions / (time.perf_counter() - start)
        million = 1_000_000 / rate
        verdict = "ok" if million < BAR_SECONDS_PER_MILLION else "FAIL"
        print(f"{model:16} {rate:10.0f} {million:9.1f}s   {verdict}")


if __name__ == "__main__":
    main()
