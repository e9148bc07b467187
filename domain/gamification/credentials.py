"""Badge awards as Open Badges 3.0 credentials, and the keys that sign them.

An award answers as an `OpenBadgeCredential` (JSON-LD, the VC 2.0 and OB 3.0.3 contexts):
the program is the issuer (a Profile whose id is the service's public URL, named after the
program), `validFrom` is when the badge was awarded, and the achievement is the badge (its
criteria in words, its image when it has one).

The partner is named by a salted hash of its e-mail address (an OB 3.0 IdentityObject,
`identityHash` "sha256$" + hex(SHA-256(email + salt))), never in clear and never by name:
award IDs are easy to enumerate and anyone may fetch a credential, so clear names would list a
program's partners to the world. A partner proves the badge is its own by showing the e-mail
address the hash was made from. The salt is derived from the service's secret and the award,
so a credential reads the same on every request.

Signing keys (RS256, 2048-bit RSA) are made on first need and kept in `signing_keys`, the
private part as PKCS #8 PEM encrypted with a password derived from the service's secret key:
every worker of the service reads the same key. Two workers making a key at once both keep
theirs, and both then sign with the oldest key their secrets open; a key no configured secret
opens any longer (a retired secret) stops signing but stays published, so what it signed still
verifies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from domain.gamification.models import BadgeAward, BadgeMetric, SigningKey
from domain.money import minor_units

CONTEXT = [
    "https://www.w3.org/ns/credentials/v2",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
]
ALGORITHM = "RS256"
KEY_BITS = 2048
_PURPOSE_KEY = b"partnergraph/badge-signing-key/v1"
_PURPOSE_SALT = b"partnergraph/badge-identity-salt/v1"

_WHAT = {
    BadgeMetric.CLICKS: "{n} counted clicks on its referral links",
    BadgeMetric.LEADS: "{n} credited leads",
    BadgeMetric.CONVERSIONS: "{n} credited conversions",
    BadgeMetric.REVENUE: "{n} of credited revenue (sales and renewals, less refunds)",
    BadgeMetric.REFERRED_CUSTOMERS: "{n} referred customers with a credited sale",
    BadgeMetric.POINTS: "{n} points",
    BadgeMetric.ACTIVE_MONTHS_STREAK: "{n} calendar months in a row with a credited conversion",
}


# --- the credential (pure) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwardFacts:
    """What a credential states about one award."""

    award_id: int
    awarded_at: datetime
    badge_id: int
    badge_name: str
    badge_description: str
    image_url: str | None
    metric: BadgeMetric
    threshold: Decimal
    period_days: int | None
    repeating: bool
    program_name: str
    currency: str
    partner_email: str


def criteria_narrative(facts: AwardFacts) -> str:
    """The badge's rule in words: "Reach 10 credited conversions within 30 days."."""
    if facts.metric is BadgeMetric.REVENUE:
        places = Decimal(1).scaleb(-minor_units(facts.currency))
        number = f"{facts.threshold.quantize(places)} {facts.currency}"
    else:
        number = format(facts.threshold.normalize(), "f")
    text = "Reach " + _WHAT[facts.metric].format(n=number)
    if facts.period_days is not None:
        text += f" within {facts.period_days} days"
    if facts.repeating:
        text += ", again at every multiple of it (a milestone)"
    return text + f", as a partner of {facts.program_name}."


def identity_salt(secret: str, award_id: int) -> str:
    return hmac.new(
        secret.encode(), _PURPOSE_SALT + b":" + str(award_id).encode(), hashlib.sha256
    ).hexdigest()[:32]


def identity_hash(email: str, salt: str) -> str:
    """OB 3.0's IdentityHash: "sha256$" and the hex SHA-256 of the value and its salt."""
    return "sha256$" + hashlib.sha256((email + salt).encode()).hexdigest()


