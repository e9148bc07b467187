"""`/graphql` over HTTP: the transport contract (CONTRACT.md "Transport", SECURITY.md limits).

Every test talks to the real ASGI app over httpx, as clients do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import strawberry
from starlette.applications import Starlette
from starlette.routing import Route

from api.authn import Authenticator
from api.cost import MAX_COST
from api.schema import MAX_ALIASES, PartnerGraphSchema
from api.tokens import TokenService
from domain.settings import Settings
from portal.app import SecurityHeaders, create_app
from portal.graphql import GRAPHQL_RESPONSE, GraphQLEndpoint
from tests.helpers import Api

JSON = "application/json"
VIEWER = "{ viewer { kind } }"
CREATE_PROGRAM = (
    'mutation { createProgram(input: {name: "Sneaky", currency: "EUR", '
    'destinationUrl: "https://sneaky.example/"}) { program { id } userErrors { code } } }'
)


def bad_request(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}


def stripped(body: dict[str, Any]) -> dict[str, Any]:
    """The body without `extensions`, which may only report the query cost."""
    extensions = body.pop("extensions", {})
    assert set(extensions) <= {"cost"}, extensions
    if extensions:
        assert extensions["cost"]["limit"] == MAX_COST
        assert isinstance(extensions["cost"]["requested"], int)
    return body


def body_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return stripped(body)


def content_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def post_raw(
    client: httpx.AsyncClient, content: bytes, content_type: str = JSON, **headers: str
) -> httpx.Response:
    return await client.post(
        "/graphql", content=content, headers={"Content-Type": content_type, **headers}
    )


async def program_count(api: Api, admin: str) -> int:
    data = await api.data("{ programs { totalCount } }", token=admin)
    count: int = data["programs"]["totalCount"]
    return count


# --- the happy paths ---------------------------------------------------------------------


async def test_post_application_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": VIEWER})
    assert response.status_code == 200
    assert content_type(response) == JSON
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_response_reports_the_query_cost(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ viewer { kind } }"})
    assert response.json() == {
        "data": {"viewer": {"kind": "ANONYMOUS"}},
        "extensions": {"cost": {"requested": 2, "limit": MAX_COST}},
    }


async def test_post_with_variables_and_operation_name(client: httpx.AsyncClient) -> None:
    document = (
        "query A($skip: Boolean!) { viewer @skip(if: $skip) { kind } } query B { __typename }"
    )
    response = await client.post(
        "/graphql",
        json={"query": document, "variables": {"skip": False}, "operationName": "A"},
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_get_query(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": VIEWER})
    assert response.status_code == 200
    assert content_type(response) == JSON
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_get_query_with_variables(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query($s: Boolean!) { viewer @skip(if: $s) { kind } }",
            "variables": '{"s": true}',
        },
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {}}


async def test_get_with_bad_variables_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": VIEWER, "variables": "{nope"})
    assert response.status_code == 400
    assert body_of(response) == bad_request("variables is not valid JSON")


async def test_typename_is_allowed_anonymously(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert body_of(response) == {"data": {"__typename": "Query"}}


# --- GET is for queries only -------------------------------------------------------------


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_mutation_over_get_is_405_and_changes_nothing(
    client: httpx.AsyncClient, api: Api, accept: str
) -> None:
    admin = await api.admin_token()
    response = await client.get(
        "/graphql",
        params={"query": CREATE_PROGRAM},
        headers={"Authorization": f"Bearer {admin}", "Accept": accept},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert content_type(response) == accept
    assert body_of(response) == bad_request("only queries may be sent with GET")
    assert await program_count(api, admin) == 0
    # the same mutation over POST does create the program
    created = await api.data(CREATE_PROGRAM, token=admin)
    assert created["createProgram"]["userErrors"] == []
    assert await program_count(api, admin) == 1


async def test_other_methods_are_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": VIEWER})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert body_of(response) == bad_request("use GET or POST")


# --- malformed requests ------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"query": "{ viewer { kind } }"', b"\xff"])
async def test_body_that_is_not_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await post_raw(client, body)
    assert response.status_code == 400
    assert content_type(response) == JSON
    assert body_of(response) == bad_request("the body is not valid JSON")


@pytest.mark.parametrize("body", [b"[]", b'"{ viewer { kind } }"', b"1", b"null", b"true"])
async def test_json_that_is_not_an_object_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await post_raw(client, body)
    assert response.status_code == 400
    assert body_of(response) == bad_request("the body must be a JSON object")


@pytest.mark.parametrize(
    "payload",
    [{}, {"query": ""}, {"query": "   "}, {"query": None}, {"query": 1}, {"query": ["{ a }"]}],
)
async def test_missing_or_empty_query_is_400(
    client: httpx.AsyncClient, payload: dict[str, Any]
) -> None:
    response = await client.post("/graphql", json=payload)
    assert response.status_code == 400
    assert body_of(response) == bad_request(
        "give the GraphQL document as a non-empty 'query' string"
    )


@pytest.mark.parametrize("variables", [[], "{}", 1, True])
async def test_variables_not_an_object_is_400(client: httpx.AsyncClient, variables: Any) -> None:
    response = await client.post("/graphql", json={"query": VIEWER, "variables": variables})
    assert response.status_code == 400
    assert body_of(response) == bad_request("'variables' must be a JSON object")


async def test_null_variables_are_fine(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER, "variables": None, "operationName": None}
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


@pytest.mark.parametrize(
    "media_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ],
)
async def test_non_json_post_is_415(client: httpx.AsyncClient, api: Api, media_type: str) -> None:
    """A form or text/plain POST needs no CORS preflight: refusing it stops CSRF."""
    admin = await api.admin_token()
    body = json.dumps({"query": CREATE_PROGRAM}).encode()
    response = await post_raw(client, body, media_type, Authorization=f"Bearer {admin}")
    assert response.status_code == 415
    assert body_of(response) == bad_request("send the body as application/json")
    assert await program_count(api, admin) == 0


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await post_raw(
        client, b'{"query": "{ viewer { kind } }"}', "application/json; charset=utf-8"
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


# --- body size ---------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid request body of exactly `size` bytes (JSON whitespace as padding)."""
    body = b'{"query": "{ viewer { kind } }"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def test_body_at_the_limit_is_accepted(client: httpx.AsyncClient, settings: Settings) -> None:
    assert settings.max_body_bytes == 1024 * 1024
    response = await post_raw(client, padded(settings.max_body_bytes))
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await post_raw(client, padded(settings.max_body_bytes + 1))
    assert response.status_code == 413
    assert body_of(response) == bad_request(
        f"request body larger than {settings.max_body_bytes} bytes"
    )


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Without a Content-Length (chunked), the limit holds while reading."""
    body = padded(settings.max_body_bytes + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    response = await client.post("/graphql", content=chunks(), headers={"Content-Type": JSON})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert body_of(response) == bad_request(
        f"request body larger than {settings.max_body_bytes} bytes"
    )


# --- content negotiation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.9", JSON),
        (JSON, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html,application/xhtml+xml,*/*;q=0.8", JSON),
    ],
)
async def test_accept_chooses_the_response_type(
    client: httpx.AsyncClient, accept: str, expected: str
) -> None:
    response = await client.post("/graphql", json={"query": VIEWER}, headers={"Accept": accept})
    assert response.status_code == 200
    assert content_type(response) == expected
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_no_accept_header_means_json(client: httpx.AsyncClient) -> None:
    request = client.build_request("POST", "/graphql", json={"query": VIEWER})
    del request.headers["accept"]
    response = await client.send(request)
    assert response.status_code == 200
    assert content_type(response) == JSON


@pytest.mark.parametrize(
    "accept", ["text/csv", "text/html", f"{JSON};q=0, {GRAPHQL_RESPONSE};q=0", "image/*"]
)
async def test_unacceptable_accept_is_406(client: httpx.AsyncClient, accept: str) -> None:
    response = await client.post("/graphql", json={"query": VIEWER}, headers={"Accept": accept})
    assert response.status_code == 406
    assert content_type(response) == JSON
    assert body_of(response) == {
        "errors": [
            {
                "message": f"accept {JSON} or {GRAPHQL_RESPONSE}",
                "extensions": {"code": "NOT_ACCEPTABLE"},
            }
        ]
    }


PARSE_ERROR = {
    "errors": [
        {
            "message": "Syntax Error: Expected Name, found <EOF>.",
            "locations": [{"line": 1, "column": 17}],
        }
    ]
}
VALIDATION_ERROR = {
    "errors": [
        {
            "message": "Cannot query field 'nope' on type 'Query'.",
            "locations": [{"line": 1, "column": 3}],
        }
    ]
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [("{ viewer { kind ", PARSE_ERROR), ("{ nope }", VALIDATION_ERROR)],
)
async def test_invalid_document_status_depends_on_accept(
    client: httpx.AsyncClient, query: str, expected: dict[str, Any]
) -> None:
    modern = await client.post(
        "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert modern.status_code == 400
    assert content_type(modern) == GRAPHQL_RESPONSE
    assert body_of(modern) == expected  # no "data" entry: the request never executed
    legacy = await client.post("/graphql", json={"query": query}, headers={"Accept": JSON})
    assert legacy.status_code == 200
    assert content_type(legacy) == JSON
    assert body_of(legacy) == expected


async def test_variable_coercion_failure_is_400_with_graphql_response(
    client: httpx.AsyncClient,
) -> None:
    payload = {"query": "query($s: Boolean!) { viewer @skip(if: $s) { kind } }"}
    payload["variables"] = {"s": "yes"}  # type: ignore[assignment]
    modern = await client.post("/graphql", json=payload, headers={"Accept": GRAPHQL_RESPONSE})
    legacy = await client.post("/graphql", json=payload, headers={"Accept": JSON})
    assert (modern.status_code, legacy.status_code) == (400, 200)
    assert body_of(modern) == body_of(legacy)
    assert body_of(modern) == {
        "errors": [
            {
                "message": "Variable '$s' has invalid value: "
                "Boolean cannot represent a non boolean value: 'yes'",
                "locations": [{"line": 1, "column": 7}],
            }
        ]
    }


async def test_field_errors_are_200_with_graphql_response(client: httpx.AsyncClient) -> None:
    """An error during execution is not a request error: the response has `data`."""
    response = await client.post(
        "/graphql",
        json={"query": "{ viewer { kind } programs { totalCount } }"},
        headers={"Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200
    assert content_type(response) == GRAPHQL_RESPONSE
    body = body_of(response)
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GRAPHQL_RESPONSE, 400)])
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"query": "query A { __typename } query B { __typename }", "operationName": "C"},
            "the document has no operation named 'C'",
        ),
        ({"query": "fragment F on Query { __typename }"}, "the document has no operation to run"),
    ],
)
async def test_no_operation_to_run(
    client: httpx.AsyncClient, accept: str, status: int, payload: dict[str, Any], message: str
) -> None:
    response = await client.post("/graphql", json=payload, headers={"Accept": accept})
    assert response.status_code == status
    assert content_type(response) == accept
    assert body_of(response) == bad_request(message)


async def test_operation_name_picks_the_operation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query A { __typename } query B { viewer { kind } }", "operationName": "B"},
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


# --- credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer garbage", "invalid access token"),
        ("Bearer pgt_unknownTokenThatWasNeverIssued000", "unknown, expired or revoked API token"),
        ("Basic dXNlcjpwYXNz", "use 'Authorization: Bearer <token>'"),
        ("Bearer", "use 'Authorization: Bearer <token>'"),
        ("Bearer    ", "use 'Authorization: Bearer <token>'"),
        ("garbage", "use 'Authorization: Bearer <token>'"),
        ("", "use 'Authorization: Bearer <token>'"),
    ],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_bad_credential_is_401(
    client: httpx.AsyncClient, authorization: str, message: str, accept: str
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": VIEWER},
        headers={"Authorization": authorization, "Accept": accept},
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert content_type(response) == accept
    (error,) = body_of(response)["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert error["message"].startswith(message)
    assert list(body_of(response)) == ["errors"]


async def test_bad_credential_is_401_over_get_too(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": VIEWER}, headers={"Authorization": "Bearer x.y.z"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_valid_credential_is_the_viewer(api: Api) -> None:
    admin = await api.admin_token()
    data = await api.data("{ viewer { kind email } }", token=admin)
    assert data == {"viewer": {"kind": "ADMIN", "email": "admin@example.com"}}


# --- anonymous callers -------------------------------------------------------------------


UNAUTHENTICATED_MESSAGE = "authentication required: send 'Authorization: Bearer <token>'"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ programs { totalCount } }", "programs"),
        ("{ partners { totalCount } }", "partners"),
        ("{ auditLog { totalCount } }", "auditLog"),
        (CREATE_PROGRAM, "createProgram"),
    ],
)
async def test_anonymous_gets_only_viewer(api: Api, query: str, field: str) -> None:
    body = stripped(await api.post(query))
    assert body["data"] is None
    assert len(body["errors"]) == 1
    (error,) = body["errors"]
    assert error["message"] == UNAUTHENTICATED_MESSAGE
    assert error["path"] == [field]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}


async def test_anonymous_viewer_next_to_a_refused_nullable_field(api: Api) -> None:
    body = stripped(await api.post('{ viewer { kind } node(id: "UHJvZ3JhbTox") { id } }'))
    assert body["data"] == {"viewer": {"kind": "ANONYMOUS"}, "node": None}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["node"], "UNAUTHENTICATED")
    ]


INTROSPECTION = "{ __schema { types { name } } }"


@pytest.mark.parametrize(
    ("query", "field"),
    [(INTROSPECTION, "__schema"), ('{ __type(name: "Program") { name } }', "__type")],
)
async def test_anonymous_introspection_is_refused(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    body = body_of(response)
    assert list(body) == ["errors"], body
    assert body["errors"][0]["message"] == (
        "GraphQL introspection has been disabled, but the requested query contained the "
        f"field '{field}'."
    )
    modern = await client.post(
        "/graphql", json={"query": query}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert modern.status_code == 400
    assert body_of(modern) == body


async def test_admin_introspection_works(api: Api) -> None:
    admin = await api.admin_token()
    data = await api.data(INTROSPECTION, token=admin)
    names = {t["name"] for t in data["__schema"]["types"]}
    assert {"Query", "Mutation", "Program", "Partner", "Viewer"} <= names


# --- limits ------------------------------------------------------------------------------


async def test_no_field_suggestions_outside_development(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert not settings.development
    response = await client.post("/graphql", json={"query": "{ viewr { kind } }"})
    assert response.status_code == 200
    assert body_of(response) == {
        "errors": [
            {
                "message": "Cannot query field 'viewr' on type 'Query'.",
                "locations": [{"line": 1, "column": 3}],
            }
        ]
    }
    assert "Did you mean" not in response.text


CYCLE = ("enrollments(first: 1)", "edges", "node", "program")
LEAF = {"enrollments(first: 1)": "totalCount", "edges": "cursor", "node": "id", "program": "id"}


def nested(levels: int) -> str:
    """A valid query of depth levels + 1: node > enrollments > edges > node > program > ..."""
    names = [CYCLE[i % len(CYCLE)] for i in range(levels)]
    inner = LEAF[names[-1]]
    for name in reversed(names):
        inner = f"{name} {{ {inner} }}"
    return f'{{ node(id: "UHJvZ3JhbTox") {{ ... on Program {{ {inner} }} }} }}'


@pytest.mark.parametrize("levels", [8, 9])
async def test_depth_ten_is_allowed(api: Api, levels: int) -> None:
    admin = await api.admin_token()
    assert await api.data(nested(levels), token=admin) == {"node": None}


@pytest.mark.parametrize("levels", [10, 14])
async def test_depth_over_ten_is_refused(client: httpx.AsyncClient, api: Api, levels: int) -> None:
    admin = await api.admin_token()
    query = nested(levels)
    for accept, status in ((JSON, 200), (GRAPHQL_RESPONSE, 400)):
        response = await client.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {admin}", "Accept": accept},
        )
        assert response.status_code == status
        body = body_of(response)
        assert list(body) == ["errors"]
        assert [e["message"] for e in body["errors"]] == [
            "'anonymous' exceeds maximum operation depth of 10"
        ]


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def test_thirty_aliases_are_allowed(api: Api) -> None:
    assert MAX_ALIASES == 30
    data = await api.data(aliases(30))
    assert data == {f"a{i}": "Query" for i in range(30)}


async def test_more_than_thirty_aliases_are_refused(api: Api) -> None:
    body = stripped(await api.post(aliases(31)))
    assert body == {"errors": [{"message": "31 aliases found. Allowed: 30"}]}


@pytest.mark.parametrize("first", [101, -1])
async def test_first_over_the_cap_is_an_error(api: Api, first: int) -> None:
    admin = await api.admin_token()
    body = stripped(
        await api.post(
            "query($first: Int) { programs(first: $first) { totalCount } }", {"first": first}, admin
        )
    )
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "first must be between 0 and 100",
            "locations": [{"line": 1, "column": 22}],
            "path": ["programs"],
            "extensions": {"code": "BAD_USER_INPUT"},
        }
    ]


async def test_first_at_the_cap_is_fine(api: Api) -> None:
    admin = await api.admin_token()
    data = await api.data("{ programs(first: 100) { totalCount } }", token=admin)
    assert data == {"programs": {"totalCount": 0}}


# --- headers on every response -----------------------------------------------------------


def _requests() -> Iterator[tuple[str, str, dict[str, Any]]]:
    yield "ok", "POST", {"json": {"query": VIEWER}}
    yield "get", "GET", {"params": {"query": VIEWER}}
    yield "field error", "POST", {"json": {"query": "{ programs { totalCount } }"}}
    yield "invalid", "POST", {"json": {"query": "{ nope }"}}
    yield "not json", "POST", {"content": b"{", "headers": {"Content-Type": JSON}}
    yield "415", "POST", {"content": b"{}", "headers": {"Content-Type": "text/plain"}}
    yield "406", "POST", {"json": {"query": VIEWER}, "headers": {"Accept": "text/csv"}}
    yield "401", "POST", {"json": {"query": VIEWER}, "headers": {"Authorization": "Bearer x"}}
    yield "405", "DELETE", {}
    yield "get mutation", "GET", {"params": {"query": CREATE_PROGRAM}}


@pytest.mark.parametrize(("name", "method", "kwargs"), list(_requests()))
async def test_every_response_has_nosniff_and_a_request_id(
    client: httpx.AsyncClient, name: str, method: str, kwargs: dict[str, Any]
) -> None:
    response = await client.request(method, "/graphql", **kwargs)
    assert response.headers["x-content-type-options"] == "nosniff", name
    assert len(response.headers["x-request-id"]) == 16, name
    assert response.headers["cache-control"] == "no-store", name


async def test_caller_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"X-Request-ID": "edge-42.abc:7"}
    )
    assert response.headers["x-request-id"] == "edge-42.abc:7"


@pytest.mark.parametrize("given", ["has space", "x" * 65, "semi;colon", 'quote"d'])
async def test_odd_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.post(
        "/graphql", json={"query": VIEWER}, headers={"X-Request-ID": given}
    )
    assert response.headers["x-request-id"] != given
    assert len(response.headers["x-request-id"]) == 16


async def test_request_ids_differ(client: httpx.AsyncClient) -> None:
    ids = {
        (await client.post("/graphql", json={"query": VIEWER})).headers["x-request-id"]
        for _ in range(5)
    }
    assert len(ids) == 5


async def test_healthz_has_nosniff(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"


# --- unexpected errors are masked --------------------------------------------------------


class Leaky(Exception):
    pass


@strawberry.type
class BoomQuery:
    @strawberry.field
    def fine(self) -> str:
        return "fine"

    @strawberry.field
    def boom(self) -> str | None:
        raise Leaky("password=hunter2 at /srv/partnergraph/secret.py line 42")


@pytest.fixture
async def boom_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A tiny schema whose resolver fails, behind our real endpoint and authenticator."""
    schema = PartnerGraphSchema(query=BoomQuery)
    endpoint = GraphQLEndpoint(schema, Authenticator(TokenService(settings)), settings)
    app = Starlette(routes=[Route("/graphql", endpoint)])
    transport = httpx.ASGITransport(app=SecurityHeaders(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE])
