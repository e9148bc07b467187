"""Open Badges 3.0 credentials over real HTTP: `GET /badges/{awardId}` as JSON-LD and as a
JWS (`Accept: application/vc+jwt`) that verifies with the key `/.well-known/jwks.json`
publishes under the header's `kid`; a tampered token fails; the partner is a salted e-mail hash,
never in clear; unknown and malformed award IDs answer 404. No credential is needed.

Awards are made with the ORM (what awarding writes), at a fixed instant.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from api.relay import to_global_id
from domain.actor import Actor
from domain.gamification.models import Badge, BadgeAward, BadgeMetric, SigningKey
from domain.partners import services as partners
from domain.programs import services as programs
from domain.settings import Settings

ADMIN = Actor("admin:ana@example.com")
AWARDED_AT = datetime(2026, 3, 2, 12, 30, 5, tzinfo=UTC)
EMAIL = "alpha.partner@example.com"
CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
VC_JWT = {"Accept": "application/vc+jwt"}


@dataclass
class Awarded:
    award_id: str  # the global ID
    url: str
    base: str


async def award(
    settings: Settings,
    *,
    image_url: str | None = "https://shop.example/badges/seller.png",
    description: str = "Sold for a thousand euros in a month.",
) -> Awarded:
    program = await programs.create_program(
        ADMIN,
        programs.ProgramSpec(name="Shop", currency="EUR", destination_url="https://shop.example"),
    )
    partner = await partners.create_partner(ADMIN, "Alpha Partner", EMAIL)
    enrollment = await partners.enroll_partner(ADMIN, program.pk, partner.pk, None, "ALPHA")
    badge = await Badge.create(
        program=program,
        code="seller",
        name="Top seller",
        description=description,
        image_url=image_url,
        metric=BadgeMetric.REVENUE,
        threshold=Decimal("1000"),
        period_days=30,
    )
    row = await BadgeAward.create(
        badge=badge, enrollment=enrollment, sequence=1, value="1020.00", awarded_at=AWARDED_AT
    )
    award_id = str(to_global_id("BadgeAward", row.pk))
    base = settings.public_url.rstrip("/")
    return Awarded(award_id, f"{base}/badges/{award_id}", base)


async def jwks(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return {key["kid"]: key for key in response.json()["keys"]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- JSON-LD --------------------------------------------------------------------------------


async def test_the_credential_is_an_open_badge_as_json_ld(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    awarded = await award(settings)
    response = await client.get(f"/badges/{awarded.award_id}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ld+json"
    assert response.headers["vary"] == "Accept"
    body = response.json()
    subject = body["credentialSubject"]
    identity = subject.pop("identifier")
    assert body == {
        "@context": CONTEXT,
        "id": awarded.url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Top seller",
        "issuer": {"id": awarded.base, "type": ["Profile"], "name": "Shop"},
        "validFrom": "2026-03-02T12:30:05Z",
        "awardedDate": "2026-03-02T12:30:05Z",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": subject["achievement"]["id"],
                "type": ["Achievement"],
                "name": "Top seller",
                "description": "Sold for a thousand euros in a month.",
                "criteria": {
                    "narrative": "Reach 1000.00 EUR of credited revenue (sales and renewals, "
                    "less refunds) within 30 days, as a partner of Shop."
                },
                "image": {"id": "https://shop.example/badges/seller.png", "type": "Image"},
            },
        },
    }
    assert subject["achievement"]["id"].startswith("urn:uuid:")
    assert len(identity) == 1
    salt = identity[0]["salt"]
    assert identity[0] == {
        "type": "IdentityObject",
        "identityHash": "sha256$" + hashlib.sha256((EMAIL + salt).encode()).hexdigest(),
        "identityType": "emailAddress",
        "hashed": True,
        "salt": salt,
    }
    assert len(salt) >= 16
    assert EMAIL not in response.text
    assert "Alpha Partner" not in response.text


async def test_the_credential_reads_the_same_every_time_and_needs_no_credential(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    awarded = await award(settings)
    first = await client.get(f"/badges/{awarded.award_id}")
    second = await client.get(f"/badges/{awarded.award_id}", headers={"Accept": "*/*"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()  # the salt is stable: the hash can be shown again


async def test_a_badge_without_image_or_description_describes_its_criteria(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    awarded = await award(settings, image_url=None, description="")
    achievement = (await client.get(f"/badges/{awarded.award_id}")).json()["credentialSubject"][
        "achievement"
    ]
    assert "image" not in achievement
    assert achievement["description"] == achievement["criteria"]["narrative"]


# --- JWS ------------------------------------------------------------------------------------


async def test_the_signed_credential_verifies_with_the_published_key(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    awarded = await award(settings)
    response = await client.get(f"/badges/{awarded.award_id}", headers=VC_JWT)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vc+jwt"
    token = response.text
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "vc+jwt", "kid": header["kid"]}
    keys = await jwks(client)
    jwk = keys[header["kid"]]
    assert {k: jwk[k] for k in ("kty", "use", "alg")} == {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
    }
    assert jwk["e"] == "AQAB"  # 65537
    assert len(unb64(jwk["n"])) == 256  # 2048 bits
    assert "d" not in jwk  # the public part only
    assert "p" not in jwk
    public_key = RSAAlgorithm.from_jwk(json.dumps(jwk))
    claims = jwt.decode(token, public_key, algorithms=["RS256"])  # type: ignore[arg-type]
    credential = (await client.get(f"/badges/{awarded.award_id}")).json()
    assert claims == {
        **credential,
        "iss": awarded.base,
        "jti": awarded.url,
        "nbf": int(AWARDED_AT.timestamp()),
    }


async def test_a_tampered_token_fails_verification(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    awarded = await award(settings)
    token = (await client.get(f"/badges/{awarded.award_id}", headers=VC_JWT)).text
    kid = jwt.get_unverified_header(token)["kid"]
    public_key = RSAAlgorithm.from_jwk(json.dumps((await jwks(client))[kid]))
    head, payload, signature = token.split(".")
    claims = json.loads(unb64(payload))
    claims["name"] = "Best seller ever"
    forged = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public_key, algorithms=["RS256"])  # type: ignore[arg-type]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(f"{head}.{payload}.{flipped}", public_key, algorithms=["RS256"])  # type: ignore[arg-type]
    assert jwt.decode(token, public_key, algorithms=["RS256"])["name"] == "Top seller"  # type: ignore[arg-type]


async def test_one_key_signs_every_credential_and_its_private_part_is_encrypted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    first, second = await award(settings), await award_in_another_program(settings)
    one = (await client.get(f"/badges/{first.award_id}", headers=VC_JWT)).text
    two = (await client.get(f"/badges/{second.award_id}", headers=VC_JWT)).text
    kids = {jwt.get_unverified_header(t)["kid"] for t in (one, two)}
    rows = await SigningKey.all()
    assert [row.kid for row in rows] == list(kids)
    assert len(rows) == 1
    assert list(await jwks(client)) == [rows[0].kid]
    assert rows[0].private_pem.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")


async def award_in_another_program(settings: Settings) -> Awarded:
    program = await programs.create_program(
        ADMIN,
        programs.ProgramSpec(name="Other", currency="USD", destination_url="https://o.example"),
    )
    partner = await partners.create_partner(ADMIN, "Beta", "beta@example.com")
    enrollment = await partners.enroll_partner(ADMIN, program.pk, partner.pk, None, "BETA")
    badge = await Badge.create(
        program=program, code="ten", name="Ten", metric=BadgeMetric.CONVERSIONS, threshold=10
    )
    row = await BadgeAward.create(
        badge=badge, enrollment=enrollment, value="10", awarded_at=AWARDED_AT
    )
    award_id = str(to_global_id("BadgeAward", row.pk))
    base = settings.public_url.rstrip("/")
    return Awarded(award_id, f"{base}/badges/{award_id}", base)


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/ld+json", "application/ld+json"),
        ("application/vc+jwt;q=0, application/ld+json", "application/ld+json"),
        ("application/ld+json, application/vc+jwt;q=0.5", "application/ld+json"),
        ("application/json;q=0.5, application/vc+jwt", "application/vc+jwt"),
        ("text/html, application/vc+jwt; q=0.9", "application/vc+jwt"),
    ],
)
async def test_the_accept_header_chooses_the_form(
    client: httpx.AsyncClient, settings: Settings, accept: str, media_type: str
) -> None:
    awarded = await award(settings)
    response = await client.get(f"/badges/{awarded.award_id}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type


# --- not found ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "award_id",
    [
        str(to_global_id("BadgeAward", 999_999)),  # no such award
        str(to_global_id("Program", 1)),  # another type's ID
        "not-an-id",
        "QmFkZ2VBd2FyZDp4",  # "BadgeAward:x"
    ],
)
@pytest.mark.parametrize("headers", [{}, VC_JWT])
async def test_an_unknown_or_malformed_award_answers_404(
    client: httpx.AsyncClient, settings: Settings, award_id: str, headers: dict[str, str]
) -> None:
    await award(settings)
    response = await client.get(f"/badges/{award_id}", headers=headers)
    assert response.status_code == 404
    assert response.json() == {"error": "no such badge award"}
