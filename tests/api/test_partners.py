"""Partners and enrollments through the API."""

from __future__ import annotations

import asyncio

import pytest

from domain.identity.models import User
from domain.partners.models import Enrollment, Partner
from tests.helpers import PASSWORD, Api

ENROLL = "enrollment { id referralCode status tier { name } program { id } partner { id } }"


async def test_create_partner_with_a_user_who_can_log_in(api: Api) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "createPartner",
        {"name": "Northwind", "email": "Ana@Northwind.Example", "password": PASSWORD},
        "partner { id name email status enrollments { id } }",
        admin,
    )
    assert payload["userErrors"] == []
    assert payload["partner"]["email"] == "ana@northwind.example"
    assert payload["partner"]["status"] == "ACTIVE"
    tokens = await api.login("ANA@northwind.example")
    data = await api.data(
        "{ viewer { kind email partner { name } } }", token=tokens["access_token"]
    )
    assert data["viewer"] == {
        "kind": "PARTNER",
        "email": "ana@northwind.example",
        "partner": {"name": "Northwind"},
    }


@pytest.mark.parametrize(
    ("input_", "field", "code"),
    [
        ({"name": "X", "email": "not-an-email"}, ["email"], "INVALID"),
        ({"name": "", "email": "x@example.com"}, ["name"], "INVALID"),
        ({"name": "X", "email": "x@example.com", "password": "short"}, ["password"], "INVALID"),
    ],
)
async def test_create_partner_refuses_bad_input(
    api: Api, input_: dict[str, str], field: list[str], code: str
) -> None:
    admin = await api.admin_token()
    payload = await api.mutate("createPartner", input_, "partner { id }", admin)
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert await Partner.all().count() == 0


async def test_partner_emails_are_unique_case_insensitively(api: Api) -> None:
    admin = await api.admin_token()
    await api.mutate(
        "createPartner", {"name": "A", "email": "a@example.com"}, "partner { id }", admin
    )
    again = await api.mutate(
        "createPartner", {"name": "B", "email": "A@EXAMPLE.com"}, "partner { id }", admin
    )
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [(["email"], "CONFLICT")]
    assert await Partner.all().count() == 1


async def test_a_partner_organization_can_have_several_users(api: Api) -> None:
    admin = await api.admin_token()
    partner = await api.partner(admin, "Northwind", "ana@northwind.example")
    added = await api.mutate(
        "createPartnerUser",
        {"partnerId": partner["id"], "email": "bo@northwind.example", "password": PASSWORD},
        "partner { id }",
        admin,
    )
    assert added == {"partner": {"id": partner["id"]}, "userErrors": []}
    tokens = await api.login("bo@northwind.example")
    data = await api.data("{ viewer { partner { id } } }", token=tokens["access_token"])
    assert data["viewer"]["partner"]["id"] == partner["id"]
    assert await User.filter(partner_id__isnull=False).count() == 2


async def test_enroll_with_generated_and_vanity_codes(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    tier = await api.mutate(
        "createTier", {"programId": program_id, "name": "Gold", "rank": 3}, "tier { id }", admin
    )
    first = await api.mutate(
        "createPartner",
        {"name": "Northwind Consulting", "email": "a@x.example"},
        "partner { id }",
        admin,
    )
    second = await api.mutate(
        "createPartner", {"name": "Bluebird", "email": "b@x.example"}, "partner { id }", admin
    )
    generated = await api.mutate(
        "enrollPartner",
        {
            "programId": program_id,
            "partnerId": first["partner"]["id"],
            "tierId": tier["tier"]["id"],
        },
        ENROLL,
        admin,
    )
    assert generated["userErrors"] == []
    code = generated["enrollment"]["referralCode"]
    assert code.startswith("NORTHW-")
    assert generated["enrollment"]["tier"] == {"name": "Gold"}
    assert generated["enrollment"]["program"]["id"] == program_id
    taken = await api.mutate(
        "enrollPartner",
        {
            "programId": program_id,
            "partnerId": second["partner"]["id"],
            "referralCode": code.lower(),
        },
        ENROLL,
        admin,
    )
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [
        (["referralCode"], "CONFLICT")
    ]
    vanity = await api.mutate(
        "enrollPartner",
        {
            "programId": program_id,
            "partnerId": second["partner"]["id"],
            "referralCode": "Blue-Bird",
        },
        ENROLL,
        admin,
    )
    assert vanity["enrollment"]["referralCode"] == "Blue-Bird"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"referralCode": "a b"}, ["referralCode"], "INVALID"),
        ({"referralCode": "graphql"}, ["referralCode"], "INVALID"),
        ({"programId": "UHJvZ3JhbTo5OTk"}, ["programId"], "NOT_FOUND"),
        ({"partnerId": "garbage"}, ["partnerId"], "NOT_FOUND"),
        ({"tierId": "VGllcjo5OTk"}, ["tierId"], "NOT_FOUND"),
    ],
)
async def test_enroll_refuses_bad_input(
    api: Api, change: dict[str, str], field: list[str], code: str
) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    partner = await api.partner(admin, "P", "p@example.com")
    payload = await api.mutate(
        "enrollPartner",
        {"programId": program_id, "partnerId": partner["id"], **change},
        "enrollment { id }",
        admin,
    )
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert await Enrollment.all().count() == 0


