"""Pure rules of identity: scopes, token formats, password policy, e-mail shape."""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

# Scopes an APP token can carry. A write scope includes the read of the same things.
SCOPES: dict[str, str] = {
    "programs:read": "read programs and tiers",
    "programs:write": "create and change programs, tiers and rules",
    "partners:read": "read partners and enrollments",
    "partners:write": "create partners and enroll them",
    "tracking:write": "identify customers, record touchpoints, conversions and refunds",
    "reports:read": "read program reports and exports",
}
IMPLIED: dict[str, frozenset[str]] = {
    "programs:write": frozenset({"programs:read"}),
    "partners:write": frozenset({"partners:read"}),
}
# A token made by a partner acts for that partner with at most partner rights: reads only.
PARTNER_TOKEN_SCOPES = frozenset({"programs:read", "partners:read", "reports:read"})

TOKEN_PREFIX = "pgt_"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_BYTES = 32
_SECRET_CHARS = 43  # 32 bytes in base62, zero-padded
_CHECKSUM_CHARS = 6
_TOKEN_RE = re.compile(rf"^pgt_[0-9A-Za-z]{{{_SECRET_CHARS + _CHECKSUM_CHARS}}}$")
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def effective_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes granted, plus the ones each implies."""
    granted = set(scopes)
    for scope in list(granted):
        granted |= IMPLIED.get(scope, frozenset())
    return frozenset(granted)


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(set(scopes) - SCOPES.keys())


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, rest = divmod(number, 62)
        chars.append(_BASE62[rest])
    return "".join(reversed(chars)).rjust(width, "0")


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_CHARS)


@dataclass(frozen=True)
class NewApiToken:
    secret: str  # shown once
    token_hash: str
    prefix: str
    last4: str


def new_api_token() -> NewApiToken:
    """`pgt_` + 32 random bytes in base62 + a CRC32 checksum, so scanners can spot leaks."""
    body = _base62(int.from_bytes(secrets.token_bytes(_SECRET_BYTES), "big"), _SECRET_CHARS)
    secret = TOKEN_PREFIX + body + _checksum(body)
    return NewApiToken(
        secret=secret, token_hash=hash_secret(secret), prefix=secret[:10], last4=secret[-4:]
    )


def looks_like_api_token(secret: str) -> bool:
    """Format and checksum check: refuses typos and forgeries without a database read."""
    if not _TOKEN_RE.fullmatch(secret):  # `$` alone would let a trailing newline in
        return False
    body = secret[len(TOKEN_PREFIX) : -_CHECKSUM_CHARS]
    return secrets.compare_digest(_checksum(body), secret[-_CHECKSUM_CHARS:])


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (API or refresh token): enough, since it is random."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_secret() -> str:
    return secrets.token_urlsafe(32)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def is_email(email: str) -> bool:
    return len(email) <= 254 and _EMAIL_RE.fullmatch(email) is not None


def password_problem(password: str) -> str | None:
    """Why a password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"use at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"use at most {MAX_PASSWORD_LENGTH} characters"
    return None
