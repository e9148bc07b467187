"""`/graphql` over HTTP, as the GraphQL over HTTP specification says.

Both response types (application/json and application/graphql-response+json), GET for queries
only, 400 for malformed requests, 401 for bad credentials, unexpected errors masked with a
request id. Our own view rather than strawberry's: strawberry's has no
application/graphql-response+json and turns credentials into a context only after parsing.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.exceptions import MissingQueryError
from strawberry.http.ides import get_graphql_ide_html
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from api.authn import AuthenticationFailed, Authenticator
from api.context import Context
from api.schema import is_expected
from domain.settings import Settings
from portal.http import BadRequest, json_response, read_json_object

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
QUERY_ONLY = frozenset({OperationType.QUERY})
ANY_OPERATION = frozenset({OperationType.QUERY, OperationType.MUTATION})
# A caller's (or proxy's) X-Request-ID is kept only if it is short and plain: it goes into logs.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id_of(request: Request) -> str:
    """The request's id: the caller's `X-Request-ID` if it is a plain token, else a new one."""
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else secrets.token_hex(8)


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None if we can give none of it."""
    if not accept:
        return JSON
    best: tuple[float, str] | None = None
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            candidate = JSON
        else:
            continue
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, candidate)
    return best[1] if best else None


def _params_from_query(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    for name in ("variables", "extensions"):
        if name in params and params[name] != "":
            try:
                params[name] = orjson.loads(params[name])
            except orjson.JSONDecodeError:
                raise BadRequest(400, f"{name} is not valid JSON") from None
    return params


def _check_params(params: dict[str, Any]) -> tuple[str, dict[str, Any] | None, str | None]:
    query = params.get("query")
    if not isinstance(query, str) or not query.strip():
        raise BadRequest(400, "give the GraphQL document as a non-empty 'query' string")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise BadRequest(400, "'variables' must be a JSON object")
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise BadRequest(400, "'operationName' must be a string")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise BadRequest(400, "'extensions' must be a JSON object")
    return query, variables, name


def is_request_error(result: ExecutionResult) -> bool:
    """Whether execution never started: a parse, validation or variable coercion error.

    Such a response has no `data` entry (GraphQL spec, "Request Errors"). strawberry marks
    parse and validation errors; graphql-core answers a variable coercion failure with
    `data: None` and errors without a path, which a field error always has.
    """
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(not e.path for e in errors)


class GraphQLEndpoint:
    """The ASGI endpoint of `/graphql`."""

    def __init__(
        self, schema: strawberry.Schema, authenticator: Authenticator, settings: Settings
    ) -> None:
        self.schema = schema
        self.authenticator = authenticator
        self.settings = settings
        self.timeout = settings.request_timeout_seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        request_id = request_id_of(request)
        headers = {"X-Request-ID": request_id}
        if request.method not in ("GET", "POST"):
            headers["Allow"] = "GET, POST"
            return self._errors(405, "use GET or POST", "BAD_REQUEST", JSON, headers)
        if request.method == "GET" and self._wants_ide(request):
            return HTMLResponse(get_graphql_ide_html(), headers=headers)
        media_type = negotiate(request.headers.get("accept"))
        if media_type is None:
            message = f"accept {JSON} or {GRAPHQL_RESPONSE}"
            return self._errors(406, message, "NOT_ACCEPTABLE", JSON, headers)
        try:
            params = (
                _params_from_query(request)
                if request.method == "GET"
                else await read_json_object(request, self.settings.max_body_bytes)
            )
            query, variables, operation_name = _check_params(params)
        except BadRequest as exc:
            return self._errors(exc.status, exc.message, "BAD_REQUEST", media_type, headers)
        try:
            principal = await self.authenticator.authenticate(request.headers.get("authorization"))
        except AuthenticationFailed as exc:
            headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return self._errors(401, str(exc), "UNAUTHENTICATED", media_type, headers)
        context = Context(
            principal=principal, request_id=request_id, public_url=self.settings.public_url
        )
        allowed = QUERY_ONLY if request.method == "GET" else ANY_OPERATION
        try:
            async with asyncio.timeout(self.timeout):
                result = await self.schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context,
                    operation_name=operation_name,
                    allowed_operation_types=allowed,
                )
        except InvalidOperationTypeError:
            headers["Allow"] = "POST"
            return self._errors(
                405, "only queries may be sent with GET", "BAD_REQUEST", media_type, headers
            )
        except (MissingQueryError, CannotGetOperationTypeError):
            status = 400 if media_type == GRAPHQL_RESPONSE else 200
            message = (
                f"the document has no operation named {operation_name!r}"
                if operation_name
                else "the document has no operation to run"
            )
            return self._errors(status, message, "BAD_REQUEST", media_type, headers)
        except TimeoutError:
            return self._errors(503, "the request took too long", "TIMEOUT", media_type, headers)
        payload: dict[str, Any] = {}
        if result.errors:
            payload["errors"] = [self._format(e, request_id) for e in result.errors]
        failed = is_request_error(result)
        if not failed:
            payload["data"] = result.data
        if result.extensions:
            payload["extensions"] = result.extensions
        status = 400 if failed and media_type == GRAPHQL_RESPONSE else 200
        return json_response(payload, status, media_type=media_type, **headers)

    def _wants_ide(self, request: Request) -> bool:
        accept = request.headers.get("accept", "")
        return (
            self.settings.development
            and "text/html" in accept
            and "query" not in request.query_params
        )

    @staticmethod
    def _format(error: GraphQLError, request_id: str) -> dict[str, Any]:
        if is_expected(error):
            return dict(error.formatted)
        masked: dict[str, Any] = {
            "message": f"internal error (request id {request_id})",
            "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
        }
        if error.path:
            masked["path"] = error.path
        return masked

    @staticmethod
    def _errors(
        status: int, message: str, code: str, media_type: str, headers: dict[str, str]
    ) -> Response:
        payload = {"errors": [{"message": message, "extensions": {"code": code}}]}
        return json_response(payload, status, media_type=media_type, **headers)
