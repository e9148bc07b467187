"""Object-level authorization: partner B can reach none of partner A's objects, by any path.

One world for the whole module, built once through the API (logins cost ~100 ms of argon2
each): an admin; programs "shared" (A and B enrolled), "only_a" (A alone) and "nobody"; a tier
in each of the first two; partner A and partner B, each with a user and a partner-made API
token; APP tokens an admin made with one scope each. Tests that change something change only
what no other test counts, and every refused action asserts that nothing changed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import graphql
import httpx
import pytest
from starlette.applications import Starlette

from api.schema import build_schema
from domain.audit.models import AuditEntry
from domain.identity.models import ApiToken, User
from domain.partners.models import Enrollment, Partner
from domain.programs.models import Program, Tier
from domain.settings import Settings
from tests.conftest import empty_tables
from tests.helpers import Api


@dataclass
class PartnerSide:
    id: str
    token: str  # the partner user's access token
    app: str  # an API token the partner user made (partners:read programs:read)
    app_id: str
    enrollments: dict[str, str]  # program key -> enrollment id


@dataclass
class World:
    admin: str
    programs: dict[str, str]
    tiers: dict[str, str]
    a: PartnerSide
    b: PartnerSide
    apps: dict[str, str]  # admin-made APP tokens by their one scope
    app_ids: dict[str, str]
    audit_entry: str


# The module's tests share one world: the database is emptied once, when it is built.
@pytest.fixture(autouse=True)
def clean_database() -> None:
    """Overrides the per-test emptying of tests/conftest.py for this module."""


async def _token(api: Api, user_token: str, name: str, scopes: list[str]) -> tuple[str, str]:
    payload = await api.mutate(
        "createApiToken", {"name": name, "scopes": scopes}, "token apiToken { id }", user_token
    )
    assert payload["userErrors"] == [], payload
    return payload["token"], payload["apiToken"]["id"]


async def _enroll(api: Api, admin: str, program: str, partner: str, tier: str) -> str:
    payload = await api.mutate(
        "enrollPartner",
        {"programId": program, "partnerId": partner, "tierId": tier},
        "enrollment { id }",
        admin,
    )
    assert payload["userErrors"] == [], payload
    return str(payload["enrollment"]["id"])


async def _tier(api: Api, admin: str, program: str, name: str) -> str:
    payload = await api.mutate(
        "createTier", {"programId": program, "name": name, "rank": 1}, "tier { id }", admin
    )
    assert payload["userErrors"] == [], payload
    return str(payload["tier"]["id"])


@pytest.fixture(scope="module")
async def world(database: list[str], settings: Settings, app: Starlette) -> AsyncIterator[World]:
    await empty_tables(database, settings)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        api = Api(client)
        admin = await api.admin_token()
        programs = {
            "shared": await api.program(admin, "Shared Cloud"),
            "only_a": await api.program(admin, "Alpha Exclusive"),
            "nobody": await api.program(admin, "Nobody's Program"),
        }
        tiers = {
            "shared": await _tier(api, admin, programs["shared"], "Gold"),
            "only_a": await _tier(api, admin, programs["only_a"], "Platinum"),
        }
        sides = {}
        for key, name in (("a", "Alpha Partners"), ("b", "Beta Partners")):
            made = await api.partner(admin, name, f"{name.split()[0].lower()}@example.com")
            enrollments = {
                "shared": await _enroll(api, admin, programs["shared"], made["id"], tiers["shared"])
            }
            if key == "a":
                enrollments["only_a"] = await _enroll(
                    api, admin, programs["only_a"], made["id"], tiers["only_a"]
                )
            app_token, app_id = await _token(
                api, made["token"], f"{key}-reports", ["partners:read", "programs:read"]
            )
            sides[key] = PartnerSide(made["id"], made["token"], app_token, app_id, enrollments)
        apps, app_ids = {}, {}
        for scope in ("partners:read", "programs:read", "programs:write"):
            apps[scope], app_ids[scope] = await _token(api, admin, f"admin {scope}", [scope])
        audit = await api.data("{ auditLog(first: 1) { edges { node { id } } } }", token=admin)
        yield World(
            admin=admin,
            programs=programs,
            tiers=tiers,
            a=sides["a"],
            b=sides["b"],
            apps=apps,
            app_ids=app_ids,
            audit_entry=audit["auditLog"]["edges"][0]["node"]["id"],
        )


@pytest.fixture(params=["B's user", "B's app token"])
def as_b(request: pytest.FixtureRequest, world: World) -> str:
    """Partner B, logged in as its user or through the API token its user made."""
    return world.b.token if request.param == "B's user" else world.b.app


async def snapshot() -> dict[str, Any]:
    """Everything a refused action must leave as it was."""
    return {
        "programs": [p.snapshot() for p in await Program.all().order_by("id")],
        "tiers": [t.snapshot() for t in await Tier.all().order_by("id")],
        "partners": [p.snapshot() for p in await Partner.all().order_by("id")],
        "enrollments": [e.snapshot() for e in await Enrollment.all().order_by("id")],
        "users": await User.all().order_by("id").values_list("email", "is_active", "partner_id"),
        "api_tokens": await ApiToken.all().order_by("id").values_list("id", "revoked_at"),
        "audit_entries": await AuditEntry.all().count(),
    }


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


NODE = """query($id: ID!) { node(id: $id) { id __typename } }"""


# node(id:) --------------------------------------------------------------------------------------

A_OBJECTS = [
    pytest.param(lambda w: w.programs["only_a"], "Program", id="Program-only-A"),
    pytest.param(lambda w: w.programs["nobody"], "Program", id="Program-nobody-enrolled"),
    pytest.param(lambda w: w.tiers["only_a"], "Tier", id="Tier-of-A-only-program"),
    pytest.param(lambda w: w.a.id, "Partner", id="Partner-A"),
    pytest.param(lambda w: w.a.enrollments["shared"], "Enrollment", id="Enrollment-A-shared"),
    pytest.param(lambda w: w.a.enrollments["only_a"], "Enrollment", id="Enrollment-A-only-A"),
    pytest.param(lambda w: w.a.app_id, "ApiToken", id="ApiToken-of-A"),
    pytest.param(lambda w: w.app_ids["programs:write"], "ApiToken", id="ApiToken-of-admin"),
    pytest.param(lambda w: w.audit_entry, "AuditEntry", id="AuditEntry"),
]


@pytest.mark.parametrize(("target", "type_name"), A_OBJECTS)
async def test_node_answers_null_not_forbidden_for_an_object_partner_b_may_not_see(
    api: Api, world: World, as_b: str, target: Callable[[World], str], type_name: str
) -> None:
    object_id = target(world)
    seen_by_admin = await api.data(NODE, {"id": object_id}, world.admin)
    assert seen_by_admin["node"] == {"id": object_id, "__typename": type_name}
    body = await api.post(NODE, {"id": object_id}, as_b)
    assert "errors" not in body
    assert body["data"] == {"node": None}


async def test_partner_a_reaches_its_own_objects_by_node(api: Api, world: World) -> None:
    own = [
        world.programs["shared"],
        world.programs["only_a"],
        world.tiers["only_a"],
        world.a.id,
        world.a.enrollments["shared"],
        world.a.enrollments["only_a"],
        world.a.app_id,
    ]
    for object_id in own:
        data = await api.data(NODE, {"id": object_id}, world.a.token)
        assert data["node"]["id"] == object_id


async def test_partner_b_reaches_its_own_and_the_shared_programs_objects_by_node(
    api: Api, world: World, as_b: str
) -> None:
    visible = [world.programs["shared"], world.tiers["shared"], world.b.id]
    visible.append(world.b.enrollments["shared"])
    for object_id in visible:
        data = await api.data(NODE, {"id": object_id}, as_b)
        assert data["node"]["id"] == object_id


@pytest.mark.parametrize(
    "bad_id",
    ["", "nonsense", "UHJvZ3JhbTo5OTk5", "VXNlcjox", "UHJvZ3JhbTotMQ", "x" * 500],
    ids=["empty", "not-base64", "Program-9999", "User-1", "Program-minus-1", "huge"],
)
async def test_node_answers_null_for_ids_that_name_nothing(
    api: Api, world: World, bad_id: str
) -> None:
    assert await api.data(NODE, {"id": bad_id}, world.admin) == {"node": None}


# Nested fields ---------------------------------------------------------------------------------

ENROLLMENT_FIELDS = "id program { id tiers { id } } partner { id } tier { id }"


async def test_viewer_partner_enrollments_lists_only_partner_bs_own(
    api: Api, world: World, as_b: str
) -> None:
    data = await api.data(
        f"{{ viewer {{ partner {{ id enrollments {{ {ENROLLMENT_FIELDS} }} }} }} }}", token=as_b
    )
    partner = data["viewer"]["partner"]
    assert partner["id"] == world.b.id
    assert partner["enrollments"] == [
        {
            "id": world.b.enrollments["shared"],
            "program": {"id": world.programs["shared"], "tiers": [{"id": world.tiers["shared"]}]},
            "partner": {"id": world.b.id},
            "tier": {"id": world.tiers["shared"]},
        }
    ]


async def test_enrollment_program_partner_and_tier_are_partner_bs_own(
    api: Api, world: World, as_b: str
) -> None:
    data = await api.data(
        f"query($id: ID!) {{ node(id: $id) {{ ... on Enrollment {{ {ENROLLMENT_FIELDS} }} }} }}",
        {"id": world.b.enrollments["shared"]},
        as_b,
    )
    assert data["node"]["partner"] == {"id": world.b.id}
    assert data["node"]["program"]["id"] == world.programs["shared"]
    assert data["node"]["tier"] == {"id": world.tiers["shared"]}


PROGRAMS = """{ programs { totalCount edges { node { id tiers { id }
    enrollments { totalCount edges { node { id partner { id } } } } } } } }"""


PROGRAM_ENROLLMENTS = """query($id: ID!, $search: String) { node(id: $id) { ... on Program {
    enrollments(search: $search) { totalCount edges { node { id partner { id } } } } } } }"""


@pytest.mark.parametrize(
    ("search", "admin_sees"),
    [(None, 2), ("Partners", 2), ("Alpha", 1), ("alpha", 1)],
    ids=["no-search", "both-names", "A-name", "A-code"],
)
async def test_program_enrollments_of_the_shared_program_show_only_partner_bs_own(
    api: Api, world: World, as_b: str, search: str | None, admin_sees: int
) -> None:
    variables = {"id": world.programs["shared"], "search": search}
    data = await api.data(PROGRAM_ENROLLMENTS, variables, as_b)
    own = [{"node": {"id": world.b.enrollments["shared"], "partner": {"id": world.b.id}}}]
    expected = [] if search is not None and search.lower() == "alpha" else own
    assert data["node"]["enrollments"] == {"totalCount": len(expected), "edges": expected}
    admin = await api.data(PROGRAM_ENROLLMENTS, variables, world.admin)
    assert admin["node"]["enrollments"]["totalCount"] == admin_sees


async def test_programs_connection_lists_only_partner_bs_programs_with_their_tiers(
    api: Api, world: World, as_b: str
) -> None:
    data = await api.data(PROGRAMS, token=as_b)
    assert data["programs"] == {
        "totalCount": 1,
        "edges": [
            {
                "node": {
                    "id": world.programs["shared"],
                    "tiers": [{"id": world.tiers["shared"]}],
                    "enrollments": {
                        "totalCount": 1,
                        "edges": [
                            {
                                "node": {
                                    "id": world.b.enrollments["shared"],
                                    "partner": {"id": world.b.id},
                                }
                            }
                        ],
                    },
                }
            }
        ],
    }


async def test_programs_connection_lists_partner_as_two_and_every_program_for_the_admin(
    api: Api, world: World
) -> None:
    a = (await api.data(PROGRAMS, token=world.a.token))["programs"]
    assert a["totalCount"] == 2
    assert [e["node"]["id"] for e in a["edges"]] == [
        world.programs["shared"],
        world.programs["only_a"],
    ]
    assert [e["node"]["enrollments"]["totalCount"] for e in a["edges"]] == [1, 1]
    admin = (await api.data(PROGRAMS, token=world.admin))["programs"]
    assert admin["totalCount"] == len(admin["edges"]) == await Program.all().count()
    assert {world.programs["nobody"], world.programs["only_a"]} <= {
        e["node"]["id"] for e in admin["edges"]
    }


async def test_tier_program_of_a_visible_tier_is_the_shared_program(
    api: Api, world: World, as_b: str
) -> None:
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Tier { name program { id } } } }",
        {"id": world.tiers["shared"]},
        as_b,
    )
    assert data["node"] == {"name": "Gold", "program": {"id": world.programs["shared"]}}


# Connections -----------------------------------------------------------------------------------

PARTNERS = """query($search: String, $programId: ID) {
    partners(search: $search, programId: $programId) { totalCount edges { node { id } } } }"""


@pytest.mark.parametrize(
    ("variables", "sees_b"),
    [
        ({}, True),
        ({"search": "Partners"}, True),  # both names match: only B is listed
        ({"search": "example.com"}, True),
        ({"search": "Alpha"}, False),
        ({"search": "alpha@example.com"}, False),
        ({"programId": "shared"}, True),
        ({"programId": "only_a"}, False),
        ({"programId": "nobody"}, False),
        ({"programId": "shared", "search": "Alpha"}, False),
    ],
    ids=lambda v: str(v),
)
async def test_partners_connection_lists_only_partner_b_itself(
    api: Api, world: World, as_b: str, variables: dict[str, str], sees_b: bool
) -> None:
    if "programId" in variables:
        variables = {**variables, "programId": world.programs[variables["programId"]]}
    data = await api.data(PARTNERS, variables, as_b)
    expected = [{"node": {"id": world.b.id}}] if sees_b else []
    assert data["partners"] == {"totalCount": len(expected), "edges": expected}


async def test_partners_connection_lists_both_partners_for_the_admin(
    api: Api, world: World
) -> None:
    for token in (world.admin, world.apps["partners:read"]):
        data = await api.data(PARTNERS, {"programId": world.programs["shared"]}, token)
        assert [e["node"]["id"] for e in data["partners"]["edges"]] == [world.a.id, world.b.id]
        only_a = await api.data(PARTNERS, {"programId": world.programs["only_a"]}, token)
        assert only_a["partners"]["totalCount"] == 1


async def test_viewer_api_tokens_lists_only_partner_bs_tokens(api: Api, world: World) -> None:
    query = "{ viewer { apiTokens { totalCount edges { node { id partner { id } } } } } }"
    data = await api.data(query, token=world.b.token)
    assert data["viewer"]["apiTokens"] == {
        "totalCount": 1,
        "edges": [{"node": {"id": world.b.app_id, "partner": {"id": world.b.id}}}],
    }
    through_app = await api.data(query, token=world.b.app)
    assert through_app["viewer"]["apiTokens"] == {"totalCount": 0, "edges": []}


@pytest.mark.parametrize(
    "who",
    [
        pytest.param(lambda w: w.b.token, id="partner-user"),
        pytest.param(lambda w: w.b.app, id="partner-app"),
        pytest.param(lambda w: w.apps["partners:read"], id="admin-app-partners-read"),
        pytest.param(lambda w: w.apps["programs:write"], id="admin-app-programs-write"),
    ],
)
async def test_only_admins_read_the_audit_log(
    api: Api, world: World, who: Callable[[World], str]
) -> None:
    query = "{ auditLog { totalCount edges { node { id action } } } }"
    body = await api.post(query, token=who(world))
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    admin = await api.data(query, token=world.admin)
    assert admin["auditLog"]["totalCount"] == await AuditEntry.all().count() > 0


# Mutations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(lambda w: (w.a.app_id, w.a.app), id="partner-A-token"),
        pytest.param(
            lambda w: (w.app_ids["programs:read"], w.apps["programs:read"]), id="admin-token"
        ),
    ],
)
async def test_partner_b_revoking_another_partners_token_gets_not_found_and_it_still_works(
    api: Api, world: World, target: Callable[[World], tuple[str, str]]
) -> None:
    token_id, secret = target(world)
    before = await snapshot()
    payload = await api.mutate(
        "revokeApiToken", {"id": token_id}, "apiToken { id revokedAt }", world.b.token
    )
    assert payload == {
        "apiToken": None,
        "userErrors": [{"field": ["id"], "message": "API token not found", "code": "NOT_FOUND"}],
    }
    assert await snapshot() == before
    still = await api.data("{ viewer { kind } }", token=secret)
    assert still == {"viewer": {"kind": "APP"}}


ADMIN_MUTATIONS = [
    pytest.param(
        "createProgram",
        lambda w: {"name": "Mine", "currency": "EUR", "destinationUrl": "https://b.example/"},
        "program { id }",
        id="createProgram",
    ),
    pytest.param(
        "updateProgram",
        lambda w: {"id": w.programs["shared"], "name": "Hijacked"},
        "program { id }",
        id="updateProgram",
    ),
    pytest.param(
        "createTier",
        lambda w: {"programId": w.programs["shared"], "name": "Diamond", "rank": 9},
        "tier { id }",
        id="createTier",
    ),
    pytest.param(
        "updateTier",
        lambda w: {"id": w.tiers["shared"], "name": "Lead"},
        "tier { id }",
        id="updateTier",
    ),
    pytest.param(
        "createPartner",
        lambda w: {"name": "Sock Puppet", "email": "puppet@example.com"},
        "partner { id }",
        id="createPartner",
    ),
    pytest.param(
        "updatePartner",
        lambda w: {"id": w.a.id, "status": "SUSPENDED"},
        "partner { id }",
        id="updatePartner",
    ),
    pytest.param(
        "createPartnerUser",
        lambda w: {"partnerId": w.a.id, "email": "mole@example.com", "password": "x" * 12},
        "partner { id }",
        id="createPartnerUser",
    ),
    pytest.param(
        "enrollPartner",
        lambda w: {"programId": w.programs["only_a"], "partnerId": w.b.id},
        "enrollment { id }",
        id="enrollPartner",
    ),
    pytest.param(
        "updateEnrollment",
        lambda w: {"id": w.a.enrollments["shared"], "status": "SUSPENDED"},
        "enrollment { id }",
        id="updateEnrollment",
    ),
]


@pytest.mark.parametrize(("name", "make_input", "selection"), ADMIN_MUTATIONS)
async def test_partners_cannot_run_admin_mutations_forbidden_and_nothing_changes(
    api: Api,
    world: World,
    as_b: str,
    name: str,
    make_input: Callable[[World], dict[str, Any]],
    selection: str,
) -> None:
    before = await snapshot()
    query = (
        f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
        f"{{ {selection} userErrors {{ code }} }} }}"
    )
    body = await api.post(query, {"input": make_input(world)}, as_b)
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await snapshot() == before


# APP tokens ------------------------------------------------------------------------------------

CREATE_PROGRAM = """mutation($input: CreateProgramInput!) {
    createProgram(input: $input) { program { id name } userErrors { code } } }"""
NEW_PROGRAM = {"name": "App Made", "currency": "USD", "destinationUrl": "https://app.example/"}


async def test_an_app_token_with_only_partners_read_cannot_create_programs(
    api: Api, world: World
) -> None:
    before = await snapshot()
    body = await api.post(CREATE_PROGRAM, {"input": NEW_PROGRAM}, world.apps["partners:read"])
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await snapshot() == before


async def test_an_app_token_with_only_partners_read_cannot_read_programs(
    api: Api, world: World
) -> None:
    token = world.apps["partners:read"]
    body = await api.post("{ programs { totalCount } }", token=token)
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await api.data(NODE, {"id": world.programs["shared"]}, token) == {"node": None}
    assert await api.data(NODE, {"id": world.tiers["shared"]}, token) == {"node": None}
    # nor through an enrollment it may read
    nested = await api.post(
        "query($id: ID!) { node(id: $id) { ... on Enrollment { id program { name } } } }",
        {"id": world.a.enrollments["only_a"]},
        token,
    )
    assert codes(nested) == ["FORBIDDEN"]
    assert "Alpha Exclusive" not in str(nested)
    # what it may read, it reads: every partner
    partners = await api.data("{ partners { totalCount } }", token=token)
    assert partners["partners"]["totalCount"] == 2


async def test_an_app_token_with_only_programs_read_cannot_read_partners(
    api: Api, world: World
) -> None:
    token = world.apps["programs:read"]
    body = await api.post("{ partners { totalCount } }", token=token)
    assert codes(body) == ["FORBIDDEN"]
    assert await api.data(NODE, {"id": world.a.id}, token) == {"node": None}
    assert await api.data(NODE, {"id": world.a.enrollments["shared"]}, token) == {"node": None}
    nested = await api.post(
        """{ programs { edges { node { id enrollments { edges { node {
            partner { name email } } } } } } } }""",
        token=token,
    )
    assert "FORBIDDEN" in codes(nested)
    assert "alpha@example.com" not in str(nested)
    before = await snapshot()
    refused = await api.post(CREATE_PROGRAM, {"input": NEW_PROGRAM}, token)
    assert codes(refused) == ["FORBIDDEN"]
    assert await snapshot() == before


async def test_an_app_token_with_programs_write_creates_and_reads_programs(
    api: Api, world: World
) -> None:
    token = world.apps["programs:write"]
    count = await Program.all().count()
    payload = (await api.data(CREATE_PROGRAM, {"input": NEW_PROGRAM}, token))["createProgram"]
    assert payload["userErrors"] == []
    assert payload["program"]["name"] == "App Made"
    assert await Program.all().count() == count + 1
    listed = await api.data("{ programs { totalCount edges { node { id } } } }", token=token)
    assert listed["programs"]["totalCount"] == count + 1
    assert payload["program"]["id"] in {e["node"]["id"] for e in listed["programs"]["edges"]}
    entry = await AuditEntry.filter(action="createProgram").order_by("-id").first()
    assert entry is not None
    assert entry.actor.startswith("app:admin programs:write (pgt_")
    # a new program nobody is enrolled in stays out of partners' sight
    assert await api.data(NODE, {"id": payload["program"]["id"]}, world.b.token) == {"node": None}


async def test_a_partner_made_token_sees_only_its_partner(api: Api, world: World) -> None:
    token = world.a.app
    viewer = await api.data("{ viewer { kind scopes email partner { id } } }", token=token)
    assert viewer["viewer"] == {
        "kind": "APP",
        "scopes": ["partners:read", "programs:read"],
        "email": None,
        "partner": {"id": world.a.id},
    }
    partners = await api.data(PARTNERS, {}, token)
    assert partners["partners"] == {"totalCount": 1, "edges": [{"node": {"id": world.a.id}}]}
    assert (await api.data(PARTNERS, {"search": "Beta"}, token))["partners"]["totalCount"] == 0
    assert await api.data(NODE, {"id": world.b.id}, token) == {"node": None}
    assert await api.data(NODE, {"id": world.b.enrollments["shared"]}, token) == {"node": None}
    programs = (await api.data(PROGRAMS, token=token))["programs"]
    assert [e["node"]["id"] for e in programs["edges"]] == [
        world.programs["shared"],
        world.programs["only_a"],
    ]
    shared = programs["edges"][0]["node"]["enrollments"]
    assert shared["totalCount"] == 1
    assert shared["edges"][0]["node"]["partner"] == {"id": world.a.id}


CREATE_TOKEN = """mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) {
    token apiToken { id scopes partner { id } } userErrors { field code } } }"""


@pytest.mark.parametrize("scope", ["partners:write", "programs:write", "tracking:write"])
async def test_a_partner_cannot_give_its_token_scopes_beyond_reading(
    api: Api, world: World, scope: str
) -> None:
    before = await snapshot()
    data = await api.data(
        CREATE_TOKEN,
        {"input": {"name": "greedy", "scopes": ["partners:read", scope]}},
        world.b.token,
    )
    assert data["createApiToken"] == {
        "token": None,
        "apiToken": None,
        "userErrors": [{"field": ["scopes"], "code": "FORBIDDEN"}],
    }
    assert await snapshot() == before


async def test_a_partner_makes_a_read_token_for_itself_and_revokes_it(
    api: Api, world: World
) -> None:
    scopes = ["partners:read", "programs:read", "reports:read"]
    data = await api.data(
        CREATE_TOKEN, {"input": {"name": "dashboards", "scopes": scopes}}, world.a.token
    )
    created = data["createApiToken"]
    assert created["userErrors"] == []
    assert created["apiToken"]["scopes"] == scopes
    assert created["apiToken"]["partner"] == {"id": world.a.id}
    secret = created["token"]
    assert (await api.data("{ viewer { partner { id } } }", token=secret))["viewer"] == {
        "partner": {"id": world.a.id}
    }
    revoked = await api.mutate(
        "revokeApiToken", {"id": created["apiToken"]["id"]}, "apiToken { revokedAt }", world.a.token
    )
    assert revoked["userErrors"] == []
    assert revoked["apiToken"]["revokedAt"] is not None
    refused = await api.client.post(
        "/graphql",
        json={"query": "{ viewer { kind } }"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "who",
    [
        pytest.param(lambda w: w.apps["programs:write"], id="admin-made-app"),
        pytest.param(lambda w: w.a.app, id="partner-made-app"),
    ],
)
async def test_an_app_token_cannot_create_or_revoke_api_tokens(
    api: Api, world: World, who: Callable[[World], str]
) -> None:
    before = await snapshot()
    created = await api.post(
        CREATE_TOKEN, {"input": {"name": "child", "scopes": ["partners:read"]}}, who(world)
    )
    assert codes(created) == ["FORBIDDEN"]
    assert created["data"] is None
    revoked = await api.post(
        "mutation($input: RevokeApiTokenInput!) { revokeApiToken(input: $input) { "
        "apiToken { id } } }",
        {"input": {"id": world.a.app_id}},
        who(world),
    )
    assert codes(revoked) == ["FORBIDDEN"]
    assert await snapshot() == before


# Anonymous -------------------------------------------------------------------------------------

_SAMPLE_SCALARS: dict[str, Any] = {
    "ID": "UHJvZ3JhbTox",  # Program:1
    "String": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": True,
    "DateTime": "2030-01-01T00:00:00+00:00",
    "Decimal": "1",
    "JSON": {},
}


def _sample(type_: graphql.GraphQLInputType) -> Any:
    """A value of an input type that passes coercion (required fields only)."""
    if isinstance(type_, graphql.GraphQLNonNull):
        return _sample(type_.of_type)
    if isinstance(type_, graphql.GraphQLList):
        return [_sample(type_.of_type)]
    if isinstance(type_, graphql.GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, graphql.GraphQLInputObjectType):
        return {
            name: _sample(field.type)
            for name, field in type_.fields.items()
            if graphql.is_required_input_field(field)
        }
    assert isinstance(type_, graphql.GraphQLScalarType)
    return _SAMPLE_SCALARS.get(type_.name, "x")


def _operations() -> list[Any]:
    """One operation per root field but `viewer`, with valid values for its required args."""
    schema = graphql.build_schema(build_schema().as_str())
    operations = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, field in root.fields.items():
            if name == "viewer":
                continue
            required = {
                a: arg for a, arg in field.args.items() if graphql.is_required_argument(arg)
            }
            declared = ", ".join(f"${a}: {arg.type}" for a, arg in required.items())
            passed = ", ".join(f"{a}: ${a}" for a in required)
            named = graphql.get_named_type(field.type)
            selection = " { __typename }" if graphql.is_composite_type(named) else ""
            document = (
                f"{kind}{f'({declared})' if declared else ''} "
                f"{{ {name}{f'({passed})' if passed else ''}{selection} }}"
            )
            variables = {a: _sample(arg.type) for a, arg in required.items()}
            operations.append(pytest.param(name, document, variables, id=f"{kind}-{name}"))
    return operations


@pytest.mark.parametrize(("field", "document", "variables"), _operations())
async def test_anonymous_callers_get_unauthenticated_for_every_field_but_viewer(
    api: Api, world: World, field: str, document: str, variables: dict[str, Any]
) -> None:
    before = await snapshot()
    body = await api.post(document, variables)
    assert codes(body) == ["UNAUTHENTICATED"], body
    assert body["errors"][0]["path"] == [field]
    assert body["data"] is None or body["data"][field] is None
    assert await snapshot() == before


async def test_anonymous_callers_may_ask_the_viewer(api: Api, world: World) -> None:
    data = await api.data(
        "{ viewer { kind scopes email partner { id } apiTokens { totalCount } } }"
    )
    assert data["viewer"] == {
        "kind": "ANONYMOUS",
        "scopes": [],
        "email": None,
        "partner": None,
        "apiTokens": {"totalCount": 0},
    }
