"""Referral links through the API: creating, changing and reading them, who may, and where a
link may lead (no open redirects)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.relay import to_global_id
from domain.audit.models import AuditEntry
from domain.settings import Settings
from domain.tracking.link_rules import ALPHABET, GENERATED_LENGTH
from domain.tracking.models import ReferralLink, Touchpoint, TouchpointKind
from portal.app import create_app
from tests.helpers import Api, pk

PROGRAM_URL = "https://acme.example/"
LINK = "referralLink { id code url destinationUrl clicks utmSource utmMedium utmCampaign disabled"
LINK_FIELDS = f"{LINK} enrollment {{ id }} }}"


@dataclass
class World:
    admin: str
    program: str
    a: dict[str, Any]  # partner A: id, token, enrollmentId
    b: dict[str, Any]


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    program = await api.program(admin)
    a = await api.partner(admin, "Anna", "anna@example.com", program)
    b = await api.partner(admin, "Bob", "bob@example.com", program)
    return World(admin, program, a, b)


async def create(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    return await api.mutate("createReferralLink", fields, LINK_FIELDS, token)


async def update(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    return await api.mutate("updateReferralLink", fields, LINK_FIELDS, token)


def error(payload: dict[str, Any]) -> tuple[list[str] | None, str]:
    assert payload["referralLink"] is None, payload
    assert len(payload["userErrors"]) == 1, payload
    only = payload["userErrors"][0]
    return only["field"], only["code"]


async def stored() -> list[tuple[str, str | None, bool]]:
    rows = await ReferralLink.all().order_by("id")
    return [(r.code, r.destination_url, r.disabled) for r in rows]


async def app_token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "t", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


# Creating -----------------------------------------------------------------------------------


async def test_a_link_without_a_code_gets_a_readable_generated_one_and_the_program_destination(
    api: Api, world: World
) -> None:
    payload = await create(api, world.admin, enrollmentId=world.a["enrollmentId"])
    assert payload["userErrors"] == []
    link = payload["referralLink"]
    code = link["code"]
    assert len(code) == GENERATED_LENGTH
    assert set(code) <= set(ALPHABET)
    assert link == {
        "id": to_global_id("ReferralLink", pk(link["id"])),
        "code": code,
        "url": f"http://localhost:8000/r/{code}",
        "destinationUrl": PROGRAM_URL,
        "clicks": 0,
        "utmSource": None,
        "utmMedium": None,
        "utmCampaign": None,
        "disabled": False,
        "enrollment": {"id": world.a["enrollmentId"]},
    }
    row = await ReferralLink.get(id=pk(link["id"]))
    assert (row.code_key, row.destination_url) == (code.lower(), None)
    entry = await AuditEntry.get(action="createReferralLink")
    assert (entry.entity_type, entry.entity_pk) == ("ReferralLink", row.pk)
    assert entry.actor == "admin:admin@example.com"
    assert entry.after is not None
    assert entry.after["code"] == code


async def test_a_vanity_code_with_destination_and_utm_defaults(api: Api, world: World) -> None:
    payload = await create(
        api,
        world.a["token"],
        enrollmentId=world.a["enrollmentId"],
        code="Spring-Sale_26",
        destinationUrl="https://shop.acme.example/spring?x=1",
        utmSource="newsletter",
        utmMedium="email",
        utmCampaign="spring",
    )
    assert payload["userErrors"] == []
    link = payload["referralLink"]
    assert link["code"] == "Spring-Sale_26"
    assert link["url"] == "http://localhost:8000/r/Spring-Sale_26"
    assert link["destinationUrl"] == "https://shop.acme.example/spring?x=1"
    assert (link["utmSource"], link["utmMedium"], link["utmCampaign"]) == (
        "newsletter",
        "email",
        "spring",
    )
    row = await ReferralLink.get(id=pk(link["id"]))
    assert row.code_key == "spring-sale_26"


async def test_a_vanity_code_taken_by_another_link_in_any_case_is_a_conflict(
    api: Api, world: World
) -> None:
    first = await create(api, world.a["token"], enrollmentId=world.a["enrollmentId"], code="Deal")
    assert first["userErrors"] == []
    before = await stored()
    for taken in ("deal", "DEAL", "Deal"):
        again = await create(
            api, world.b["token"], enrollmentId=world.b["enrollmentId"], code=taken
        )
        assert error(again) == (["code"], "CONFLICT")
    assert await stored() == before


async def test_a_vanity_code_equal_to_an_enrollments_referral_code_is_a_conflict(
    api: Api, world: World
) -> None:
    enrolled = await api.partner(world.admin, "Cara", "cara@example.com")
    payload = await api.mutate(
        "enrollPartner",
        {"programId": world.program, "partnerId": enrolled["id"], "referralCode": "CARA10"},
        "enrollment { id }",
        world.admin,
    )
    assert payload["userErrors"] == []
    refused = await create(
        api, world.a["token"], enrollmentId=world.a["enrollmentId"], code="cara10"
    )
    assert error(refused) == (["code"], "CONFLICT")
    assert await stored() == []


@pytest.mark.parametrize(
    ("code", "problem"),
    [("ab", "3 to 64"), ("x" * 65, "3 to 64"), ("sp ace", "letters"), ("a/b", "letters")],
)
async def test_a_malformed_vanity_code_is_invalid(
    api: Api, world: World, code: str, problem: str
) -> None:
    payload = await create(api, world.admin, enrollmentId=world.a["enrollmentId"], code=code)
    assert error(payload) == (["code"], "INVALID")
    assert problem in payload["userErrors"][0]["message"]
    assert await stored() == []


async def test_every_bad_field_is_reported_at_once(api: Api, world: World) -> None:
    payload = await create(
        api,
        world.admin,
        enrollmentId=world.a["enrollmentId"],
        code="no",
        destinationUrl="https://evil.com/",
        utmSource="",
    )
    assert payload["referralLink"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["code"], "INVALID"),
        (["destinationUrl"], "INVALID"),
        (["utmSource"], "INVALID"),
    ]
    assert await stored() == []


ACCEPTED = [
    "https://acme.example/pricing",
    "http://acme.example/",
    "https://www.acme.example/landing?ref=1",
    "https://eu.shop.acme.example/",
    "https://partners.example.org/offer",
]
REFUSED = [
    "https://evil.com/",
    "https://acme.example.evil.com/",
    "https://evilacme.example/",
    "https://www.partners.example.org/",  # an allowed domain is exact
    "//evil.com",
    "/r/elsewhere",
    "javascript:alert(document.cookie)",
    "data:text/html,hi",
    "https://user:secret@acme.example/",
    "https://acme.example@evil.com/",
    "https://evil.com\\.acme.example/",
    "https://acme.example/with space",
]


async def test_destinations_on_the_program_host_a_subdomain_or_an_allowed_domain_are_accepted(
    api: Api, world: World
) -> None:
    changed = await api.mutate(
        "updateProgram",
        {"id": world.program, "allowedDomains": ["Partners.Example.org"]},
        "program { allowedDomains }",
        world.admin,
    )
    assert changed == {"program": {"allowedDomains": ["partners.example.org"]}, "userErrors": []}
    for destination in ACCEPTED:
        payload = await create(
            api, world.a["token"], enrollmentId=world.a["enrollmentId"], destinationUrl=destination
        )
        assert payload["userErrors"] == [], destination
        assert payload["referralLink"]["destinationUrl"] == destination
    assert [d for _, d, _ in await stored()] == ACCEPTED


async def test_destinations_elsewhere_are_refused_as_open_redirects(api: Api, world: World) -> None:
    changed = await api.mutate(
        "updateProgram",
        {"id": world.program, "allowedDomains": ["partners.example.org"]},
        "program { id }",
        world.admin,
    )
    assert changed["userErrors"] == []
    for destination in [*REFUSED, "https://other.example/"]:
        payload = await create(
            api, world.a["token"], enrollmentId=world.a["enrollmentId"], destinationUrl=destination
        )
        assert error(payload) == (["destinationUrl"], "INVALID"), destination
    assert await stored() == []


async def test_without_allowed_domains_only_the_program_host_is_accepted(
    api: Api, world: World
) -> None:
    payload = await create(
        api,
        world.a["token"],
        enrollmentId=world.a["enrollmentId"],
        destinationUrl="https://partners.example.org/offer",
    )
    assert error(payload) == (["destinationUrl"], "INVALID")
    assert await stored() == []


async def test_a_suspended_enrollment_gets_no_new_links(api: Api, world: World) -> None:
    suspended = await api.mutate(
        "updateEnrollment",
        {"id": world.a["enrollmentId"], "status": "SUSPENDED"},
        "enrollment { status }",
        world.admin,
    )
    assert suspended["userErrors"] == []
    for token in (world.admin, world.a["token"]):
        payload = await create(api, token, enrollmentId=world.a["enrollmentId"])
        assert error(payload) == (["enrollmentId"], "FORBIDDEN")
    assert await stored() == []


# Who may ------------------------------------------------------------------------------------


async def test_a_partner_cannot_create_a_link_for_another_partners_enrollment(
    api: Api, world: World
) -> None:
    payload = await create(
        api, world.b["token"], enrollmentId=world.a["enrollmentId"], code="Stolen"
    )
    assert error(payload) == (["enrollmentId"], "NOT_FOUND")
    assert payload["userErrors"][0]["message"] == "enrollment not found"
    missing = await create(
        api, world.b["token"], enrollmentId=to_global_id("Enrollment", 999_999), code="Stolen"
    )
    assert missing["userErrors"] == payload["userErrors"]  # the same answer: nothing leaks
    wrong_type = await create(api, world.b["token"], enrollmentId=world.program)
    assert error(wrong_type) == (["enrollmentId"], "NOT_FOUND")
    assert await stored() == []
    assert not await AuditEntry.filter(action="createReferralLink").exists()


async def test_a_partner_cannot_change_or_read_another_partners_link(
    api: Api, world: World
) -> None:
    made = await create(api, world.a["token"], enrollmentId=world.a["enrollmentId"], code="Mine")
    link_id = made["referralLink"]["id"]
    before = await stored()
    refused = await update(api, world.b["token"], id=link_id, disabled=True)
    assert error(refused) == (["id"], "NOT_FOUND")
    refused = await update(
        api, world.b["token"], id=link_id, destinationUrl="https://acme.example/b"
    )
    assert error(refused) == (["id"], "NOT_FOUND")
    assert await stored() == before
    query = "query($id: ID!) { node(id: $id) { id } }"
    assert (await api.data(query, {"id": link_id}, world.b["token"]))["node"] is None
    assert (await api.data(query, {"id": link_id}, world.a["token"]))["node"] == {"id": link_id}
    enrollment = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Enrollment { links { code } } } }",
        {"id": world.a["enrollmentId"]},
        world.b["token"],
    )
    assert enrollment["node"] is None
    mine = await api.data(
        "{ viewer { partner { enrollments { links { code } } } } }", token=world.b["token"]
    )
    assert mine["viewer"]["partner"]["enrollments"] == [{"links": []}]


async def test_an_admin_app_token_with_partners_write_creates_links(api: Api, world: World) -> None:
    token = await app_token(api, world.admin, ["partners:write"])
    payload = await create(api, token, enrollmentId=world.b["enrollmentId"], code="FromApp")
    assert payload["userErrors"] == []
    assert payload["referralLink"]["enrollment"] == {"id": world.b["enrollmentId"]}
    entry = await AuditEntry.get(action="createReferralLink")
    assert entry.actor.startswith("app:")


async def test_app_tokens_without_partners_write_cannot_create_links(
    api: Api, world: World
) -> None:
    readers = [
        await app_token(api, world.admin, ["partners:read", "tracking:write"]),
        await app_token(api, world.a["token"], ["partners:read"]),  # a partner's: reads only
    ]
    for token in readers:
        body = await api.post(
            "mutation($i: CreateReferralLinkInput!) { createReferralLink(input: $i) "
            "{ referralLink { id } } }",
            {"i": {"enrollmentId": world.a["enrollmentId"]}},
            token,
        )
        assert codes(body) == ["FORBIDDEN"], body
    assert await stored() == []


async def test_app_tokens_read_links_with_partners_read_only(api: Api, world: World) -> None:
    made = await create(api, world.a["token"], enrollmentId=world.a["enrollmentId"], code="Read")
    link_id = made["referralLink"]["id"]
    query = (
        "query($id: ID!) { node(id: $id) { ... on ReferralLink { code destinationUrl clicks "
        "enrollment { id } } } }"
    )
    expected = {
        "code": "Read",
        "destinationUrl": PROGRAM_URL,
        "clicks": 0,
        "enrollment": {"id": world.a["enrollmentId"]},
    }
    reader = await app_token(api, world.admin, ["partners:read"])
    assert (await api.data(query, {"id": link_id}, reader))["node"] == expected
    own = await app_token(api, world.a["token"], ["partners:read"])
    assert (await api.data(query, {"id": link_id}, own))["node"] == expected
    others = await app_token(api, world.b["token"], ["partners:read"])
    assert (await api.data(query, {"id": link_id}, others))["node"] is None
    unscoped = await app_token(api, world.admin, ["programs:read"])
    assert (await api.data(query, {"id": link_id}, unscoped))["node"] is None


# Changing -----------------------------------------------------------------------------------


async def test_a_partner_disables_changes_and_resets_its_link(api: Api, world: World) -> None:
    made = await create(
        api,
        world.a["token"],
        enrollmentId=world.a["enrollmentId"],
        code="Change",
        utmSource="blog",
    )
    link_id = made["referralLink"]["id"]
    disabled = await update(api, world.a["token"], id=link_id, disabled=True)
    assert disabled["userErrors"] == []
    assert disabled["referralLink"]["disabled"] is True
    assert disabled["referralLink"]["utmSource"] == "blog"  # left out: kept
    moved = await update(
        api, world.a["token"], id=link_id, destinationUrl="https://www.acme.example/x"
    )
    assert moved["referralLink"]["destinationUrl"] == "https://www.acme.example/x"
    assert moved["referralLink"]["disabled"] is True
    reset = await update(api, world.a["token"], id=link_id, destinationUrl=None, utmSource=None)
    assert reset["referralLink"]["destinationUrl"] == PROGRAM_URL
    assert reset["referralLink"]["utmSource"] is None
    assert await stored() == [("Change", None, True)]
    actions = await AuditEntry.filter(action="updateReferralLink").count()
    assert actions == 3


async def test_an_update_to_an_open_redirect_is_refused_and_changes_nothing(
    api: Api, world: World
) -> None:
    made = await create(api, world.admin, enrollmentId=world.a["enrollmentId"], code="Stay")
    link_id = made["referralLink"]["id"]
    before = await stored()
    for destination in ("https://evil.com/", "//evil.com", "javascript:alert(1)"):
        refused = await update(
            api, world.admin, id=link_id, destinationUrl=destination, disabled=True
        )
        assert error(refused) == (["destinationUrl"], "INVALID")
    assert await stored() == before
    missing = await update(api, world.admin, id=to_global_id("ReferralLink", 999_999))
    assert error(missing) == (["id"], "NOT_FOUND")


# Reading ------------------------------------------------------------------------------------


async def _click(link: ReferralLink, n: int, **fields: Any) -> None:
    fields.setdefault("kind", TouchpointKind.CLICK)
    for i in range(n):
        await Touchpoint.create(
            program_id=link.program_id,
            enrollment_id=link.enrollment_id,
            occurred_at=datetime(2026, 1, 1, 12, i, tzinfo=UTC),
            link_id=link.pk,
            **fields,
        )


async def test_enrollment_links_are_listed_newest_first_with_their_counted_clicks(
    api: Api, world: World
) -> None:
    for code in ("One", "Two", "Three"):
        made = await create(api, world.a["token"], enrollmentId=world.a["enrollmentId"], code=code)
        assert made["userErrors"] == []
    other = await create(api, world.b["token"], enrollmentId=world.b["enrollmentId"], code="Bobs")
    assert other["userErrors"] == []
    one, two, _three, bs = await ReferralLink.all().order_by("id")
    await _click(one, 3)
    await _click(one, 2, excluded=True, exclusion_reason="FLAGGED")  # not counted
    await _click(one, 1, kind=TouchpointKind.LEAD)  # not a click
    await _click(two, 1)
    await _click(bs, 4)
    query = "{ viewer { partner { enrollments { links { code clicks url } } } } }"
    data = await api.data(query, token=world.a["token"])
    assert data["viewer"]["partner"]["enrollments"] == [
        {
            "links": [
                {"code": "Three", "clicks": 0, "url": "http://localhost:8000/r/Three"},
                {"code": "Two", "clicks": 1, "url": "http://localhost:8000/r/Two"},
                {"code": "One", "clicks": 3, "url": "http://localhost:8000/r/One"},
            ]
        }
    ]
    admin_view = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Enrollment { links { code clicks } } } }",
        {"id": world.b["enrollmentId"]},
        world.admin,
    )
    assert admin_view["node"]["links"] == [{"code": "Bobs", "clicks": 4}]


LISTING = """query($id: ID!) { node(id: $id) { ... on Program { enrollments(first: 50) { edges {
  node { links { id code url destinationUrl clicks disabled enrollment { referralCode } } } } } } }
}"""


async def _queries_for_links(
    api: Api, world: World, caplog: pytest.LogCaptureFixture, per_enrollment: int
) -> int:
    for side in (world.a, world.b):
        for _ in range(per_enrollment):
            made = await create(api, world.admin, enrollmentId=side["enrollmentId"])
            assert made["userErrors"] == []
    for link in await ReferralLink.all():
        await _click(link, 1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        data = await api.data(LISTING, {"id": world.program}, world.admin)
    edges = data["node"]["enrollments"]["edges"]
    assert sum(len(e["node"]["links"]) for e in edges) == 2 * per_enrollment
    assert all(link["clicks"] == 1 for e in edges for link in e["node"]["links"])
    await ReferralLink.all().delete()
    return sum(1 for r in caplog.records if r.name == "tortoise.db_client")


async def test_listing_more_links_costs_no_more_queries(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    few = await _queries_for_links(api, world, caplog, 1)
    many = await _queries_for_links(api, world, caplog, 6)
    assert few > 0
    assert many == few


# Programs' allowed domains ------------------------------------------------------------------


async def test_allowed_domains_are_hosts_stored_lower_case_without_repeats(
    api: Api, world: World
) -> None:
    created = await api.mutate(
        "createProgram",
        {
            "name": "Shop",
            "currency": "EUR",
            "destinationUrl": "https://shop.example/",
            "allowedDomains": [" Blog.Shop.example ", "docs.example", "DOCS.example"],
        },
        "program { id allowedDomains }",
        world.admin,
    )
    assert created["userErrors"] == []
    assert created["program"]["allowedDomains"] == ["blog.shop.example", "docs.example"]
    program = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { allowedDomains } } }",
        {"id": world.program},
        world.admin,
    )
    assert program["node"] == {"allowedDomains": []}
    cleared = await api.mutate(
        "updateProgram",
        {"id": created["program"]["id"], "allowedDomains": []},
        "program { allowedDomains }",
        world.admin,
    )
    assert cleared["program"] == {"allowedDomains": []}


@pytest.mark.parametrize(
    ("domains", "field"),
    [
        (["ok.example", "https://evil.com"], ["allowedDomains", "1"]),
        (["*.example.com"], ["allowedDomains", "0"]),
        (["evil.com/path"], ["allowedDomains", "0"]),
        ([f"d{i}.example" for i in range(21)], ["allowedDomains"]),
    ],
)
async def test_bad_allowed_domains_are_refused_and_change_nothing(
    api: Api, world: World, domains: list[str], field: list[str]
) -> None:
    payload = await api.mutate(
        "updateProgram",
        {"id": world.program, "allowedDomains": domains},
        "program { allowedDomains }",
        world.admin,
    )
    assert payload["program"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, "INVALID")]
    program = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { allowedDomains } } }",
        {"id": world.program},
        world.admin,
    )
    assert program["node"] == {"allowedDomains": []}


async def test_link_urls_start_with_the_configured_public_url(
    api: Api, world: World, settings: Settings
) -> None:
    made = await create(api, world.a["token"], enrollmentId=world.a["enrollmentId"], code="Pub")
    assert made["userErrors"] == []
    app = create_app(
        settings.model_copy(update={"public_url": "https://partners.acme.example/"}),
        manage_database=False,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        data = await Api(client).data(
            "{ viewer { partner { enrollments { links { url } } } } }", token=world.a["token"]
        )
    links = data["viewer"]["partner"]["enrollments"][0]["links"]
    assert links == [{"url": "https://partners.acme.example/r/Pub"}]
