"""The verified-token cache never outlives a token's expiry."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest

from api.tokens import (
    ACCESS_TYP,
    ALGORITHM,
    LEEWAY_SECONDS,
    InvalidToken,
    TokenService,
    _derive,
    _kid,
)
from domain.settings import Settings


def _mint(settings: Settings, expires_in: float) -> str:
    key = _derive(settings.signing_key)
    now = time.time()
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "1",
        "kind": "ADMIN",
        "email": "a@example.com",
        "sid": "s",
        "iat": int(now) - 60,
        "nbf": int(now) - 60,
        "exp": now + expires_in,
        "jti": "j",
    }
    return jwt.encode(claims, key, ALGORITHM, headers={"kid": _kid(key), "typ": ACCESS_TYP})


async def test_a_cached_token_is_refused_once_it_expires(settings: Settings) -> None:
    service = TokenService(settings)
    # valid for 1.5 s more (PyJWT truncates exp to whole seconds: at least 0.5 s)
    token = _mint(settings, expires_in=1.5 - LEEWAY_SECONDS)
    assert service.decode_access(token).user_id == 1
    assert service.decode_access(token).user_id == 1  # from the cache
    await asyncio.sleep(1.7)
    with pytest.raises(InvalidToken):
        service.decode_access(token)


def test_a_token_never_verified_is_not_answered_from_the_cache(settings: Settings) -> None:
    service = TokenService(settings)
    good = _mint(settings, expires_in=300)
    service.decode_access(good)
    forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    with pytest.raises(InvalidToken):
        service.decode_access(forged)
