"""`GET /r/{code}`: the referral redirect, a plain Starlette route (never GraphQL: it is the
hottest path of the product). The decisions live in domain/tracking/clicks.py.

Answers: 302 to the destination with `pg_click` once the click is stored (or at once for a bot
or a repeat, which are not stored); 404 with a short text for an unknown or inactive code
(never a redirect); 503 when the click's batch failed to commit (never a redirect then).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from domain.settings import Settings
from domain.tracking import click_rules
from domain.tracking.clicks import ClickNotStored, ClickRequest, ClickService

# SECURITY.md names no value: the destination (another site) learns the origin of the page
# the link was on, never its full URL (which may carry private paths or tokens).
REFERRER_POLICY = "strict-origin-when-cross-origin"


class ClickRoutes:
    def __init__(self, settings: Settings) -> None:
        self.service = ClickService(settings.signing_key)
        self.cookie_suffix = "; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if settings.public_url.lower().startswith("https://") else ""
        )

    def routes(self) -> list[Route]:
        return [Route("/r/{code}", self.redirect, methods=["GET"])]

    async def redirect(self, request: Request) -> Response:
        client = request.client
        headers = request.headers
        click = ClickRequest(
            code=request.path_params["code"],
            query=request.query_params.multi_items(),
            visitor_id=request.cookies.get(click_rules.VISITOR_COOKIE),
            user_agent=headers.get("user-agent", ""),
            referrer=headers.get("referer"),
            client_ip=client.host if client else None,
        )
        try:
            outcome = await self.service.click(click)
        except ClickNotStored:
            return _text("the click could not be recorded, try again", 503, {"Retry-After": "1"})
        if outcome is None:
            return _text("unknown referral link", 404)
        cookie = (
            f"{click_rules.VISITOR_COOKIE}={outcome.visitor_id}; "
            f"Max-Age={outcome.cookie_max_age}{self.cookie_suffix}"
        )
        return Response(
            status_code=302,
            headers={
                "Location": outcome.location,
                "Cache-Control": "no-store",
                "Referrer-Policy": REFERRER_POLICY,
                "Set-Cookie": cookie,
            },
        )

    async def close(self) -> None:
        """Flush the queued clicks (the app's shutdown, before the database closes)."""
        await self.service.close()


def _text(message: str, status: int, extra: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(
        message + "\n",
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": REFERRER_POLICY, **(extra or {})},
    )
