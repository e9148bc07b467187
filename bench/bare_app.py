"""The baseline for bench/graphql.py: a bare Starlette JSON route, nothing else.

Served by uvicorn with the same options as PartnerGraph (`bench.bare_app:create_app`, --factory).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def hello(request: Request) -> Response:
    return JSONResponse({"status": "ok", "service": "bare"})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/", hello, methods=["GET", "POST"])])