async def test_unexpected_resolver_error_is_masked(
    boom_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, accept: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="partnergraph.api"):
        response = await boom_client.post(
            "/graphql",
            json={"query": "{ fine boom }"},
            headers={"Accept": accept, "X-Request-ID": "req-123"},
        )
    assert response.status_code == 200
    assert content_type(response) == accept
    assert response.headers["x-request-id"] == "req-123"
    assert body_of(response) == {
        "data": {"fine": "fine", "boom": None},
        "errors": [
            {
                "message": "internal error (request id req-123)",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-123"},
                "path": ["boom"],
            }
        ],
    }
    assert "hunter2" not in response.text
    assert "Leaky" not in response.text
    # logged once, with the request id and the exception, for the operator
    records = [r for r in caplog.records if r.name == "partnergraph.api"]
    assert len(records) == 1
    assert records[0].getMessage() == "unexpected error in boom (request req-123)"
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], Leaky)


# --- GraphiQL only in development --------------------------------------------------------


@pytest.fixture(scope="module")
def development_app(settings: Settings) -> Starlette:
    return create_app(settings.model_copy(update={"development": True}), manage_database=False)


@pytest.fixture
async def dev_client(development_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=development_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def test_graphiql_in_development(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 200
    assert content_type(response) == "text/html"
    assert "graphiql" in response.text.lower()
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 16


async def test_development_still_answers_queries(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.get(
        "/graphql", params={"query": VIEWER}, headers={"Accept": BROWSER_ACCEPT}
    )
    assert response.status_code == 200
    assert body_of(response) == {"data": {"viewer": {"kind": "ANONYMOUS"}}}


async def test_development_suggests_fields(dev_client: httpx.AsyncClient) -> None:
    """The counterpart of test_no_field_suggestions_outside_development."""
    response = await dev_client.post("/graphql", json={"query": "{ viewr { kind } }"})
    assert body_of(response)["errors"][0]["message"] == (
        "Cannot query field 'viewr' on type 'Query'. Did you mean 'viewer'?"
    )


async def test_no_graphiql_outside_development(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert not settings.development
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 406
    assert "graphiql" not in response.text.lower()


async def test_browser_outside_development_gets_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 400
    assert content_type(response) == JSON
    assert body_of(response) == bad_request(
        "give the GraphQL document as a non-empty 'query' string"
    )


async def test_several_operations_without_an_operation_name_are_refused(
    client: httpx.AsyncClient,
) -> None:
    document = "query A { viewer { kind } } query B { viewer { email } }"
    refused = await client.post(
        "/graphql",
        json={"query": document},
        headers={"Accept": "application/graphql-response+json"},
    )
    assert refused.status_code == 400
    assert "operationName" in refused.json()["errors"][0]["message"]
    assert "data" not in refused.json()
    chosen = await client.post("/graphql", json={"query": document, "operationName": "B"})
    assert chosen.json()["data"] == {"viewer": {"email": None}}
