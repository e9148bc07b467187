"""JWT access tokens (PyJWT, RFC 8725): HS256 pinned, typed, with a `kid` so keys rotate."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from domain.settings import Settings

ALGORITHM = "HS256"
ACCESS_TYP = "at+jwt"  # RFC 9068: a refresh token or another JWT can never pass as access
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]
LEEWAY_SECONDS = 10
VERIFIED_CACHE_SIZE = 10_000


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    kind: str
    partner_id: int | None
    email: str
    session: str


def _derive(secret: str) -> bytes:
    """A key for this purpose only, so the secret can sign other things without confusion."""
    return hmac.new(secret.encode(), b"partnergraph/jwt-access/v1", hashlib.sha256).digest()


def _kid(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:16]


class TokenService:
    """Mints and checks access tokens with the current key; old keys still verify."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.ttl = timedelta(seconds=settings.access_token_ttl_seconds)
        keys = [_derive(secret) for secret in settings.verification_keys]
        self._signing_key = keys[0]
        self._signing_kid = _kid(keys[0])
        self._keys = {_kid(key): key for key in keys}
        self._verified: dict[str, tuple[AccessClaims, float]] = {}

    def mint_access(
        self, *, user_id: int, kind: str, partner_id: int | None, email: str, session: str
    ) -> tuple[str, int]:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": str(user_id),
            "kind": kind,
            "email": email,
            "sid": session,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": secrets.token_hex(12),
        }
        if partner_id is not None:
            claims["pid"] = partner_id
        headers = {"kid": self._signing_kid, "typ": ACCESS_TYP}
        token = jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers=headers)
        return token, int(self.ttl.total_seconds())

    def decode_access(self, token: str) -> AccessClaims:
        """Verify an access token. A token verified before is answered from a bounded cache
        (its expiry still checked): verification costs more than the rest of a small query."""
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            claims, expires = cached
            if now < expires + LEEWAY_SECONDS:
                return claims
            del self._verified[token]
        claims, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (claims, expires)
        return claims

    def _verify(self, token: str) -> tuple[AccessClaims, float]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if header.get("typ") != ACCESS_TYP or key is None:
                raise InvalidToken("not an access token of this service")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": REQUIRED_CLAIMS},
            )
            partner = claims.get("pid")
            access = AccessClaims(
                user_id=int(claims["sub"]),
                kind=str(claims["kind"]),
                partner_id=int(partner) if partner is not None else None,
                email=str(claims["email"]),
                session=str(claims["sid"]),
            )
            return access, float(claims["exp"])
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None
