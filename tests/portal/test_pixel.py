"""The conversion pixel: it always answers a transparent GIF, records an unverified conversion
once per external id and credits nothing; confirmConversion verifies and credits it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.relay import to_global_id
from domain.attribution.models import AttributionCredit
from domain.audit.models import AuditEntry
from domain.tracking.models import Conversion, ConversionKind, Customer, Touchpoint, TouchpointKind
from portal.pixel import GIF
from tests.helpers import Api, pk

CONFIRM = "conversion { id externalId amount { amount currency } kind }"


@dataclass
class World:
    admin: str
    program: str
    a: dict[str, Any]
    b: dict[str, Any]
    code_b: str


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    program = await api.program(admin)
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }",
        {"id": b["enrollmentId"]},
        admin,
    )
    return World(admin, program, a, b, data["node"]["referralCode"])


async def fire(client: httpx.AsyncClient, **params: str) -> httpx.Response:
    response = await client.get("/px/conversion.gif", params=params)
    assert response.status_code == 200
    assert response.content == GIF
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["cache-control"] == "no-store"
    return response


async def confirm(api: Api, token: str, program: str, external_id: str) -> dict[str, Any]:
    return await api.mutate(
        "confirmConversion", {"programId": program, "externalId": external_id}, CONFIRM, token
    )


async def stored() -> list[tuple[Any, ...]]:
    rows = await Conversion.all().order_by("id")
    return [(c.external_id, c.kind, c.amount_minor, c.verified, c.fingerprint) for c in rows]


def test_the_gif_is_a_one_pixel_transparent_gif() -> None:
    assert GIF.startswith(b"GIF89a")
    assert int.from_bytes(GIF[6:8], "little") == int.from_bytes(GIF[8:10], "little") == 1


async def test_the_pixel_records_an_unverified_conversion_with_no_credits(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await fire(
        client,
        program=world.program,
        external_id="order-1",
        amount="49.90",
        currency="eur",
        customer_id="cust-1",
        referral_code=world.code_b.lower(),
    )
    assert response.headers["x-pixel-status"] == "recorded"
    conversion = await Conversion.get(external_id="order-1")
    assert conversion.kind is ConversionKind.SALE
    assert (conversion.amount_minor, conversion.currency) == (4990, "EUR")
    assert conversion.verified is False
    assert conversion.customer_id == (await Customer.get(external_id="cust-1")).pk
    assert await AttributionCredit.all().count() == 0
    code = await Touchpoint.get(id=conversion.code_touchpoint_id)
    assert code.kind is TouchpointKind.CODE
    assert code.enrollment_id == pk(world.b["enrollmentId"])
    assert (code.excluded, code.exclusion_reason) == (True, "UNVERIFIED")


async def test_the_pixel_is_idempotent_on_the_external_id(
    client: httpx.AsyncClient, world: World
) -> None:
    params = {"program": world.program, "external_id": "order-1", "amount": "10", "kind": "lead"}
    await fire(client, **params)
    before = await stored()
    again = await fire(client, **params)
    assert again.headers["x-pixel-status"] == "duplicate"
    other = await fire(client, **{**params, "amount": "99", "customer_id": "c"})
    assert other.headers["x-pixel-status"] == "duplicate"
    assert await stored() == before
    assert before[0][:4] == ("order-1", ConversionKind.LEAD, 1000, False)
    assert await Customer.all().count() == 0


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"external_id": "x"},  # no program
        {"program": "nonsense", "external_id": "x"},
        {"program": to_global_id("Program", 999_999), "external_id": "x"},
        {"program": to_global_id("Partner", 1), "external_id": "x"},
        {"program": "1", "external_id": "x"},  # numeric ids are not accepted: global IDs only
        {"external_id": ""},
        {"external_id": "x" * 201},
        {"external_id": "x", "amount": "1.234"},
        {"external_id": "x", "amount": "-1"},
        {"external_id": "x", "amount": "ten"},
        {"external_id": "x", "amount": "NaN"},
        {"external_id": "x", "currency": "USD"},
        {"external_id": "x", "kind": "REFUND"},
        {"external_id": "x", "click_id": "c" * 65},
        {"external_id": "x", "customer_id": "c" * 201},
    ],
)
async def test_bad_input_answers_the_gif_and_stores_nothing(
    client: httpx.AsyncClient, world: World, params: dict[str, str]
) -> None:
    if "program" not in params and params != {"external_id": "x"}:
        params = {"program": world.program, **params}
    response = await fire(client, **params)
    assert response.headers["x-pixel-status"] == "refused"
    assert await Conversion.all().count() == 0
    assert await Touchpoint.all().count() == 0
    assert await Customer.all().count() == 0


async def test_the_visitor_comes_from_the_cookie_unless_named(
    client: httpx.AsyncClient, world: World
) -> None:
    client.cookies.set("pg_vid", "v-cookie")
    await fire(client, program=world.program, external_id="o1")
    await fire(client, program=world.program, external_id="o2", visitor_id="v-param")
    client.cookies.clear()
    await fire(client, program=world.program, external_id="o3", referral_code="unknown-code")
    rows = {c.external_id: c for c in await Conversion.all()}
    assert rows["o1"].visitor_id == "v-cookie"
    assert rows["o2"].visitor_id == "v-param"
    assert rows["o3"].visitor_id is None
    assert rows["o3"].code_touchpoint_id is None  # an unknown code names no one


async def test_confirming_verifies_and_credits_with_the_programs_model(
    api: Api, client: httpx.AsyncClient, world: World
) -> None:
    updated = await api.mutate(
        "updateProgram",
        {"id": world.program, "attribution": {"model": "LINEAR"}},
        "program { id }",
        world.admin,
    )
    assert updated["userErrors"] == []
    await Touchpoint.create(
        program_id=pk(world.program),
        enrollment_id=pk(world.a["enrollmentId"]),
        kind=TouchpointKind.CLICK,
        occurred_at=datetime.now(UTC) - timedelta(days=1),
        visitor_id="v1",
        click_id="ck-1",
    )
    await fire(
        client,
        program=world.program,
        external_id="order-9",
        amount="100.01",
        visitor_id="v1",
        referral_code=world.code_b,
    )
    assert await AttributionCredit.all().count() == 0
    payload = await confirm(api, world.admin, world.program, " order-9 ")
    assert payload["userErrors"] == []
    assert payload["conversion"]["externalId"] == "order-9"
    assert payload["conversion"]["amount"] == {"amount": "100.01", "currency": "EUR"}
    conversion = await Conversion.get(external_id="order-9")
    assert conversion.verified is True
    code = await Touchpoint.get(id=conversion.code_touchpoint_id)
    assert (code.excluded, code.exclusion_reason) == (False, None)
    credits = {
        c.enrollment_id: c.amount_minor
        for c in await AttributionCredit.filter(conversion_id=conversion.pk)
    }
    assert sorted(credits.values()) == [5000, 5001]
    assert set(credits) == {pk(world.a["enrollmentId"]), pk(world.b["enrollmentId"])}
    assert await AuditEntry.filter(action="confirmConversion").count() == 1
    # confirming again changes nothing
    again = await confirm(api, world.admin, world.program, "order-9")
    assert again["userErrors"] == []
    assert await AttributionCredit.filter(conversion_id=conversion.pk).count() == 2
    assert await AuditEntry.filter(action="confirmConversion").count() == 1


async def test_confirming_one_conversion_leaves_other_unverified_ones_uncredited(
    api: Api, client: httpx.AsyncClient, world: World
) -> None:
    for external_id in ("p1", "p2"):
        await fire(
            client,
            program=world.program,
            external_id=external_id,
            amount="5",
            referral_code=world.code_b,
        )
    assert (await confirm(api, world.admin, world.program, "p1"))["userErrors"] == []
    p1, p2 = await Conversion.get(external_id="p1"), await Conversion.get(external_id="p2")
    assert [c.amount_minor for c in await AttributionCredit.filter(conversion_id=p1.pk)] == [500]
    assert await AttributionCredit.filter(conversion_id=p2.pk).count() == 0
    assert p2.verified is False
    assert (await Touchpoint.get(id=p2.code_touchpoint_id)).excluded is True


async def test_confirming_an_unknown_conversion_is_not_found(api: Api, world: World) -> None:
    unknown = await confirm(api, world.admin, world.program, "nope")
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [
        (["externalId"], "NOT_FOUND")
    ]
    no_program = await confirm(api, world.admin, to_global_id("Program", 999_999), "nope")
    assert [(e["field"], e["code"]) for e in no_program["userErrors"]] == [
        (["programId"], "NOT_FOUND")
    ]
    assert await AuditEntry.filter(action="confirmConversion").count() == 0


async def test_only_admins_and_tracking_apps_confirm(
    api: Api, client: httpx.AsyncClient, world: World
) -> None:
    await fire(client, program=world.program, external_id="o1", referral_code=world.code_b)
    document = (
        'mutation($p: ID!) { confirmConversion(input: {programId: $p, externalId: "o1"}) '
        "{ conversion { id } } }"
    )
    reader = await api.mutate(
        "createApiToken", {"name": "bi", "scopes": ["reports:read"]}, "token", world.admin
    )
    for token in (world.b["token"], reader["token"]):
        body = await api.post(document, {"p": world.program}, token)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert (await Conversion.get(external_id="o1")).verified is False
    writer = await api.mutate(
        "createApiToken", {"name": "shop", "scopes": ["tracking:write"]}, "token", world.admin
    )
    payload = await confirm(api, writer["token"], world.program, "o1")
    assert payload["userErrors"] == []
    assert (await Conversion.get(external_id="o1")).verified is True
    assert await AttributionCredit.all().count() == 1
