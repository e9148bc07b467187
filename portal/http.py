"""Small HTTP helpers shared by the routes: JSON bodies with a size limit, JSON answers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response


class BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def json_response(
    payload: Any, status: int = 200, media_type: str = "application/json", **headers: str
) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=media_type,
        headers={"Cache-Control": "no-store", **headers},
    )


def error_response(exc: BadRequest) -> Response:
    return json_response({"error": exc.message}, exc.status, **exc.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, f"request body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def require_json_content_type(request: Request) -> None:
    """Only application/json: a form or text/plain POST from another site is refused (CSRF)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest(415, "send the body as application/json")


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    require_json_content_type(request)
    body = await read_body(request, limit)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return payload
