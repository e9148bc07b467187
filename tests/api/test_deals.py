"""Deal registration through the API: one prospect under many spellings, the first approved
registration owns it, protection ends, approval is a DEAL touchpoint, rejection says why, and
who may do what (a partner only its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.relay import to_global_id
from domain.audit.models import AuditEntry
from domain.tracking.models import Customer, Deal, DealStatus, Touchpoint, TouchpointKind
from tests.helpers import Api, pk

DEAL = (
    "deal { id companyName contactEmail amount { amount currency } status reason protectedUntil }"
)


@dataclass
class World:
    admin: str
    program: str
    a: dict[str, Any]
    b: dict[str, Any]


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    program = await api.program(admin)
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    return World(admin, program, a, b)


async def register(
    api: Api, token: str, enrollment: str, company: str, **more: Any
) -> dict[str, Any]:
    return await api.mutate(
        "registerDeal", {"enrollmentId": enrollment, "companyName": company, **more}, DEAL, token
    )


async def approve(api: Api, token: str, deal_id: str) -> dict[str, Any]:
    return await api.mutate("approveDeal", {"id": deal_id}, DEAL, token)


async def app_token(api: Api, admin: str, scopes: list[str]) -> str:
    payload = await api.mutate("createApiToken", {"name": "crm", "scopes": scopes}, "token", admin)
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def test_a_partner_registers_a_prospect_for_its_own_enrollment(
    api: Api, world: World
) -> None:
    payload = await register(
        api,
        world.a["token"],
        world.a["enrollmentId"],
        "  ACME, Inc. ",
        contactEmail=" Buyer@ACME.example ",
        amount="1200.50",
    )
    assert payload["userErrors"] == []
    deal = payload["deal"]
    assert deal["companyName"] == "ACME, Inc."
    assert deal["contactEmail"] == "buyer@acme.example"
    assert deal["amount"] == {"amount": "1200.50", "currency": "EUR"}
    assert deal["status"] == "PENDING"
    assert deal["protectedUntil"] is None
    row = await Deal.get(id=pk(deal["id"]))
    assert (row.company_key, row.amount_minor) == ("acme", 120050)
    assert await AuditEntry.filter(action="registerDeal", entity_pk=row.pk).count() == 1


async def test_the_first_approved_registration_owns_the_prospect_and_a_later_one_conflicts(
    api: Api, world: World
) -> None:
    first = await register(api, world.a["token"], world.a["enrollmentId"], "ACME, Inc.")
    second = await register(api, world.b["token"], world.b["enrollmentId"], "acme inc")
    assert second["userErrors"] == []  # nothing approved yet: both may ask
    approved = await approve(api, world.admin, first["deal"]["id"])
    assert approved["userErrors"] == []
    until = approved["deal"]["protectedUntil"]
    assert approved["deal"]["status"] == "APPROVED"
    # the later registration cannot be approved any more
    refused = await approve(api, world.admin, second["deal"]["id"])
    assert codes(refused) == [(["companyName"], "CONFLICT")]
    assert until in refused["userErrors"][0]["message"]
    assert "Alpha" not in refused["userErrors"][0]["message"]
    assert (await Deal.get(id=pk(second["deal"]["id"]))).status is DealStatus.PENDING
    # and a new registration by B is refused, saying until when, never who
    before = await Deal.all().count()
    again = await register(api, world.b["token"], world.b["enrollmentId"], "Acmé  Inc")
    assert codes(again) == [(["companyName"], "CONFLICT")]
    message = again["userErrors"][0]["message"]
    assert until in message
    assert "Alpha" not in message
    assert "a@example.com" not in message
    assert again["deal"] is None
    assert await Deal.all().count() == before


async def test_approval_protects_for_the_programs_period_and_records_a_deal_touchpoint(
    api: Api, world: World
) -> None:
    registered = await register(
        api, world.a["token"], world.a["enrollmentId"], "Globex GmbH", customerId="cust-9"
    )
    started = datetime.now(UTC)
    approved = await approve(api, world.admin, registered["deal"]["id"])
    assert approved["userErrors"] == []
    deal = await Deal.get(id=pk(registered["deal"]["id"]))
    assert deal.decided_at is not None
    assert deal.protected_until is not None
    assert deal.protected_until - deal.decided_at == timedelta(days=90)
    assert started <= deal.decided_at <= datetime.now(UTC)
    touchpoint = await Touchpoint.get(id=deal.touchpoint_id)
    customer = await Customer.get(external_id="cust-9")
    assert touchpoint.kind is TouchpointKind.DEAL
    assert str(touchpoint.role) == "SOURCE"
    assert touchpoint.enrollment_id == pk(world.a["enrollmentId"])
    assert touchpoint.occurred_at == deal.decided_at
    assert touchpoint.occurred_us > 0
    assert touchpoint.customer_id == customer.pk
    assert await AuditEntry.filter(action="approveDeal", entity_pk=deal.pk).count() == 1


async def test_approval_finds_an_existing_customer_and_works_without_one(
    api: Api, world: World
) -> None:
    customer = await Customer.create(program_id=pk(world.program), external_id="known")
    with_customer = await register(
        api, world.a["token"], world.a["enrollmentId"], "Initech", customerId="known"
    )
    without = await register(api, world.b["token"], world.b["enrollmentId"], "Hooli")
    await approve(api, world.admin, with_customer["deal"]["id"])
    await approve(api, world.admin, without["deal"]["id"])
    assert await Customer.all().count() == 1
    deals = {d.company_key: d for d in await Deal.all()}
    assert (await Touchpoint.get(id=deals["initech"].touchpoint_id)).customer_id == customer.pk
    assert (await Touchpoint.get(id=deals["hooli"].touchpoint_id)).customer_id is None


async def test_expired_protection_allows_a_new_registration_and_its_approval(
    api: Api, world: World
) -> None:
    first = await register(api, world.a["token"], world.a["enrollmentId"], "Umbrella Corp")
    await approve(api, world.admin, first["deal"]["id"])
    await Deal.filter(id=pk(first["deal"]["id"])).update(
        protected_until=datetime.now(UTC) - timedelta(seconds=1)
    )
    later = await register(api, world.b["token"], world.b["enrollmentId"], "umbrella")
    assert later["userErrors"] == []
    assert (await approve(api, world.admin, later["deal"]["id"]))["userErrors"] == []
    # A's own expired deal no longer blocks A either, but B's protection now does
    mine = await register(api, world.a["token"], world.a["enrollmentId"], "Umbrella")
    assert codes(mine) == [(["companyName"], "CONFLICT")]


async def test_registering_the_same_prospect_twice_is_a_conflict(api: Api, world: World) -> None:
    first = await register(api, world.a["token"], world.a["enrollmentId"], "Stark Industries")
    again = await register(api, world.a["token"], world.a["enrollmentId"], "stark industries")
    assert codes(again) == [(["companyName"], "CONFLICT")]
    await approve(api, world.admin, first["deal"]["id"])
    approved_again = await register(
        api, world.a["token"], world.a["enrollmentId"], "Stark Industries Inc"
    )
    assert codes(approved_again) == [(["companyName"], "CONFLICT")]
    assert await Deal.all().count() == 1


async def test_a_rejected_deal_says_why_and_can_be_registered_again(api: Api, world: World) -> None:
    first = await register(api, world.a["token"], world.a["enrollmentId"], "Wayne Enterprises")
    blank = await api.mutate(
        "rejectDeal", {"id": first["deal"]["id"], "reason": "   "}, DEAL, world.admin
    )
    assert codes(blank) == [(["reason"], "INVALID")]
    rejected = await api.mutate(
        "rejectDeal",
        {"id": first["deal"]["id"], "reason": "already our customer"},
        DEAL,
        world.admin,
    )
    assert rejected["userErrors"] == []
    assert rejected["deal"]["status"] == "REJECTED"
    assert rejected["deal"]["reason"] == "already our customer"
    entry = await AuditEntry.get(action="rejectDeal")
    assert entry.reason == "already our customer"
    # decided deals are final
    assert codes(await approve(api, world.admin, first["deal"]["id"])) == [(["id"], "CONFLICT")]
    again = await api.mutate(
        "rejectDeal", {"id": first["deal"]["id"], "reason": "again"}, DEAL, world.admin
    )
    assert codes(again) == [(["id"], "CONFLICT")]
    assert (await Deal.get(id=pk(first["deal"]["id"]))).reason == "already our customer"
    # a rejected registration does not block a new one
    new = await register(api, world.a["token"], world.a["enrollmentId"], "Wayne Enterprises")
    assert new["userErrors"] == []


@pytest.mark.parametrize(
    ("more", "errors"),
    [
        ({"companyName": ""}, [(["companyName"], "INVALID")]),
        ({"companyName": "x" * 201}, [(["companyName"], "INVALID")]),
        ({"companyName": "!!! ..."}, [(["companyName"], "INVALID")]),
        ({"contactEmail": "not-an-email"}, [(["contactEmail"], "INVALID")]),
        ({"amount": "1.234"}, [(["amount"], "INVALID")]),
        ({"amount": "-1"}, [(["amount"], "INVALID")]),
        ({"customerId": "x" * 201}, [(["customerId"], "INVALID")]),
        (
            {"companyName": " ", "contactEmail": "@", "amount": "0.001"},
            [(["companyName"], "INVALID"), (["contactEmail"], "INVALID"), (["amount"], "INVALID")],
        ),
        ({"enrollmentId": "nope"}, [(["enrollmentId"], "NOT_FOUND")]),
        ({"enrollmentId": to_global_id("Enrollment", 999_999)}, [(["enrollmentId"], "NOT_FOUND")]),
    ],
)
async def test_bad_registrations_answer_precise_errors_and_store_nothing(
    api: Api, world: World, more: dict[str, Any], errors: list[tuple[list[str], str]]
) -> None:
    input_ = {"enrollmentId": world.a["enrollmentId"], "companyName": "Acme", **more}
    payload = await api.mutate("registerDeal", input_, DEAL, world.a["token"])
    assert codes(payload) == errors
    assert payload["deal"] is None
    assert await Deal.all().count() == 0
    assert await AuditEntry.filter(action="registerDeal").count() == 0


async def test_a_partner_cannot_register_for_another_partners_enrollment(
    api: Api, world: World
) -> None:
    payload = await register(api, world.b["token"], world.a["enrollmentId"], "Acme")
    assert codes(payload) == [(["enrollmentId"], "NOT_FOUND")]
    assert await Deal.all().count() == 0


async def test_a_partner_cannot_register_for_a_suspended_enrollment_but_an_admin_can(
    api: Api, world: World
) -> None:
    updated = await api.mutate(
        "updateEnrollment",
        {"id": world.a["enrollmentId"], "status": "SUSPENDED"},
        "enrollment { status }",
        world.admin,
    )
    assert updated["userErrors"] == []
    refused = await register(api, world.a["token"], world.a["enrollmentId"], "Acme")
    assert codes(refused) == [(["enrollmentId"], "INVALID")]
    assert await Deal.all().count() == 0
    allowed = await register(api, world.admin, world.a["enrollmentId"], "Acme")
    assert allowed["userErrors"] == []


async def test_partners_cannot_decide_deals(api: Api, world: World) -> None:
    deal = (await register(api, world.a["token"], world.a["enrollmentId"], "Acme"))["deal"]
    for name, input_ in (
        ("approveDeal", {"id": deal["id"]}),
        ("rejectDeal", {"id": deal["id"], "reason": "no"}),
    ):
        body = await api.post(
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) "
            f"{{ {name}(input: $input) {{ deal {{ id }} }} }}",
            {"input": input_},
            world.a["token"],
        )
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert (await Deal.get(id=pk(deal["id"]))).status is DealStatus.PENDING


async def test_app_tokens_decide_deals_with_partners_write_only(api: Api, world: World) -> None:
    deal = (await register(api, world.a["token"], world.a["enrollmentId"], "Acme"))["deal"]
    reader = await app_token(api, world.admin, ["partners:read"])
    writer = await app_token(api, world.admin, ["partners:write"])
    body = await api.post(
        "mutation($id: ID!) { approveDeal(input: {id: $id}) { deal { id } } }",
        {"id": deal["id"]},
        reader,
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert (await approve(api, writer, deal["id"]))["userErrors"] == []
    entry = await AuditEntry.get(action="approveDeal")
    assert entry.actor.startswith("app:")
    # a partner-made token only reads: it may not register
    partner_token = await app_token(api, world.a["token"], ["partners:read"])
    body = await api.post(
        'mutation($e: ID!) { registerDeal(input: {enrollmentId: $e, companyName: "X"}) '
        "{ deal { id } } }",
        {"e": world.a["enrollmentId"]},
        partner_token,
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await Deal.all().count() == 1


async def test_partners_read_only_their_own_deals(api: Api, world: World) -> None:
    mine = (await register(api, world.a["token"], world.a["enrollmentId"], "Acme"))["deal"]
    theirs = (await register(api, world.b["token"], world.b["enrollmentId"], "Globex"))["deal"]
    newer = (await register(api, world.a["token"], world.a["enrollmentId"], "Initech"))["deal"]
    query = "query($id: ID!) { node(id: $id) { ... on Deal { id companyName enrollment { id } } } }"
    own = await api.data(query, {"id": mine["id"]}, world.a["token"])
    assert own["node"] == {
        "id": mine["id"],
        "companyName": "Acme",
        "enrollment": {"id": world.a["enrollmentId"]},
    }
    assert (await api.data(query, {"id": theirs["id"]}, world.a["token"]))["node"] is None
    listed = await api.data(
        "{ viewer { partner { enrollments { deals { id } } } } }", token=world.a["token"]
    )
    enrollments = listed["viewer"]["partner"]["enrollments"]
    assert enrollments == [{"deals": [{"id": newer["id"]}, {"id": mine["id"]}]}]
    # another partner's enrollment, reached by node, is not visible at all
    other = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Enrollment { deals { id } } } }",
        {"id": world.b["enrollmentId"]},
        world.a["token"],
    )
    assert other["node"] is None
    # the program-wide list is for admins
    body = await api.post(
        "query($p: ID!) { deals(programId: $p) { totalCount } }",
        {"p": world.program},
        world.a["token"],
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_admins_list_a_programs_deals_by_status(api: Api, world: World) -> None:
    first = (await register(api, world.a["token"], world.a["enrollmentId"], "Acme"))["deal"]
    second = (await register(api, world.b["token"], world.b["enrollmentId"], "Globex"))["deal"]
    await approve(api, world.admin, first["id"])
    query = (
        "query($p: ID!, $s: DealStatus, $first: Int, $after: String) { deals(programId: $p, "
        "status: $s, first: $first, after: $after) { totalCount edges { node { id status "
        "enrollment { id } } } pageInfo { hasNextPage endCursor } } }"
    )
    every = (await api.data(query, {"p": world.program}, world.admin))["deals"]
    assert every["totalCount"] == 2
    assert [e["node"]["id"] for e in every["edges"]] == [second["id"], first["id"]]
    approved = (await api.data(query, {"p": world.program, "s": "APPROVED"}, world.admin))["deals"]
    assert [e["node"]["id"] for e in approved["edges"]] == [first["id"]]
    page = (await api.data(query, {"p": world.program, "first": 1}, world.admin))["deals"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.data(
        query, {"p": world.program, "first": 1, "after": page["pageInfo"]["endCursor"]}, world.admin
    )
    assert [e["node"]["id"] for e in rest["deals"]["edges"]] == [first["id"]]
    other = await api.data(query, {"p": "nonsense"}, world.admin)
    assert other["deals"]["totalCount"] == 0
