from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, DomainErrors, ErrorCollector
from domain.programs.models import AttributionModelKind, FunnelRole, RewardKind, TierMetric
from domain.programs.rules import (
    AttributionSettings,
    RewardOffer,
    TierSpec,
    ensure_attribution,
    ensure_http_url,
    ensure_reward,
    ensure_tier,
)


def _fields(check: object, *args: object) -> list[list[str] | None]:
    errors = ErrorCollector()
    check(errors, *args)  # type: ignore[operator]
    return [e.field for e in errors.errors]


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.example/pricing",
        "http://localhost:8000/x?y=1",
        "https://shop.example.co.uk/a/b#c",
    ],
)
def test_http_urls_with_a_host_are_accepted(url: str) -> None:
    assert _fields(ensure_http_url, url, ["destinationUrl"]) == []


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://acme.example/",
        "https://",
        "acme.example",
        "https://user:pw@acme.example/",
        "https://acme.example/ space",
        "https://acme.example/" + "a" * 2048,
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    assert _fields(ensure_http_url, url, ["destinationUrl"]) == [["destinationUrl"]]


@pytest.mark.parametrize("days", [0, 366, -1])
def test_lookback_outside_1_to_365_days_is_refused(days: int) -> None:
    settings = AttributionSettings(AttributionModelKind.LINEAR, lookback_days=days)
    assert _fields(ensure_attribution, settings) == [["attribution", "lookbackDays"]]


@pytest.mark.parametrize("half_life", [0.0, -1.0, float("inf"), float("nan")])
def test_half_life_must_be_positive_and_finite(half_life: float) -> None:
    settings = AttributionSettings(AttributionModelKind.TIME_DECAY, half_life_days=half_life)
    assert _fields(ensure_attribution, settings) == [["attribution", "halfLifeDays"]]


def test_position_weights_summing_over_one_are_refused() -> None:
    settings = AttributionSettings(
        AttributionModelKind.POSITION_BASED,
        first_weight=Decimal("0.6"),
        last_weight=Decimal("0.5"),
    )
    assert _fields(ensure_attribution, settings) == [["attribution", "lastWeight"]]


def test_position_weights_default_to_forty_forty() -> None:
    settings = AttributionSettings(AttributionModelKind.POSITION_BASED, first_weight=Decimal("0.7"))
    assert _fields(ensure_attribution, settings) == [["attribution", "lastWeight"]]
    ok = AttributionSettings(AttributionModelKind.POSITION_BASED, first_weight=Decimal("0.6"))
    assert _fields(ensure_attribution, ok) == []


def test_role_weighted_needs_role_weights() -> None:
    settings = AttributionSettings(AttributionModelKind.ROLE_WEIGHTED)
    assert _fields(ensure_attribution, settings) == [["attribution", "roleWeights"]]


@given(
    st.dictionaries(
        st.sampled_from(list(FunnelRole)),
        st.decimals(min_value=-1, max_value=2, places=3, allow_nan=False),
        min_size=1,
    )
)
def test_role_weights_are_accepted_exactly_when_in_range_and_summing_to_at_most_one(
    weights: dict[FunnelRole, Decimal],
) -> None:
    settings = AttributionSettings(AttributionModelKind.ROLE_WEIGHTED, role_weights=weights)
    valid = all(0 <= w <= 1 for w in weights.values()) and sum(weights.values()) <= 1
    assert (_fields(ensure_attribution, settings) == []) == valid


@pytest.mark.parametrize(
    ("weight", "ok"),
    [("0.4", True), ("0.40000", True), ("0.1234", True), ("0.12345", False), ("1E-5", False)],
)
def test_weights_have_at_most_four_decimal_places(weight: str, ok: bool) -> None:
    """As stored; role weights of 30 digits would also overflow the engine's integers."""
    for settings in (
        AttributionSettings(AttributionModelKind.POSITION_BASED, first_weight=Decimal(weight)),
        AttributionSettings(
            AttributionModelKind.ROLE_WEIGHTED, role_weights={FunnelRole.CLOSE: Decimal(weight)}
        ),
    ):
        assert (_fields(ensure_attribution, settings) == []) == ok


@pytest.mark.parametrize(
    ("offer", "ok"),
    [
        (RewardOffer(RewardKind.PERCENT_DISCOUNT, Decimal("20")), True),
        (RewardOffer(RewardKind.PERCENT_DISCOUNT, Decimal("100.5")), False),
        (RewardOffer(RewardKind.FLAT_CREDIT, Decimal("10.00")), True),
        (RewardOffer(RewardKind.FLAT_CREDIT, Decimal("10.001")), False),
        (RewardOffer(RewardKind.FLAT_CREDIT, Decimal("0")), False),
    ],
)
def test_referee_reward_offers(offer: RewardOffer, ok: bool) -> None:
    fields = _fields(ensure_reward, offer, "EUR")
    assert fields == ([] if ok else [["refereeReward", "value"]])


def test_tier_metric_and_threshold_go_together() -> None:
    spec = TierSpec(name="Gold", rank=3, qualify_metric=TierMetric.REVENUE)
    assert _fields(ensure_tier, spec) == [["qualifyThreshold"]]


def test_collector_raises_one_error_alone_and_several_together() -> None:
    errors = ErrorCollector(prefix=["input"])
    errors.invalid(["a"], "bad a")
    with pytest.raises(DomainError) as one:
        errors.raise_if_any()
    assert one.value.field == ["input", "a"]
    errors.invalid(["b"], "bad b")
    with pytest.raises(DomainErrors) as many:
        errors.raise_if_any()
    assert [e.field for e in many.value.errors] == [["input", "a"], ["input", "b"]]
