"""A GraphQL request leaves no reference cycles behind: the cyclic collector's pauses were the
benchmark's p99 tail (bench/README.md)."""

from __future__ import annotations

import gc
from typing import Any

import orjson
from starlette.applications import Starlette

from tests.helpers import Api

QUERY = "{ viewer { kind partner { name enrollments { referralCode program { name } } } } }"


async def _call(app: Starlette, body: bytes, token: str) -> list[dict[str, Any]]:
    """One request straight into the ASGI app (no client library of its own in the way)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {token}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    await app(scope, receive, send)
    return sent


async def test_graphql_requests_leave_no_cyclic_garbage(api: Api, app: Starlette) -> None:
    admin = await api.admin_token()
    program = await api.program(admin)
    partner = await api.partner(admin, "Northwind", "ana@northwind.example", program)
    body = orjson.dumps({"query": QUERY})
    for _ in range(5):  # warm caches
        await _call(app, body, partner["token"])
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            sent = await _call(app, body, partner["token"])
        collected = gc.collect()
    finally:
        gc.enable()
    assert b"Northwind" in sent[-1]["body"]
    assert collected == 0
