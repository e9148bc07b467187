"""`/auth/login`, `/auth/refresh`, `/auth/logout`: sessions with rotating refresh tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.authn import Authenticator
from api.tokens import TokenService
from domain.identity import services as identity
from domain.identity.errors import InvalidCredentials, TooManyAttempts
from domain.identity.services import LoginPolicy, Session
from domain.settings import Settings
from portal.http import BadRequest, error_response, json_response, read_json_object

AUTH_BODY_LIMIT = 16 * 1024


def _string(body: dict[str, Any], name: str, limit: int = 1024) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadRequest(400, f"'{name}' must be a non-empty string")
    return value


class AuthRoutes:
    def __init__(self, settings: Settings, tokens: TokenService, authenticator: Authenticator):
        self.tokens = tokens
        self.authenticator = authenticator
        self.policy = LoginPolicy(
            window=timedelta(seconds=settings.login_window_seconds),
            max_per_account=settings.login_max_failures_per_account,
            max_per_ip=settings.login_max_failures_per_ip,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        )

    def routes(self) -> list[Route]:
        return [
            Route("/auth/login", self.login, methods=["POST"]),
            Route("/auth/refresh", self.refresh, methods=["POST"]),
            Route("/auth/logout", self.logout, methods=["POST"]),
        ]

    def _tokens(self, session: Session) -> Response:
        user = session.user
        access, expires_in = self.tokens.mint_access(
            user_id=user.id,
            kind=str(user.kind),
            partner_id=user.partner_id,
            email=user.email,
            session=session.family,
        )
        return json_response(
            {
                "access_token": access,
                "refresh_token": session.refresh_token,
                "token_type": "bearer",
                "expires_in": expires_in,
            }
        )

    async def login(self, request: Request) -> Response:
        try:
            body = await read_json_object(request, AUTH_BODY_LIMIT)
            email, password = _string(body, "email", 254), _string(body, "password")
            ip = request.client.host if request.client else "unknown"
            session = await identity.login(email, password, ip, self.policy)
        except BadRequest as exc:
            return error_response(exc)
        except InvalidCredentials:
            return json_response({"error": "invalid e-mail or password"}, 401)
        except TooManyAttempts as exc:
            return json_response({"error": str(exc)}, 429, **{"Retry-After": str(exc.retry_after)})
        return self._tokens(session)

    async def refresh(self, request: Request) -> Response:
        try:
            body = await read_json_object(request, AUTH_BODY_LIMIT)
            session = await identity.refresh(_string(body, "refresh_token"), self.policy)
        except BadRequest as exc:
            return error_response(exc)
        except InvalidCredentials:
            return json_response({"error": "invalid or expired refresh token"}, 401)
        return self._tokens(session)

    async def logout(self, request: Request) -> Response:
        """End the session: its refresh tokens stop working, its access tokens within 30 s."""
        try:
            body = await read_json_object(request, AUTH_BODY_LIMIT)
            family = await identity.logout(_string(body, "refresh_token"))
        except BadRequest as exc:
            return error_response(exc)
        if family is not None:
            self.authenticator.forget_session(family)
        return Response(status_code=204)
