"""The baseline for bench/clicks.py: a bare Starlette redirect route, nothing else.

Served by uvicorn with the same options as PartnerGraph (`bench.clicks_bare_app:create_app`,
--factory); `GET /r/{code}` answers 302 to a fixed destination, `GET /` says it is ready.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DESTINATION = "https://acme.example/pricing?pg_click=bare"


async def redirect(request: Request) -> Response:
    return Response(status_code=302, headers={"Location": DESTINATION})


async def ready(request: Request) -> Response:
    return JSONResponse({"status": "ok", "service": "bare"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/r/{code}", redirect), Route("/", ready)])
