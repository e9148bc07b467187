"""`GET /r/{code}`: the referral redirect, a raw ASGI callable (never GraphQL, no Starlette
Request or Response objects: it is the hottest path of the product, and those cost more than the
rest of the click). The decisions live in domain/tracking/clicks.py.

Answers: 302 to the destination with `pg_click` once the click is stored (or at once for a bot
or a repeat, which are not stored); 404 with a short text for an unknown or inactive code
(never a redirect); 503 when the click's batch failed to commit (never a redirect then).

Two ways in, one handler: `ClickFastPath` (the app's outermost middleware but Starlette's error
handler) serves `GET /r/<code>` before the router and the other middleware, adding their one
header (`nosniff`) itself; the Route keeps the rest (HEAD, 405 for other methods).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.settings import Settings
from domain.tracking import click_rules
from domain.tracking.clicks import ClickNotStored, ClickService

# SECURITY.md names no value: the destination (another site) learns the origin of the page
# the link was on, never its full URL (which may carry private paths or tokens).
REFERRER_POLICY = "strict-origin-when-cross-origin"
NOSNIFF = (b"x-content-type-options", b"nosniff")
_COOKIE_PREFIX = f"{click_rules.VISITOR_COOKIE}="
_COMMON = [(b"cache-control", b"no-store"), (b"referrer-policy", REFERRER_POLICY.encode())]
Headers = list[tuple[bytes, bytes]]


class ClickRoutes:
    def __init__(self, settings: Settings) -> None:
        self.service = ClickService(settings.signing_key)
        self.cookie_suffix = "; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if settings.public_url.lower().startswith("https://") else ""
        )
        self._cookie_tails: dict[int, str] = {}  # Max-Age -> the cookie after its value
        self._text_404 = _text("unknown referral link", [])
        self._text_503 = _text(
            "the click could not be recorded, try again", [(b"retry-after", b"1")]
        )

    def routes(self) -> list[Route]:
        return [Route("/r/{code}", _RouteApp(self), methods=["GET"])]

    async def serve(self, scope: Scope, code: str, send: Send, extra: Headers) -> None:
        """Answer one click; `extra` headers go on every answer."""
        user_agent = ""
        referrer = cookie = None
        for name, value in scope["headers"]:
            if name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"cookie":
                cookie = value.decode("latin-1")
            elif name == b"referer":
                referrer = value.decode("latin-1")
        query: bytes = scope["query_string"]
        incoming = (
            click_rules.incoming_utm(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
            if b"utm_" in query
            else {}
        )
        if scope["method"] == "HEAD":
            user_agent = ""  # link checkers and previews: answered like a bot, never counted
        client = scope.get("client")
        try:
            answer = await self.service.handle(
                code,
                incoming,
                None if cookie is None else _visitor_cookie(cookie),
                user_agent,
                referrer,
                client[0] if client else None,
            )
        except ClickNotStored:
            await _send(send, 503, [*self._text_503[0], *extra], self._text_503[1])
            return
        if answer is None:
            await _send(send, 404, [*self._text_404[0], *extra], self._text_404[1])
            return
        location, visitor, target, _ = answer
        tail = self._cookie_tails.get(target.lookback_seconds)
        if tail is None:
            tail = self._cookie_tails[target.lookback_seconds] = (
                f"; Max-Age={target.lookback_seconds}{self.cookie_suffix}"
            )
        headers = [
            (b"location", location.encode("latin-1")),
            *_COMMON,
            (b"set-cookie", (_COOKIE_PREFIX + visitor + tail).encode("latin-1")),
            (b"content-length", b"0"),
            *extra,
        ]
        await _send(send, 302, headers, b"")

    async def close(self) -> None:
        """Flush the queued clicks (the app's shutdown, before the database closes)."""
        await self.service.close()


class _RouteApp:
    """The Route's ASGI app (an object, not a method: Starlette would wrap a method as a
    Request endpoint); SecurityHeaders adds `nosniff` on this way in."""

    def __init__(self, clicks: ClickRoutes) -> None:
        self.clicks = clicks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.clicks.serve(scope, scope["path_params"]["code"], send, [])


class ClickFastPath:
    """Serves `GET /r/<code>` straight away; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, clicks: ClickRoutes) -> None:
        self.app = app
        self.clicks = clicks
        self.extra = [NOSNIFF]  # what SecurityHeaders would add

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path: str = scope["path"]
            if path.startswith("/r/") and len(path) > 3 and path.find("/", 3) < 0:
                await self.clicks.serve(scope, path[3:], send, self.extra)
                return
        await self.app(scope, receive, send)


def _visitor_cookie(header: str) -> str | None:
    """The `pg_vid` value of a Cookie header as Starlette would read it (the last one wins,
    surrounding quotes removed); it is validated later."""
    found = None
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        if sep and name.strip() == click_rules.VISITOR_COOKIE:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found = value
    return found


def _text(message: str, extra: Headers) -> tuple[Headers, bytes]:
    body = (message + "\n").encode()
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"text/plain; charset=utf-8"),
        *_COMMON,
        *extra,
    ]
    return headers, body


async def _send(send: Send, status: int, headers: Headers, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
