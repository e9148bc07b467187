"""Pure rules of deal registration: one prospect under many spellings, checked registrations,
protection periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DomainError, DomainErrors, ErrorCode
from domain.tracking import deal_rules as rules
from domain.tracking.models import DealStatus

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    [
        "ACME, Inc.",
        "acme inc",
        "Acme",
        "  ACME   ",
        "Acmé Inc",
        "ACME Incorporated",
        "Acme Ltd.",
        "Acme GmbH",
        "Acme S.A.",
        "Acme, LLC",
        "Acme Co. Ltd",
        "Acme GmbH & Co. KG",
        "acme-",
    ],
)
def test_spellings_of_one_company_share_one_key(name: str) -> None:
    assert rules.company_key(name) == "acme"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("O'Neil & Sons, Ltd.", "oneil and sons"),
        ("Müller-Lüdenscheidt AG", "muller ludenscheidt"),
        ("Søren A/S", "soren"),
        ("Яндекс ООО", "яндекс ооо"),
        ("Co", "co"),
        ("Inc.", "inc"),
        ("Acme Brazil SA", "acme brazil"),
        ("Acme Inc Europe", "acme inc europe"),  # only trailing legal forms go
        ("!!!", ""),
    ],
)
def test_company_keys(name: str, key: str) -> None:
    assert rules.company_key(name) == key


def test_different_companies_keep_different_keys() -> None:
    assert rules.company_key("Acme") != rules.company_key("Acme Europe")
    assert rules.company_key("Globex") != rules.company_key("Globe X")


@given(st.text(max_size=300))
def test_the_key_of_a_key_is_itself(name: str) -> None:
    key = rules.company_key(name)
    assert rules.company_key(key) == key
    assert len(key) <= rules.NAME_MAX
    assert key == key.strip()
    assert "  " not in key


@given(
    st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,12}( [A-Za-z0-9]{1,8}){0,2}", fullmatch=True),
    st.sampled_from(sorted(rules.LEGAL_SUFFIXES - {"and"})),
    st.sampled_from(["", ",", ".", " "]),
)
def test_case_punctuation_and_a_legal_form_do_not_change_the_prospect(
    name: str, suffix: str, dot: str
) -> None:
    base = rules.company_key(name)
    assert rules.company_key(f"{name.upper()}{dot} {suffix.title()}.") == base
    assert rules.company_key(f"  {name.lower()}  ") == base


def test_a_valid_registration_is_normalized() -> None:
    checked = rules.check_registration(
        "  ACME, Inc. ", " Buyer@Acme.Example ", Decimal("10.5"), "EUR", " c-1 "
    )
    assert checked == rules.Registration("ACME, Inc.", "acme", "buyer@acme.example", 1050, "c-1")
    empty = rules.check_registration("Acme", "  ", None, "JPY", None)
    assert (empty.contact_email, empty.amount_minor, empty.customer_external_id) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        (("", None, None, "EUR", None), [["companyName"]]),
        (("...", None, None, "EUR", None), [["companyName"]]),
        (("A" * 201, None, None, "EUR", None), [["companyName"]]),
        (("Acme", "x@", None, "EUR", None), [["contactEmail"]]),
        (("Acme", None, Decimal("1.5"), "JPY", None), [["amount"]]),
        (("Acme", None, Decimal("-0.01"), "EUR", None), [["amount"]]),
        (("Acme", None, Decimal("NaN"), "EUR", None), [["amount"]]),
        (("Acme", None, None, "EUR", " "), [["customerId"]]),
        (
            ("", "x", Decimal("-1"), "EUR", ""),
            [["companyName"], ["contactEmail"], ["amount"], ["customerId"]],
        ),  # fmt: skip
    ],
)
def test_bad_registrations_are_refused_all_at_once(
    args: tuple[str, str | None, Decimal | None, str, str | None], fields: list[list[str]]
) -> None:
    with pytest.raises((DomainError, DomainErrors)) as caught:
        rules.check_registration(*args)
    errors = caught.value.errors if isinstance(caught.value, DomainErrors) else [caught.value]
    assert [e.field for e in errors] == fields
    assert {e.code for e in errors} == {ErrorCode.INVALID}


def test_zero_amounts_are_accepted() -> None:
    assert rules.check_registration("Acme", None, Decimal(0), "EUR", None).amount_minor == 0


def test_a_reason_is_required_and_bounded() -> None:
    assert rules.check_reason("  dup ") == "dup"
    for bad in ("", "   ", "x" * 501):
        with pytest.raises(DomainError):
            rules.check_reason(bad)


@pytest.mark.parametrize(
    ("status", "until", "protecting"),
    [
        (DealStatus.APPROVED, NOW + timedelta(seconds=1), True),
        (DealStatus.APPROVED, NOW, False),
        (DealStatus.APPROVED, NOW - timedelta(days=1), False),
        (DealStatus.APPROVED, None, False),
        (DealStatus.PENDING, NOW + timedelta(days=1), False),
        (DealStatus.REJECTED, NOW + timedelta(days=1), False),
    ],
)
def test_only_an_approved_deal_inside_its_period_protects(
    status: DealStatus, until: datetime | None, protecting: bool
) -> None:
    assert rules.is_protecting(status, until, NOW) is protecting


def test_protection_runs_the_programs_days_from_approval() -> None:
    assert rules.protected_until(NOW, 90) == NOW + timedelta(days=90)


def test_a_conflict_says_until_when_never_who() -> None:
    error = rules.owned_elsewhere(NOW)
    assert error.code is ErrorCode.CONFLICT
    assert NOW.isoformat() in error.message


@pytest.mark.parametrize("status", [DealStatus.APPROVED, DealStatus.REJECTED])
def test_decisions_are_final(status: DealStatus) -> None:
    rules.ensure_decidable(DealStatus.PENDING)
    with pytest.raises(DomainError) as caught:
        rules.ensure_decidable(status)
    assert caught.value.code is ErrorCode.CONFLICT
