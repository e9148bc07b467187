"""Badge credentials in the domain: the criteria in words for every metric, the salted e-mail
hash, and the signing keys (made once, shared, the oldest used when two are made at once,
encrypted with the service's secret, a retired secret's key published but no longer used)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization

from domain.gamification import credentials
from domain.gamification.credentials import AwardFacts
from domain.gamification.models import BadgeMetric, SigningKey

SECRET = "current-secret-0123456789-abcdefghijklmnop"
RETIRED = "retired-secret-0123456789-abcdefghijklmnop"
FACTS = AwardFacts(
    award_id=7,
    awarded_at=datetime(2026, 3, 2, 12, tzinfo=UTC),
    badge_id=3,
    badge_name="Closer",
    badge_description="",
    image_url=None,
    metric=BadgeMetric.CONVERSIONS,
    threshold=Decimal("10.0000"),
    period_days=None,
    repeating=False,
    program_name="Shop",
    currency="EUR",
    partner_email="ana@example.com",
)


@pytest.mark.parametrize(
    ("metric", "threshold", "currency", "words"),
    [
        (BadgeMetric.CLICKS, "100", "EUR", "100 counted clicks on its referral links"),
        (BadgeMetric.LEADS, "5", "EUR", "5 credited leads"),
        (BadgeMetric.CONVERSIONS, "10.0000", "EUR", "10 credited conversions"),
        (
            BadgeMetric.REVENUE,
            "1500.5",
            "EUR",
            "1500.50 EUR of credited revenue (sales and renewals, less refunds)",
        ),
        (
            BadgeMetric.REVENUE,
            "20000",
            "JPY",
            "20000 JPY of credited revenue (sales and renewals, less refunds)",
        ),
        (BadgeMetric.REFERRED_CUSTOMERS, "3", "EUR", "3 referred customers with a credited sale"),
        (BadgeMetric.POINTS, "2500", "EUR", "2500 points"),
        (
            BadgeMetric.ACTIVE_MONTHS_STREAK,
            "6",
            "EUR",
            "6 calendar months in a row with a credited conversion",
        ),
    ],
)
def test_the_criteria_say_the_metric_and_threshold_in_words(
    metric: BadgeMetric, threshold: str, currency: str, words: str
) -> None:
    facts = replace(FACTS, metric=metric, threshold=Decimal(threshold), currency=currency)
    assert credentials.criteria_narrative(facts) == f"Reach {words}, as a partner of Shop."


def test_a_period_and_a_milestone_are_in_the_criteria() -> None:
    facts = replace(FACTS, period_days=30, repeating=True)
    assert credentials.criteria_narrative(facts) == (
        "Reach 10 credited conversions within 30 days, again at every multiple of it "
        "(a milestone), as a partner of Shop."
    )


def test_the_identity_hash_is_sha256_of_the_email_and_salt() -> None:
    salt = credentials.identity_salt(SECRET, 7)
    expected = hashlib.sha256(("ana@example.com" + salt).encode()).hexdigest()
    assert credentials.identity_hash("ana@example.com", salt) == "sha256$" + expected
    assert salt == credentials.identity_salt(SECRET, 7)  # stable
    assert salt != credentials.identity_salt(SECRET, 8)  # one per award
    assert salt != credentials.identity_salt(RETIRED, 7)  # not guessable without the secret


def test_an_achievement_id_is_one_uri_per_badge() -> None:
    one = credentials.achievement_id("https://pg.example", 3)
    assert one == credentials.achievement_id("https://pg.example", 3)
    assert one != credentials.achievement_id("https://pg.example", 4)
    assert one.startswith("urn:uuid:")


async def test_a_key_is_made_once_then_reused() -> None:
    first = await credentials.signing_key([SECRET])
    second = await credentials.signing_key([SECRET])
    assert first.kid == second.kid
    assert await SigningKey.all().count() == 1
    assert first.private_key.key_size == 2048


async def test_the_stored_private_key_opens_only_with_the_services_secret() -> None:
    made = await credentials.signing_key([SECRET])
    row = await SigningKey.get(kid=made.kid)
    assert row.private_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # encrypted: a password is needed
        serialization.load_pem_private_key(row.private_pem.encode(), None)
    with pytest.raises(ValueError, match="password"):
        serialization.load_pem_private_key(row.private_pem.encode(), SECRET.encode())
    assert row.public_jwk == credentials.public_jwk(made.private_key.public_key())
    assert row.public_jwk["kid"] == made.kid


async def test_keys_made_at_once_settle_on_the_oldest() -> None:
    made = await asyncio.gather(*(credentials.signing_key([SECRET]) for _ in range(3)))
    oldest = await SigningKey.all().order_by("id").first()
    assert oldest is not None
    assert {m.kid for m in made} == {oldest.kid}
    published = await credentials.published_keys([SECRET])
    assert published[0]["kid"] == oldest.kid


async def test_a_retired_secret_still_signs_until_dropped_and_its_key_stays_published() -> None:
    old = await credentials.signing_key([RETIRED])
    rotated = await credentials.signing_key([SECRET, RETIRED])  # the old secret still opens it
    assert rotated.kid == old.kid
    new = await credentials.signing_key([SECRET])  # the old secret dropped: a new key
    assert new.kid != old.kid
    assert [k["kid"] for k in await credentials.published_keys([SECRET])] == [old.kid, new.kid]
    again = await credentials.signing_key([SECRET, RETIRED])
    assert again.kid == old.kid  # the oldest key the secrets open


async def test_published_keys_make_the_first_key_when_there_is_none() -> None:
    keys = await credentials.published_keys([SECRET])
    assert len(keys) == 1
    assert set(keys[0]) == {"kty", "n", "e", "kid", "use", "alg"}
    assert (await credentials.signing_key([SECRET])).kid == keys[0]["kid"]
