"""The pure rules of ingestion: validation, the conversion fingerprint, refunds, touchpoint
repeats. Hypothesis for the invariants (a fingerprint ignores only what does not change the
meaning; refunds never exceed the amount)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, ErrorCode, ErrorCollector
from domain.tracking import ingest_rules as rules
from domain.tracking.models import ConversionKind, ConversionStatus, TouchpointKind

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def spec(**fields: object) -> rules.ConversionSpec:
    values: dict[str, object] = {
        "external_id": "o-1",
        "kind": ConversionKind.SALE,
        "amount": Decimal("12.50"),
        "currency": "EUR",
    }
    values.update(fields)
    return rules.ConversionSpec(**values)  # type: ignore[arg-type]


def problems(s: rules.ConversionSpec, currency: str = "EUR") -> list[tuple[list[str], str]]:
    errors = ErrorCollector()
    rules.validate_conversion(errors, s, currency, NOW)
    return [(e.field or [], e.code) for e in errors.errors]


def test_a_valid_conversion_answers_its_minor_units() -> None:
    assert rules.validate_conversion(ErrorCollector(), spec(), "EUR", NOW) == 1250
    jpy = spec(amount=Decimal("1200"), currency="JPY")
    assert rules.validate_conversion(ErrorCollector(), jpy, "JPY", NOW) == 1200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount": Decimal("1.001")}, "amount"),
        ({"amount": Decimal("-1")}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"currency": "XXX"}, "currency"),
        ({"external_id": ""}, "externalId"),
        ({"external_id": "   "}, "externalId"),
        ({"external_id": "x" * 201}, "externalId"),
        ({"occurred_at": NOW + timedelta(minutes=6)}, "occurredAt"),
        ({"identity": rules.Identity(visitor_id="v" * 65)}, "visitorId"),
        ({"identity": rules.Identity(customer_id="")}, "customerId"),
    ],
)
def test_bad_conversions_are_refused_on_their_field(fields: dict[str, object], field: str) -> None:
    assert problems(spec(**fields)) == [([field], ErrorCode.INVALID)]


def test_a_little_clock_skew_is_allowed() -> None:
    assert problems(spec(occurred_at=NOW + rules.CLOCK_SKEW)) == []


amounts = st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False)
ids = st.text(min_size=1, max_size=30).filter(str.strip)


@given(amounts, ids, st.integers(min_value=-14, max_value=14))
def test_a_fingerprint_ignores_only_notation(amount: Decimal, external_id: str, hours: int) -> None:
    """Trailing zeros, the case of a code and the offset of an instant mean the same input."""
    at = NOW - timedelta(days=1)
    shifted = at.astimezone(timezone(timedelta(hours=hours)))
    one = spec(
        external_id=external_id,
        amount=amount,
        occurred_at=at,
        identity=rules.Identity(referral_code="Anna10"),
    )
    two = spec(
        external_id=external_id,
        amount=amount.quantize(Decimal("0.0001")),
        occurred_at=shifted,
        identity=rules.Identity(referral_code="ANNA10"),
    )
    minor = int(amount * 100)
    assert rules.conversion_fingerprint(one, minor) == rules.conversion_fingerprint(two, minor)


@given(amounts, amounts)
def test_a_fingerprint_changes_with_the_amount(one: Decimal, two: Decimal) -> None:
    a, b = int(one * 100), int(two * 100)
    same = rules.conversion_fingerprint(spec(), a) == rules.conversion_fingerprint(spec(), b)
    assert same == (a == b)


def test_a_fingerprint_changes_with_every_field() -> None:
    base = rules.conversion_fingerprint(spec(), 1250)
    others = [
        spec(external_id="o-2"),
        spec(kind=ConversionKind.RENEWAL),
        spec(occurred_at=NOW),
        spec(identity=rules.Identity(customer_id="c")),
        spec(identity=rules.Identity(click_id="c")),
        spec(identity=rules.Identity(visitor_id="c")),
        spec(identity=rules.Identity(referral_code="c")),
    ]
    prints = {rules.conversion_fingerprint(s, 1250) for s in others}
    assert base not in prints
    assert len(prints) == len(others)


@given(st.integers(min_value=1, max_value=10**12), st.lists(st.integers(0, 10**12), max_size=8))
def test_refunds_never_exceed_the_amount(amount: int, asked: list[int]) -> None:
    refunded = 0
    for value in asked:
        if value <= 0 or value > amount - refunded:
            with pytest.raises(DomainError) as raised:
                rules.refund(amount, refunded, value)
            assert raised.value.code is ErrorCode.INVALID
            continue
        outcome = rules.refund(amount, refunded, value)
        assert outcome.refund_minor == value
        refunded = outcome.refunded_minor
        expected = (
            ConversionStatus.REFUNDED if refunded == amount else ConversionStatus.PARTIALLY_REFUNDED
        )
        assert outcome.status is expected
    assert 0 <= refunded <= amount


def test_a_full_refund_takes_what_is_left_and_then_nothing_is() -> None:
    outcome = rules.refund(10_000, 3_000, None)
    assert (outcome.refund_minor, outcome.refunded_minor) == (7_000, 10_000)
    assert outcome.status is ConversionStatus.REFUNDED
    with pytest.raises(DomainError) as raised:
        rules.refund(10_000, 10_000, None)
    assert raised.value.field == ["externalId"]


def touch(**fields: object) -> rules.TouchpointSpec:
    values: dict[str, object] = {
        "kind": TouchpointKind.LEAD,
        "enrollment_id": 1,
        "customer_id": "c",
    }
    values.update(fields)
    return rules.TouchpointSpec(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": TouchpointKind.CLICK}, "kind"),
        ({"referral_code": "x"}, "enrollmentId"),
        ({"enrollment_id": None}, "enrollmentId"),
        ({"customer_id": None}, "customerId"),
        ({"external_id": ""}, "externalId"),
        ({"occurred_at": NOW + timedelta(hours=1)}, "occurredAt"),
    ],
)
def test_bad_touchpoints_are_refused(fields: dict[str, object], field: str) -> None:
    errors = ErrorCollector()
    rules.validate_touchpoint(errors, touch(**fields), NOW)
    assert [e.field for e in errors.errors] == [[field]]


def test_recordable_kinds_are_all_but_clicks() -> None:
    assert {TouchpointKind.CLICK} | rules.RECORDABLE_KINDS == set(TouchpointKind)
    assert TouchpointKind.CLICK not in rules.RECORDABLE_KINDS


@given(st.integers(0, 10**15), st.none() | st.integers(0, 10**15))
def test_a_touchpoint_repeat_without_an_instant_matches_any(stored: int, asked: int | None) -> None:
    first = rules.TouchpointFacts(TouchpointKind.LEAD, 1, None, "c", None, stored)
    again = rules.TouchpointFacts(TouchpointKind.LEAD, 1, None, "c", None, asked)
    assert rules.same_touchpoint(first, again) == (asked is None or asked == stored)
    other = rules.TouchpointFacts(TouchpointKind.DEAL, 1, None, "c", None, asked)
    assert not rules.same_touchpoint(first, other)


def test_identify_lower_cases_the_email_and_refuses_a_bad_one() -> None:
    errors = ErrorCollector()
    email = rules.validate_identify(errors, rules.IdentifySpec("c", email=" Ana@Shop.Example "))
    assert (email, errors.errors) == ("ana@shop.example", [])
    rules.validate_identify(errors, rules.IdentifySpec("", email="nope"))
    assert [e.field for e in errors.errors] == [["customerId"], ["email"]]