async def test_enrolling_twice_is_a_conflict(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    partner = await api.partner(admin, "P", "p@example.com", program_id)
    again = await api.mutate(
        "enrollPartner",
        {"programId": program_id, "partnerId": partner["id"]},
        "enrollment { id }",
        admin,
    )
    assert [(e["field"], e["code"]) for e in again["userErrors"]] == [(["partnerId"], "CONFLICT")]


async def test_concurrent_vanity_codes_make_one_enrollment(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    partners = [await api.partner(admin, f"P{i}", f"p{i}@example.com") for i in range(4)]
    results = await asyncio.gather(
        *(
            api.mutate(
                "enrollPartner",
                {"programId": program_id, "partnerId": p["id"], "referralCode": "SAMECODE"},
                "enrollment { id }",
                admin,
            )
            for p in partners
        )
    )
    winners = [r for r in results if r["enrollment"] is not None]
    assert len(winners) == 1
    assert all(r["userErrors"][0]["code"] == "CONFLICT" for r in results if r not in winners)
    assert await Enrollment.filter(code_key="samecode").count() == 1


async def test_update_enrollment_and_partner(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    partner = await api.partner(admin, "P", "p@example.com", program_id)
    tier = await api.mutate(
        "createTier", {"programId": program_id, "name": "Gold", "rank": 3}, "tier { id }", admin
    )
    moved = await api.mutate(
        "updateEnrollment",
        {"id": partner["enrollmentId"], "tierId": tier["tier"]["id"], "status": "SUSPENDED"},
        "enrollment { status tier { name } }",
        admin,
    )
    assert moved["enrollment"] == {"status": "SUSPENDED", "tier": {"name": "Gold"}}
    cleared = await api.mutate(
        "updateEnrollment",
        {"id": partner["enrollmentId"], "tierId": None},
        "enrollment { tier { name } }",
        admin,
    )
    assert cleared["enrollment"] == {"tier": None}
    renamed = await api.mutate(
        "updatePartner", {"id": partner["id"], "name": "Renamed"}, "partner { name email }", admin
    )
    assert renamed["partner"] == {"name": "Renamed", "email": "p@example.com"}


async def test_suspended_partner_users_cannot_log_in(api: Api) -> None:
    admin = await api.admin_token()
    partner = await api.partner(admin, "P", "p@example.com")
    await api.mutate(
        "updatePartner", {"id": partner["id"], "status": "SUSPENDED"}, "partner { id }", admin
    )
    response = await api.client.post(
        "/auth/login", json={"email": "p@example.com", "password": PASSWORD}
    )
    assert response.status_code == 401


async def test_partners_search_and_filter_by_program(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    await api.partner(admin, "Northwind", "ana@northwind.example", program_id)
    await api.partner(admin, "Bluebird", "ben@bluebird.example")
    query = """query($programId: ID, $search: String) {
      partners(programId: $programId, search: $search) { totalCount edges { node { name } } } }"""
    everyone = (await api.data(query, {}, admin))["partners"]
    assert everyone["totalCount"] == 2
    by_email = (await api.data(query, {"search": "BLUEBIRD.ex"}, admin))["partners"]
    assert [e["node"]["name"] for e in by_email["edges"]] == ["Bluebird"]
    in_program = (await api.data(query, {"programId": program_id}, admin))["partners"]
    assert [e["node"]["name"] for e in in_program["edges"]] == ["Northwind"]


async def test_program_enrollments_search_by_code_or_partner_name(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    for name, email, code in [
        ("Northwind", "a@x.example", "NW-1"),
        ("Bluebird", "b@x.example", "BLUE"),
    ]:
        partner = await api.partner(admin, name, email)
        await api.mutate(
            "enrollPartner",
            {"programId": program_id, "partnerId": partner["id"], "referralCode": code},
            "enrollment { id }",
            admin,
        )
    query = """query($id: ID!, $search: String) { node(id: $id) { ... on Program {
      enrollments(search: $search) { totalCount edges { node { referralCode } } } } } }"""

    async def found(term: str) -> list[str]:
        data = await api.data(query, {"id": program_id, "search": term}, admin)
        return [e["node"]["referralCode"] for e in data["node"]["enrollments"]["edges"]]

    assert await found("nw-") == ["NW-1"]
    assert await found("BLUEB") == ["BLUE"]
    assert await found("zzz") == []


async def test_a_referral_code_cannot_take_a_link_code(api: Api) -> None:
    """`/r/{code}` resolves links and referral codes alike: a referral code equal to a link's
    code (in any case) is a CONFLICT, and nothing is enrolled."""
    admin = await api.admin_token()
    program_id = await api.program(admin)
    owner = await api.partner(admin, "Northwind", "n@x.example", program_id)
    link = await api.mutate(
        "createReferralLink",
        {"enrollmentId": owner["enrollmentId"], "code": "Spring-Sale"},
        "referralLink { code }",
        admin,
    )
    assert link["userErrors"] == []
    other = await api.mutate(
        "createPartner", {"name": "Bluebird", "email": "b@x.example"}, "partner { id }", admin
    )
    taken = await api.mutate(
        "enrollPartner",
        {
            "programId": program_id,
            "partnerId": other["partner"]["id"],
            "referralCode": "spring-SALE",
        },
        ENROLL,
        admin,
    )
    assert [(e["field"], e["code"]) for e in taken["userErrors"]] == [
        (["referralCode"], "CONFLICT")
    ]
    assert taken["enrollment"] is None
