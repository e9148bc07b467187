"""Ingestion through real HTTP: the contract's journey (two partners' clicks by one visitor,
identifyCustomer, a sale split by the program's model), idempotent retries, conflicts,
concurrency, refunds, batches, self-referral, referee rewards, who may call, and bad input
that stores nothing. Every amount is worked by hand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.attribution.models import AttributionCredit
from domain.tracking.models import (
    Conversion,
    Customer,
    Refund,
    Touchpoint,
    TouchpointKind,
    VisitorCustomer,
)
from tests.helpers import Api, pk

NOW = datetime.now(UTC).replace(microsecond=0)
CUSTOMER = "customer { id externalId email firstEnrollment { id } }"
CONVERSION = (
    "conversion { id externalId kind status amount { amount currency } refunded { amount } "
    "credits { enrollment { id } share amount { amount } } }"
)


@dataclass
class World:
    admin: str
    program: str
    a: dict[str, Any]
    b: dict[str, Any]


async def _click(world: World, partner: dict[str, Any], days_ago: float, visitor: str) -> None:
    """A CLICK as the click route stores it (save() keeps occurred_us)."""
    await Touchpoint.create(
        program_id=pk(world.program),
        enrollment_id=pk(partner["enrollmentId"]),
        kind=TouchpointKind.CLICK,
        occurred_at=NOW - timedelta(days=days_ago),
        visitor_id=visitor,
        click_id=f"ck-{partner['enrollmentId'][-4:]}-{visitor}-{days_ago}",
    )


@pytest.fixture
async def world(api: Api) -> World:
    """Partners A (a@example.com) and B in one EUR program credited LINEAR, 30-day window."""
    admin = await api.admin_token()
    program = await api.program(admin)
    payload = await api.mutate(
        "updateProgram",
        {"id": program, "attribution": {"model": "LINEAR"}},
        "program { id }",
        admin,
    )
    assert payload["userErrors"] == []
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    return World(admin, program, a, b)


async def _sale(api: Api, world: World, token: str | None = None, **fields: Any) -> dict[str, Any]:
    item = {"programId": world.program, "externalId": "order-1", "kind": "SALE"}
    item |= {"amount": "100.00", "currency": "EUR", "customerId": "cust-1"} | fields
    return await api.mutate("recordConversion", item, CONVERSION, token or world.admin)


def _credits(conversion: dict[str, Any], world: World) -> dict[str, str]:
    names = {world.a["enrollmentId"]: "A", world.b["enrollmentId"]: "B"}
    return {names[c["enrollment"]["id"]]: c["amount"]["amount"] for c in conversion["credits"]}


async def test_two_partners_clicks_identified_then_sale_split_by_the_model(
    api: Api, world: World
) -> None:
    await _click(world, world.a, 3, "v1")
    await _click(world, world.b, 1, "v1")
    identified = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-1", "visitorId": "v1"},
        f"{CUSTOMER} refereeReward {{ kind value }}",
        world.admin,
    )
    assert identified["userErrors"] == []
    customer = identified["customer"]
    assert customer["externalId"] == "cust-1"
    assert customer["firstEnrollment"] == {"id": world.a["enrollmentId"]}  # the earliest click
    assert identified["refereeReward"] is None  # the program offers none
    assert await Touchpoint.filter(customer_id=pk(customer["id"])).count() == 2  # stitched

    # the sale names only the customer: its journey is the visitor's two clicks
    sale = await _sale(api, world)
    assert sale["userErrors"] == []
    conversion = sale["conversion"]
    assert conversion["amount"] == {"amount": "100.00", "currency": "EUR"}
    assert _credits(conversion, world) == {"A": "50.00", "B": "50.00"}  # LINEAR: half each


async def test_retry_returns_the_first_result_and_other_content_is_a_conflict(
    api: Api, world: World
) -> None:
    await _click(world, world.b, 2, "v9")
    first = (await _sale(api, world, visitorId="v9"))["conversion"]
    again = await _sale(api, world, visitorId="v9", amount="100.0")  # the same amount
    assert again == {"conversion": first, "userErrors": []}
    conflict = await _sale(api, world, visitorId="v9", amount="99.00")
    assert conflict["conversion"] is None
    assert conflict["userErrors"] == [
        {
            "field": ["externalId"],
            "message": "another conversion was recorded with this externalId",
            "code": "CONFLICT",
        }
    ]
    assert await Conversion.all().count() == 1
    stored = await Conversion.get()
    assert stored.amount_minor == 10_000
    assert await AttributionCredit.all().count() == 1  # B alone, once
    assert _credits(first, world) == {"B": "100.00"}


async def test_concurrent_identical_conversions_make_one(api: Api, world: World) -> None:
    await _click(world, world.a, 1, "v2")
    answers = await asyncio.gather(*(_sale(api, world, visitorId="v2") for _ in range(6)))
    ids = {answer["conversion"]["id"] for answer in answers}
    assert len(ids) == 1
    assert all(answer["userErrors"] == [] for answer in answers)
    assert await Conversion.all().count() == 1
    assert await Customer.all().count() == 1
    assert await AttributionCredit.all().count() == 1


async def _refund(api: Api, world: World, external_id: str, amount: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"programId": world.program, "externalId": external_id}
    if amount is not None:
        item["amount"] = amount
    return await api.mutate(
        "refundConversion", item, "conversion { status refunded { amount } }", world.admin
    )


async def test_refunds_partial_then_full_never_more(api: Api, world: World) -> None:
    await _sale(api, world)
    partial = await _refund(api, world, "order-1", "30.00")
    assert partial == {
        "conversion": {"status": "PARTIALLY_REFUNDED", "refunded": {"amount": "30.00"}},
        "userErrors": [],
    }
    for amount, message in (
        ("70.01", "is more than is left to refund"),
        ("0", "must be more than zero"),
        ("1.001", "EUR allows at most 2 decimals"),
    ):
        refused = await _refund(api, world, "order-1", amount)
        assert refused["userErrors"] == [
            {"field": ["amount"], "message": message, "code": "INVALID"}
        ]
    full = await _refund(api, world, "order-1", None)
    assert full["conversion"] == {"status": "REFUNDED", "refunded": {"amount": "100.00"}}
    again = await _refund(api, world, "order-1", None)
    assert again["userErrors"][0]["code"] == "INVALID"
    unknown = await _refund(api, world, "order-2", None)
    assert unknown["userErrors"] == [
        {"field": ["externalId"], "message": "conversion not found", "code": "NOT_FOUND"}
    ]
    assert sorted(await Refund.all().values_list("amount_minor", flat=True)) == [3_000, 7_000]
    stored = await Conversion.get()
    assert (stored.refunded_minor, stored.status) == (10_000, "REFUNDED")


async def test_batch_stores_the_valid_items_and_refuses_the_others_by_index(
    api: Api, world: World
) -> None:
    code = (
        await api.data(
            "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }",
            {"id": world.b["enrollmentId"]},
            world.admin,
        )
    )["node"]["referralCode"]
    base = {"programId": world.program, "kind": "SALE", "currency": "EUR", "amount": "10.00"}
    items = [
        base | {"externalId": "o-0", "customerId": "c-0"},
        base | {"externalId": "o-1", "amount": "-1"},
        base | {"externalId": "o-2", "currency": "USD"},
        base | {"externalId": "o-3", "referralCode": code.lower(), "amount": "25.50"},
        base | {"externalId": "o-4", "referralCode": "nobody"},
        base | {"externalId": "o-0", "customerId": "c-0"},  # a repeat of item 0
    ]
    query = """mutation($input: RecordConversionsInput!) { recordConversions(input: $input) {
      conversions { externalId credits { enrollment { id } amount { amount } } }
      userErrors { field code } } }"""
    result = (await api.data(query, {"input": {"conversions": items}}, world.admin))[
        "recordConversions"
    ]
    assert [c and c["externalId"] for c in result["conversions"]] == [
        "o-0",
        None,
        None,
        "o-3",
        None,
        "o-0",
    ]
    assert result["userErrors"] == [
        {"field": ["conversions", "1", "amount"], "code": "INVALID"},
        {"field": ["conversions", "2", "currency"], "code": "INVALID"},
        {"field": ["conversions", "4", "referralCode"], "code": "NOT_FOUND"},
    ]
    assert sorted(await Conversion.all().values_list("external_id", flat=True)) == ["o-0", "o-3"]
    coded = result["conversions"][3]["credits"]
    assert coded == [{"enrollment": {"id": world.b["enrollmentId"]}, "amount": {"amount": "25.50"}}]
    assert result["conversions"][0]["credits"] == []  # no journey: stored unattributed
    assert await Touchpoint.filter(kind=TouchpointKind.CODE).count() == 1


async def test_more_than_a_thousand_items_are_refused_whole(api: Api, world: World) -> None:
    item = {"programId": world.program, "kind": "LEAD", "currency": "EUR", "amount": "0"}
    items = [item | {"externalId": f"l-{i}"} for i in range(1001)]
    payload = await api.mutate(
        "recordConversions", {"conversions": items}, "conversions { id }", world.admin
    )
    assert payload["userErrors"][0]["code"] == "LIMIT_EXCEEDED"
    assert await Conversion.all().count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"amount": "1.001"}, "amount", "INVALID"),
        ({"amount": "-0.01"}, "amount", "INVALID"),
        ({"currency": "USD"}, "currency", "INVALID"),
        ({"externalId": ""}, "externalId", "INVALID"),
        ({"externalId": "x" * 201}, "externalId", "INVALID"),
        ({"occurredAt": (NOW + timedelta(hours=1)).isoformat()}, "occurredAt", "INVALID"),
        ({"programId": "UHJvZ3JhbToxMjM0NQ"}, "programId", "NOT_FOUND"),
        ({"referralCode": "unknown"}, "referralCode", "NOT_FOUND"),
    ],
)
async def test_bad_conversions_store_nothing(
    api: Api, world: World, fields: dict[str, Any], field: str, code: str
) -> None:
    payload = await _sale(api, world, **fields)
    assert payload["conversion"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [([field], code)]
    assert await Conversion.all().count() == 0
    assert await Customer.all().count() == 0


async def test_a_partner_buying_through_its_own_click_earns_nothing(api: Api, world: World) -> None:
    await _click(world, world.a, 2, "v3")
    await _click(world, world.b, 1, "v3")
    identified = await api.mutate(
        "identifyCustomer",
        {
            "programId": world.program,
            "customerId": "cust-1",
            "visitorId": "v3",
            "email": " A@Example.COM ",
        },
        CUSTOMER,
        world.admin,
    )
    assert identified["customer"]["email"] == "a@example.com"
    assert identified["customer"]["firstEnrollment"] == {"id": world.b["enrollmentId"]}
    own = await Touchpoint.get(enrollment_id=pk(world.a["enrollmentId"]))
    assert (own.excluded, own.exclusion_reason) == (True, "SELF_REFERRAL")
    sale = await _sale(api, world)
    assert _credits(sale["conversion"], world) == {"B": "100.00"}


async def test_a_referred_customer_is_told_its_reward(api: Api, world: World) -> None:
    await api.mutate(
        "updateProgram",
        {"id": world.program, "refereeReward": {"kind": "PERCENT_DISCOUNT", "value": "10"}},
        "program { id }",
        world.admin,
    )
    code = (
        await api.data(
            "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }",
            {"id": world.a["enrollmentId"]},
            world.admin,
        )
    )["node"]["referralCode"]
    selection = f"{CUSTOMER} refereeReward {{ kind value }}"
    referred = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-1", "referralCode": code},
        selection,
        world.admin,
    )
    assert referred["refereeReward"] == {"kind": "PERCENT_DISCOUNT", "value": "10"}
    assert referred["customer"]["firstEnrollment"] == {"id": world.a["enrollmentId"]}
    stranger = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-2"},
        selection,
        world.admin,
    )
    assert stranger["refereeReward"] is None
    # identifying again records no second code touchpoint
    await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-1", "referralCode": code},
        selection,
        world.admin,
    )
    assert await Touchpoint.filter(kind=TouchpointKind.CODE).count() == 1


async def test_a_visitor_or_click_of_another_customer_is_a_conflict(api: Api, world: World) -> None:
    await _click(world, world.a, 1, "v4")
    click = await Touchpoint.get()
    first = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-1", "clickId": click.click_id},
        CUSTOMER,
        world.admin,
    )
    assert first["userErrors"] == []
    assert await VisitorCustomer.filter(visitor_id="v4").count() == 1  # the click's visitor
    for fields, field in (
        ({"visitorId": "v4"}, "visitorId"),
        ({"clickId": click.click_id}, "clickId"),
    ):
        other = await api.mutate(
            "identifyCustomer",
            {"programId": world.program, "customerId": "cust-2"} | fields,
            CUSTOMER,
            world.admin,
        )
        assert [(e["field"], e["code"]) for e in other["userErrors"]] == [([field], "CONFLICT")]
    unknown = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-2", "clickId": "nope"},
        CUSTOMER,
        world.admin,
    )
    assert unknown["userErrors"][0]["code"] == "NOT_FOUND"
    assert await Customer.all().count() == 1


async def test_touchpoints_are_idempotent_on_external_id(api: Api, world: World) -> None:
    item = {
        "programId": world.program,
        "kind": "LEAD",
        "enrollmentId": world.b["enrollmentId"],
        "customerId": "cust-1",
        "role": "SOURCE",
        "externalId": "crm-1",
    }
    selection = "touchpoint { id kind role enrollment { id } }"
    first = await api.mutate("recordTouchpoint", item, selection, world.admin)
    assert first["userErrors"] == []
    assert first["touchpoint"]["role"] == "SOURCE"
    assert await api.mutate("recordTouchpoint", item, selection, world.admin) == first
    conflict = await api.mutate(
        "recordTouchpoint", item | {"role": "CLOSE"}, selection, world.admin
    )
    assert [(e["field"], e["code"]) for e in conflict["userErrors"]] == [
        (["externalId"], "CONFLICT")
    ]
    assert await Touchpoint.all().count() == 1
    stored = await Touchpoint.get()
    assert stored.customer_id is not None
    assert stored.occurred_us > 0


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"kind": "CLICK"}, "kind", "INVALID"),
        ({"referralCode": "x"}, "enrollmentId", "INVALID"),  # both
        ({"enrollmentId": None}, "enrollmentId", "INVALID"),  # neither
        ({"customerId": None}, "customerId", "INVALID"),  # nobody
        ({"occurredAt": (NOW + timedelta(minutes=10)).isoformat()}, "occurredAt", "INVALID"),
        ({"enrollmentId": "RW5yb2xsbWVudDo5OTk5"}, "enrollmentId", "NOT_FOUND"),
    ],
)
async def test_bad_touchpoints_store_nothing(
    api: Api, world: World, fields: dict[str, Any], field: str, code: str
) -> None:
    item = {
        "programId": world.program,
        "kind": "WEBINAR",
        "enrollmentId": world.a["enrollmentId"],
        "customerId": "cust-1",
    } | fields
    payload = await api.mutate("recordTouchpoint", item, "touchpoint { id }", world.admin)
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [([field], code)]
    assert await Touchpoint.all().count() == 0
    assert await Customer.all().count() == 0


async def _app_token(api: Api, user: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "checkout", "scopes": scopes}, "token", user
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


async def test_only_admins_and_apps_with_tracking_write_ingest(api: Api, world: World) -> None:
    reader = await _app_token(api, world.admin, ["reports:read"])
    partner_app = await _app_token(api, world.a["token"], ["reports:read"])
    writer = await _app_token(api, world.admin, ["tracking:write"])
    query = f"""mutation($input: RecordConversionInput!) {{
      recordConversion(input: $input) {{ {CONVERSION} }} }}"""
    item = {
        "programId": world.program,
        "externalId": "o-1",
        "kind": "SALE",
        "amount": "1.00",
        "currency": "EUR",
    }
    for token in (world.a["token"], reader, partner_app, None):
        body = await api.post(query, {"input": item}, token)
        expected = "FORBIDDEN" if token else "UNAUTHENTICATED"
        assert body["errors"][0]["extensions"]["code"] == expected
    assert await Conversion.all().count() == 0
    accepted = await api.mutate("recordConversion", item, "conversion { id }", writer)
    assert accepted["userErrors"] == []
    assert await Conversion.all().count() == 1


async def test_customers_are_hidden_from_partners(api: Api, world: World) -> None:
    identified = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-1", "email": "x@shop.example"},
        CUSTOMER,
        world.admin,
    )
    customer_id = identified["customer"]["id"]
    query = "query($id: ID!) { node(id: $id) { ... on Customer { externalId email } } }"
    admin = await api.data(query, {"id": customer_id}, world.admin)
    assert admin["node"] == {"externalId": "cust-1", "email": "x@shop.example"}
    partner_app = await _app_token(api, world.a["token"], ["reports:read"])
    for token in (world.a["token"], partner_app):
        assert (await api.data(query, {"id": customer_id}, token))["node"] is None


async def test_a_suspended_enrollments_code_is_unknown_to_ingestion(api: Api, world: World) -> None:
    code = (
        await api.post(
            "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }",
            {"id": world.a["enrollmentId"]},
            world.admin,
        )
    )["data"]["node"]["referralCode"]
    suspended = await api.mutate(
        "updateEnrollment",
        {"id": world.a["enrollmentId"], "status": "SUSPENDED"},
        "enrollment { status }",
        world.admin,
    )
    assert suspended["userErrors"] == []
    refused = await _sale(api, world, referralCode=code)
    assert [(e["field"], e["code"]) for e in refused["userErrors"]] == [
        (["referralCode"], "NOT_FOUND")
    ]
    identified = await api.mutate(
        "identifyCustomer",
        {"programId": world.program, "customerId": "cust-9", "referralCode": code},
        "customer { id }",
        world.admin,
    )
    assert [(e["field"], e["code"]) for e in identified["userErrors"]] == [
        (["referralCode"], "NOT_FOUND")
    ]
    assert await Conversion.all().count() == 0
    assert await Touchpoint.filter(kind=TouchpointKind.CODE).count() == 0
