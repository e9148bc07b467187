"""From an `Authorization` header to a principal. A bad credential is refused, never ignored."""

from __future__ import annotations

import time

from api.principal import ANONYMOUS, Principal, PrincipalKind
from api.tokens import InvalidToken, TokenService
from domain.identity import rules as identity_rules
from domain.identity import services as identity


class AuthenticationFailed(Exception):
    """The credential is malformed, forged, expired or revoked: HTTP 401."""


class Authenticator:
    """Turns credentials into principals; one per application (it caches session checks)."""

    def __init__(self, tokens: TokenService, session_check_seconds: float = 30.0) -> None:
        self.tokens = tokens
        self.session_check_seconds = session_check_seconds
        self._live_sessions: dict[str, float] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if authorization is None:
            return ANONYMOUS
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise AuthenticationFailed("use 'Authorization: Bearer <token>'")
        if credential.startswith(identity_rules.TOKEN_PREFIX):
            return await self._api_token(credential)
        return await self._access_token(credential)

    async def _api_token(self, secret: str) -> Principal:
        token = await identity.authenticate_api_token(secret)
        if token is None:
            raise AuthenticationFailed("unknown, expired or revoked API token")
        return Principal(
            kind=PrincipalKind.APP,
            label=f"app:{token.name} ({token.prefix})",
            partner_id=token.partner_id,
            scopes=identity_rules.effective_scopes(token.scopes),
            token_id=token.id,
            user_id=token.created_by_id,
        )

    async def _access_token(self, token: str) -> Principal:
        try:
            claims = self.tokens.decode_access(token)
        except InvalidToken as exc:
            raise AuthenticationFailed(f"invalid access token: {exc}") from None
        if claims.kind not in (PrincipalKind.ADMIN, PrincipalKind.PARTNER):
            raise AuthenticationFailed("invalid access token: unknown kind")
        if claims.kind == PrincipalKind.PARTNER and claims.partner_id is None:
            raise AuthenticationFailed("invalid access token: no partner")
        if not await self._session_live(claims.session, claims.partner_id):
            raise AuthenticationFailed("the session was logged out, or its partner suspended")
        return Principal(
            kind=PrincipalKind(claims.kind),
            label=f"{claims.kind.lower()}:{claims.email}",
            user_id=claims.user_id,
            partner_id=claims.partner_id,
            email=claims.email,
        )

    async def _session_live(self, session: str, partner_id: int | None) -> bool:
        """Logout, a revoked session and a suspended partner end access tokens too: checked in
        the database at most once per `session_check_seconds` for each session."""
        now = time.monotonic()
        checked = self._live_sessions.get(session)
        if checked is not None and now - checked < self.session_check_seconds:
            return True
        if not await identity.session_is_live(session, partner_id):
            self._live_sessions.pop(session, None)
            return False
        if len(self._live_sessions) > 100_000:
            self._live_sessions.clear()
        self._live_sessions[session] = now
        return True

    def forget_session(self, session: str) -> None:
        self._live_sessions.pop(session, None)