def achievement_id(issuer_url: str, badge_id: int) -> str:
    """A stable URI for a badge (a name, not a page): the same in every award of it."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer_url}#badge-{badge_id}"))


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_credential(facts: AwardFacts, url: str, issuer_url: str, salt: str) -> dict[str, Any]:
    """The award as an OpenBadgeCredential whose id is `url`, issued by `issuer_url`."""
    narrative = criteria_narrative(facts)
    achievement: dict[str, Any] = {
        "id": achievement_id(issuer_url, facts.badge_id),
        "type": ["Achievement"],
        "name": facts.badge_name,
        "description": facts.badge_description or narrative,
        "criteria": {"narrative": narrative},
    }
    if facts.image_url:
        achievement["image"] = {"id": facts.image_url, "type": "Image"}
    return {
        "@context": list(CONTEXT),
        "id": url,
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": facts.badge_name,
        "issuer": {"id": issuer_url, "type": ["Profile"], "name": facts.program_name},
        "validFrom": _instant(facts.awarded_at),
        "awardedDate": _instant(facts.awarded_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "identityHash": identity_hash(facts.partner_email, salt),
                    "identityType": "emailAddress",
                    "hashed": True,
                    "salt": salt,
                }
            ],
            "achievement": achievement,
        },
    }


def jwt_claims(credential: dict[str, Any], awarded_at: datetime) -> dict[str, Any]:
    """The JWT claims set of a credential (VC-JOSE: the credential itself), with the
    registered claims OB 3.0's JWT proof maps from it: iss, jti and nbf."""
    return {
        **credential,
        "iss": credential["issuer"]["id"],
        "jti": credential["id"],
        "nbf": int(awarded_at.timestamp()),
    }


async def award_facts(award_id: int) -> AwardFacts | None:
    """What a credential states about an award; None when there is no such award."""
    award = (
        await BadgeAward.filter(id=award_id)
        .select_related("badge__program", "enrollment__partner")
        .first()
    )
    if award is None:
        return None
    badge, program = award.badge, award.badge.program
    return AwardFacts(
        award_id=award.pk,
        awarded_at=award.awarded_at,
        badge_id=badge.pk,
        badge_name=badge.name,
        badge_description=badge.description,
        image_url=badge.image_url,
        metric=BadgeMetric(badge.metric),
        threshold=Decimal(badge.threshold),
        period_days=badge.period_days,
        repeating=badge.repeating,
        program_name=program.name,
        currency=program.currency,
        partner_email=award.enrollment.partner.email,
    )


# --- signing keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningMaterial:
    kid: str
    private_key: rsa.RSAPrivateKey


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def public_jwk(key: rsa.RSAPublicKey) -> dict[str, str]:
    """The public key as a JWK, its `kid` the RFC 7638 thumbprint."""
    numbers = key.public_numbers()
    n, e = _b64(numbers.n), _b64(numbers.e)
    canonical = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode()
    return {"kty": "RSA", "n": n, "e": e, "kid": kid.rstrip("="), "use": "sig", "alg": ALGORITHM}


def _password(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE_KEY, hashlib.sha256).hexdigest().encode()


# Opened keys by (kid, encrypted PEM, password): a PEM is decrypted once per process.
_opened: dict[tuple[str, str, bytes], rsa.RSAPrivateKey | None] = {}


def _open(row: SigningKey, secrets: Sequence[str]) -> rsa.RSAPrivateKey | None:
    for secret in secrets:
        cache_key = (row.kid, row.private_pem, _password(secret))
        if cache_key not in _opened:
            try:
                key = serialization.load_pem_private_key(row.private_pem.encode(), cache_key[2])
            except ValueError:
                key = None
            _opened[cache_key] = key if isinstance(key, rsa.RSAPrivateKey) else None
        found = _opened[cache_key]
        if found is not None:
            return found
    return None


async def _oldest_open(secrets: Sequence[str]) -> SigningMaterial | None:
    for row in await SigningKey.all().order_by("id"):
        key = await asyncio.to_thread(_open, row, secrets)
        if key is not None:
            return SigningMaterial(row.kid, key)
    return None


def _new_key(secret: str) -> tuple[str, str, dict[str, str]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_password(secret)),
    ).decode()
    jwk = public_jwk(key.public_key())
    return jwk["kid"], pem, jwk


async def signing_key(secrets: Sequence[str]) -> SigningMaterial:
    """The key that signs: the oldest one the service's secrets open (the first secret is the
    current one, the others retired but still accepted); made and stored on first need."""
    found = await _oldest_open(secrets)
    if found is not None:
        return found
    kid, pem, jwk = await asyncio.to_thread(_new_key, secrets[0])
    await SigningKey.create(kid=kid, private_pem=pem, public_jwk=jwk)
    found = await _oldest_open(secrets)  # another worker's, if it made one first
    assert found is not None  # ours at least opens
    return found


async def published_keys(secrets: Sequence[str]) -> list[dict[str, str]]:
    """Every public key, oldest first (a key is made first if there is none): what verifies
    the credentials signed now and before."""
    if not await SigningKey.all().exists():
        await signing_key(secrets)
    return [dict(row.public_jwk) for row in await SigningKey.all().order_by("id")]
