"""The application, assembled in one visible place."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.authn import Authenticator
from api.schema import build_schema
from api.tokens import TokenService
from domain import db
from domain.settings import Settings, load_settings
from portal.auth import AuthRoutes
from portal.badges import BadgeRoutes
from portal.clicks import ClickFastPath, ClickRoutes
from portal.exports import ExportRoutes
from portal.graphql import GraphQLEndpoint
from portal.http import json_response
from portal.pixel import conversion_pixel


class SecurityHeaders:
    """`X-Content-Type-Options: nosniff` on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def healthz(request: Request) -> Response:
    if await db.ping():
        return json_response({"status": "ok", "database": "ok"})
    return json_response({"status": "unavailable", "database": "unreachable"}, 503)


def create_app(settings: Settings, *, manage_database: bool = True) -> Starlette:
    """The service. With `manage_database`, the lifespan opens and closes the database."""
    tokens = TokenService(settings)
    authenticator = Authenticator(tokens, settings.session_check_seconds)
    graphql = GraphQLEndpoint(build_schema(settings.development), authenticator, settings)
    auth = AuthRoutes(settings, tokens, authenticator)
    clicks = ClickRoutes(settings)
    exports = ExportRoutes(authenticator)
    badges = BadgeRoutes(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_database:
            await db.open_database(settings)
            # What start-up built lives as long as the process: keep the collector from
            # scanning it again at every full collection (those pauses were the p99 tail).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await clicks.close()  # queued clicks are committed before the database closes
            if manage_database:
                await db.close_database()

    # The click redirect first: it skips the router and the other middleware (portal/clicks.py)
    middleware = [Middleware(ClickFastPath, clicks=clicks), Middleware(SecurityHeaders)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    routes = [
        Route("/graphql", graphql),
        *auth.routes(),
        *clicks.routes(),
        *exports.routes(),
        *badges.routes(),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/px/conversion.gif", conversion_pixel, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.clicks = clicks
    return app


def create_app_from_env() -> Starlette:
    """Factory for uvicorn workers: settings from the environment."""
    return create_app(load_settings())
