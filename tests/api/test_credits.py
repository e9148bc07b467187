"""Credits and their explanations through the API: what each partner earned of a conversion
and why, who may read which, pagination, and a bounded number of SQL queries.

Journeys are written straight into the database (like tests/api/test_attribution.py) and
credited by `recomputeAttribution`; the figures below are worked by hand from `world`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from api.relay import to_global_id
from domain.attribution.models import AttributionCredit
from domain.tracking.models import (
    Conversion,
    ConversionKind,
    ConversionStatus,
    Customer,
    Touchpoint,
    TouchpointKind,
)
from tests.helpers import Api, pk

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
HALF_UNIT = Decimal("0.0000005")  # half of the last of the 6 places


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@dataclass
class World:
    admin: str
    program: str  # global ids from here on
    a: dict[str, Any]
    b: dict[str, Any]
    c: dict[str, Any]
    conversions: dict[str, str] = field(default_factory=dict)  # external id -> global id
    touchpoints: dict[str, str] = field(default_factory=dict)  # name -> global id

    def letter(self, enrollment_id: str) -> str:
        return {self.a["enrollmentId"]: "A", self.b["enrollmentId"]: "B"}.get(
            enrollment_id, "C" if enrollment_id == self.c["enrollmentId"] else "?"
        )


async def _touch(
    world: World, name: str, who: dict[str, Any], at: datetime, **fields: Any
) -> Touchpoint:
    fields.setdefault("kind", TouchpointKind.CLICK)
    row = await Touchpoint.create(
        program_id=pk(world.program),
        enrollment_id=pk(who["enrollmentId"]),
        occurred_at=at,
        **fields,
    )
    world.touchpoints[name] = to_global_id("Touchpoint", row.pk)
    return row


async def _sale(world: World, external_id: str, amount_minor: int, **fields: Any) -> None:
    fields.setdefault("kind", ConversionKind.SALE)
    fields.setdefault("occurred_at", day(0))
    row = await Conversion.create(
        program_id=pk(world.program),
        external_id=external_id,
        amount_minor=amount_minor,
        currency="EUR",
        **fields,
    )
    world.conversions[external_id] = to_global_id("Conversion", row.pk)


async def _model(api: Api, world: World, model: dict[str, Any]) -> None:
    payload = await api.mutate(
        "updateProgram",
        {"id": world.program, "attribution": model},
        "program { id }",
        world.admin,
    )
    assert payload["userErrors"] == [], payload
    payload = await api.mutate(
        "recomputeAttribution", {"programId": world.program}, "conversionsRecomputed", world.admin
    )
    assert payload["userErrors"] == [], payload


@pytest.fixture
async def world(api: Api) -> World:
    """Partners A, B, C in one EUR program, credited LINEAR (lookback 30 days).

    X1, SALE 100.00 of cust-1: A click (day -10), B lead (-5), A meeting (-3), C deal (-1):
        A earns two quarters, B and C one each.
    X2, SALE 50.00 of cust-2: a C webinar alone (A and B are not credited: a C-only conversion).
    X4, SALE 10.00 of cust-3: A, B, C clicks: thirds (3.33, 3.33, 3.34: the tie goes to C,
        the later).
    Y1..Y3, SALE 20.00 each of visitors y1..y3: an A click each (A's alone).
    """
    admin = await api.admin_token()
    program = await api.program(admin)
    world = World(
        admin,
        program,
        await api.partner(admin, "Alpha", "a@example.com", program),
        await api.partner(admin, "Beta", "b@example.com", program),
        await api.partner(admin, "Gamma", "c@example.com", program),
    )
    p = pk(program)
    cust1 = await Customer.create(program_id=p, external_id="cust-1")
    cust2 = await Customer.create(program_id=p, external_id="cust-2")
    cust3 = await Customer.create(program_id=p, external_id="cust-3")
    await _touch(world, "x1-a-click", world.a, day(-10), customer_id=cust1.pk)
    await _touch(world, "x1-b-lead", world.b, day(-5), kind="LEAD", customer_id=cust1.pk)
    await _touch(
        world, "x1-a-meeting", world.a, day(-3), kind="MEETING", role="CLOSE", customer_id=cust1.pk
    )
    await _touch(world, "x1-c-deal", world.c, day(-1), kind="DEAL", customer_id=cust1.pk)
    await _touch(world, "x2-c-webinar", world.c, day(-2), kind="WEBINAR", customer_id=cust2.pk)
    await _touch(world, "x4-a", world.a, day(-6), customer_id=cust3.pk)
    await _touch(world, "x4-b", world.b, day(-4), customer_id=cust3.pk)
    await _touch(world, "x4-c", world.c, day(-2), customer_id=cust3.pk)
    await _sale(world, "X1", 10_000, customer_id=cust1.pk)
    await _sale(world, "X2", 5_000, customer_id=cust2.pk)
    await _sale(world, "X4", 1_000, customer_id=cust3.pk)
    for n in (1, 2, 3):
        await _touch(world, f"y{n}", world.a, day(n - 2), visitor_id=f"y{n}")
        await _sale(world, f"Y{n}", 2_000, visitor_id=f"y{n}", occurred_at=day(n))
    await _model(api, world, {"model": "LINEAR"})
    return world


async def _token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "t", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


CONVERSIONS = """query($p: ID!, $first: Int, $after: String) {
  conversions(programId: $p, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { id externalId kind status amount { amount currency }
      refunded { amount currency } occurredAt
      credits { share amount { amount currency } model
        touchpoints { weight amount { amount } touchpoint { id kind } } } } } } }"""

# The admin's view of a conversion, with who earned what.
CONVERSION = """query($id: ID!) { node(id: $id) { __typename ... on Conversion { externalId
  credits { share amount { amount } enrollment { id }
    touchpoints { weight amount { amount } touchpoint { id } } } } } }"""

CREDITS = """query($id: ID!, $first: Int, $after: String) { node(id: $id) { ... on Enrollment {
  credits(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node { share amount { amount } model enrollment { id }
      conversion { id externalId credits { share enrollment { id } } }
      touchpoints { weight touchpoint { id enrollment { id } } } } } } } } }"""


def _sums_check(conversion: dict[str, Any]) -> None:
    """The explanation adds up: amounts exactly, decimals up to their rounding."""
    credits = conversion["credits"]
    amounts = [Decimal(c["amount"]["amount"]) for c in credits]
    assert sum(amounts) == Decimal(conversion["amount"]["amount"]), conversion
    shares = [Decimal(c["share"]) for c in credits]
    assert abs(sum(shares) - 1) <= HALF_UNIT * len(shares), conversion
    for credit in credits:
        parts = credit["touchpoints"]
        assert parts, credit
        weights = [Decimal(t["weight"]) for t in parts]
        assert abs(sum(weights) - Decimal(credit["share"])) <= HALF_UNIT * (len(weights) + 1)
        parts_amount = sum(Decimal(t["amount"]["amount"]) for t in parts)
        assert parts_amount == Decimal(credit["amount"]["amount"]), credit


@pytest.mark.parametrize(
    "model",
    [
        {"model": "LINEAR"},
        {"model": "FIRST_TOUCH"},
        {"model": "POSITION_BASED", "firstWeight": "0.3", "lastWeight": "0.5"},
        {"model": "TIME_DECAY", "halfLifeDays": 2.5},
        {"model": "ROLE_WEIGHTED", "roleWeights": [{"role": "CLOSE", "weight": "0.7"}]},
    ],
    ids=lambda m: m["model"],
)
async def test_explanations_add_up_under_every_model(
    api: Api, world: World, model: dict[str, Any]
) -> None:
    await _model(api, world, model)
    data = await api.data(CONVERSIONS, {"p": world.program, "first": 100}, world.admin)
    conversions = [edge["node"] for edge in data["conversions"]["edges"]]
    assert sorted(c["externalId"] for c in conversions) == ["X1", "X2", "X4", "Y1", "Y2", "Y3"]
    for conversion in conversions:
        assert conversion["credits"], conversion  # every one is attributed
        assert {c["model"] for c in conversion["credits"]} == {model["model"]}
        _sums_check(conversion)


async def test_linear_credits_and_their_explanation_by_hand(api: Api, world: World) -> None:
    data = await api.data(CONVERSION, {"id": world.conversions["X1"]}, world.admin)
    credits = {world.letter(c["enrollment"]["id"]): c for c in data["node"]["credits"]}
    assert {k: (c["share"], c["amount"]["amount"]) for k, c in credits.items()} == {
        "A": ("0.500000", "50.00"),
        "B": ("0.250000", "25.00"),
        "C": ("0.250000", "25.00"),
    }
    # A's explanation: its two touchpoints in time order, a quarter of the conversion each
    assert [
        (t["touchpoint"]["id"], t["weight"], t["amount"]["amount"])
        for t in credits["A"]["touchpoints"]
    ] == [
        (world.touchpoints["x1-a-click"], "0.250000", "25.00"),
        (world.touchpoints["x1-a-meeting"], "0.250000", "25.00"),
    ]
    assert [t["touchpoint"]["id"] for t in credits["C"]["touchpoints"]] == [
        world.touchpoints["x1-c-deal"]
    ]
    # thirds: rounded to 6 places, and the odd cent to the latest touchpoint (C)
    data = await api.data(CONVERSION, {"id": world.conversions["X4"]}, world.admin)
    credits = {world.letter(c["enrollment"]["id"]): c for c in data["node"]["credits"]}
    assert {k: (c["share"], c["amount"]["amount"]) for k, c in credits.items()} == {
        "A": ("0.333333", "3.33"),
        "B": ("0.333333", "3.33"),
        "C": ("0.333333", "3.34"),
    }
    assert credits["C"]["touchpoints"][0]["weight"] == "0.333333"


async def test_position_based_weights_of_one_partner_add_up_to_its_share(
    api: Api, world: World
) -> None:
    await _model(api, world, {"model": "POSITION_BASED", "firstWeight": "0.3", "lastWeight": "0.5"})
    data = await api.data(CONVERSION, {"id": world.conversions["X1"]}, world.admin)
    credits = {world.letter(c["enrollment"]["id"]): c for c in data["node"]["credits"]}
    # first 0.3 (A click), last 0.5 (C deal), the two middles 0.1 each (B lead, A meeting)
    assert {k: (c["share"], c["amount"]["amount"]) for k, c in credits.items()} == {
        "A": ("0.400000", "40.00"),
        "B": ("0.100000", "10.00"),
        "C": ("0.500000", "50.00"),
    }
    assert [(t["weight"], t["amount"]["amount"]) for t in credits["A"]["touchpoints"]] == [
        ("0.300000", "30.00"),
        ("0.100000", "10.00"),
    ]


async def test_conversion_fields(api: Api, world: World) -> None:
    await Conversion.filter(external_id="X1").update(
        refunded_minor=2_550, status=ConversionStatus.PARTIALLY_REFUNDED
    )
    query = """query($id: ID!) { node(id: $id) { id ... on Conversion { externalId kind status
      amount { amount currency } refunded { amount currency } occurredAt program { id } } } }"""
    data = await api.data(query, {"id": world.conversions["X1"]}, world.admin)
    assert data["node"] == {
        "id": world.conversions["X1"],
        "externalId": "X1",
        "kind": "SALE",
        "status": "PARTIALLY_REFUNDED",
        "amount": {"amount": "100.00", "currency": "EUR"},
        "refunded": {"amount": "25.50", "currency": "EUR"},
        "occurredAt": "2026-06-01T12:00:00+00:00",
        "program": {"id": world.program},
    }
    query = """query($id: ID!) { node(id: $id) { id ... on Touchpoint { kind role occurredAt
      enrollment { id } } } }"""
    data = await api.data(query, {"id": world.touchpoints["x1-a-meeting"]}, world.admin)
    assert data["node"] == {
        "id": world.touchpoints["x1-a-meeting"],
        "kind": "MEETING",
        "role": "CLOSE",
        "occurredAt": "2026-05-29T12:00:00+00:00",
        "enrollment": {"id": world.a["enrollmentId"]},
    }


# Who may read what --------------------------------------------------------------------------


async def test_a_partner_sees_its_own_credits_and_only_its_own_on_a_shared_conversion(
    api: Api, world: World
) -> None:
    a = world.a
    data = await api.data(CREDITS, {"id": a["enrollmentId"], "first": 100}, a["token"])
    credits = [edge["node"] for edge in data["node"]["credits"]["edges"]]
    assert sorted(c["conversion"]["externalId"] for c in credits) == ["X1", "X4", "Y1", "Y2", "Y3"]
    for credit in credits:
        assert credit["enrollment"]["id"] == a["enrollmentId"]
        # credit.conversion.credits: A's own credit only, even where B and C are credited too
        assert [c["enrollment"]["id"] for c in credit["conversion"]["credits"]] == [
            a["enrollmentId"]
        ]
        for part in credit["touchpoints"]:
            assert part["touchpoint"]["enrollment"]["id"] == a["enrollmentId"]
    # the same through node(id:) of the shared conversion
    data = await api.data(CONVERSION, {"id": world.conversions["X1"]}, a["token"])
    assert [c["enrollment"]["id"] for c in data["node"]["credits"]] == [a["enrollmentId"]]
    assert data["node"]["credits"][0]["share"] == "0.500000"
    admin_view = await api.data(CONVERSION, {"id": world.conversions["X1"]}, world.admin)
    assert len(admin_view["node"]["credits"]) == 3
    # and from the viewer's own enrollments
    query = """{ viewer { partner { enrollments { credits { totalCount
      edges { node { conversion { credits { enrollment { id } } } } } } } } } }"""
    data = await api.data(query, token=world.b["token"])
    (enrollment,) = data["viewer"]["partner"]["enrollments"]
    assert enrollment["credits"]["totalCount"] == 2  # X1 and X4
    for edge in enrollment["credits"]["edges"]:
        assert edge["node"]["conversion"]["credits"] == [
            {"enrollment": {"id": world.b["enrollmentId"]}}
        ]


NODE = """query($id: ID!) { node(id: $id) { id __typename } }"""


async def _null_node(api: Api, object_id: str, token: str) -> bool:
    """node(id:) answers null, with no error (so the object's existence does not leak)."""
    body = await api.post(NODE, {"id": object_id}, token)
    return "errors" not in body and body["data"] == {"node": None}


async def test_node_is_null_for_what_another_partner_owns(api: Api, world: World) -> None:
    a, b = world.a, world.b
    hidden_from_a = [
        world.conversions["X2"],  # credited to C alone
        world.touchpoints["x1-b-lead"],  # B's touchpoint on a conversion A shares
        world.touchpoints["x1-c-deal"],
        world.touchpoints["x2-c-webinar"],
        b["enrollmentId"],
    ]
    for object_id in hidden_from_a:
        seen = await api.data(NODE, {"id": object_id}, world.admin)
        assert seen["node"]["id"] == object_id
        assert await _null_node(api, object_id, a["token"]), object_id
    for object_id in (world.conversions["Y1"], world.touchpoints["y1"]):  # A's alone
        assert await _null_node(api, object_id, b["token"]), object_id
    own = [
        (world.conversions["X1"], "Conversion"),
        (world.conversions["Y1"], "Conversion"),
        (world.touchpoints["x1-a-click"], "Touchpoint"),
    ]
    for object_id, type_name in own:
        data = await api.data(NODE, {"id": object_id}, a["token"])
        assert data["node"] == {"id": object_id, "__typename": type_name}


async def test_a_partner_cannot_list_a_programs_conversions(api: Api, world: World) -> None:
    body = await api.post(CONVERSIONS, {"p": world.program}, world.a["token"])
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] is None


async def test_an_app_token_without_reports_read_is_refused(api: Api, world: World) -> None:
    token = await _token(api, world.admin, ["partners:read", "programs:read"])
    body = await api.post(CONVERSIONS, {"p": world.program}, token)
    assert codes(body) == ["FORBIDDEN"]
    assert await _null_node(api, world.conversions["X1"], token)
    assert await _null_node(api, world.touchpoints["x1-a-click"], token)
    body = await api.post(CREDITS, {"id": world.a["enrollmentId"]}, token)
    assert codes(body) == ["FORBIDDEN"]
    assert body["data"] == {"node": None}


async def test_an_admin_made_app_token_with_reports_read_reads_every_partners(
    api: Api, world: World
) -> None:
    token = await _token(api, world.admin, ["reports:read"])
    data = await api.data(CONVERSIONS, {"p": world.program, "first": 100}, token)
    assert data["conversions"]["totalCount"] == 6
    x1 = next(e["node"] for e in data["conversions"]["edges"] if e["node"]["externalId"] == "X1")
    assert sorted(c["amount"]["amount"] for c in x1["credits"]) == ["25.00", "25.00", "50.00"]
    # enrollments are partners:read: this token may not follow credit.enrollment
    body = await api.post(CONVERSION, {"id": world.conversions["X1"]}, token)
    assert set(codes(body)) == {"FORBIDDEN"}


async def test_a_partner_made_app_token_reads_its_partners_only(api: Api, world: World) -> None:
    token = await _token(api, world.a["token"], ["partners:read", "reports:read"])
    data = await api.data(CONVERSIONS, {"p": world.program, "first": 100}, token)
    listed = {e["node"]["externalId"]: e["node"] for e in data["conversions"]["edges"]}
    assert sorted(listed) == ["X1", "X4", "Y1", "Y2", "Y3"]
    assert data["conversions"]["totalCount"] == 5
    assert [c["share"] for c in listed["X1"]["credits"]] == ["0.500000"]
    data = await api.data(CONVERSION, {"id": world.conversions["X4"]}, token)
    assert [c["enrollment"]["id"] for c in data["node"]["credits"]] == [world.a["enrollmentId"]]
    assert await _null_node(api, world.conversions["X2"], token)
    body = await api.post(CREDITS, {"id": world.b["enrollmentId"]}, token)
    assert "errors" not in body
    assert body["data"] == {"node": None}


async def test_anonymous_callers_are_unauthenticated(api: Api, world: World) -> None:
    body = await api.post(CONVERSIONS, {"p": world.program})
    assert codes(body) == ["UNAUTHENTICATED"]
    body = await api.post(NODE, {"id": world.conversions["X1"]})
    assert codes(body) == ["UNAUTHENTICATED"]


# Pagination ----------------------------------------------------------------------------------


async def test_enrollment_credits_are_paginated_newest_first(api: Api, world: World) -> None:
    a = world.a
    expected = [
        to_global_id("Conversion", conversion_id)
        for conversion_id in await AttributionCredit.filter(enrollment_id=pk(a["enrollmentId"]))
        .order_by("-id")
        .values_list("conversion_id", flat=True)
    ]
    assert len(expected) == 5
    seen: list[str] = []
    after = None
    pages = []
    while True:
        variables = {"id": a["enrollmentId"], "first": 2, "after": after}
        data = await api.data(CREDITS, variables, a["token"])
        page = data["node"]["credits"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        seen += [edge["node"]["conversion"]["id"] for edge in page["edges"]]
        pages.append(len(page["edges"]))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert pages == [2, 2, 1]
    assert seen == expected
    body = await api.post(CREDITS, {"id": a["enrollmentId"], "first": 101}, a["token"])
    assert codes(body) == ["BAD_USER_INPUT"]
    body = await api.post(CREDITS, {"id": a["enrollmentId"], "after": "nope"}, a["token"])
    assert codes(body) == ["BAD_USER_INPUT"]


async def test_conversions_are_paginated_last_recorded_first(api: Api, world: World) -> None:
    order = ["Y3", "Y2", "Y1", "X4", "X2", "X1"]  # by ID, descending
    data = await api.data(CONVERSIONS, {"p": world.program, "first": 4}, world.admin)
    first = data["conversions"]
    assert [e["node"]["externalId"] for e in first["edges"]] == order[:4]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["totalCount"] == 6
    variables = {"p": world.program, "first": 4, "after": first["pageInfo"]["endCursor"]}
    data = await api.data(CONVERSIONS, variables, world.admin)
    second = data["conversions"]
    assert [e["node"]["externalId"] for e in second["edges"]] == order[4:]
    assert second["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "endCursor": second["edges"][-1]["cursor"],
    }
    # another program's ID, or not a program's: nothing
    other = await api.program(world.admin, "Other")
    for program_id in (other, world.a["enrollmentId"], "garbage"):
        data = await api.data(CONVERSIONS, {"p": program_id}, world.admin)
        assert data["conversions"]["edges"] == []
        assert data["conversions"]["totalCount"] == 0


# DataLoaders ---------------------------------------------------------------------------------

NESTED = """query($id: ID!) {
  node(id: $id) { ... on Enrollment { credits(first: 100) { edges { node { share
    enrollment { referralCode program { name } }
    conversion { externalId program { name } credits { share enrollment { referralCode } } }
    touchpoints { weight touchpoint { kind enrollment { referralCode } } } } } } } }
  viewer { partner { enrollments { referralCode } } } }"""

ADMIN_NESTED = """query($p: ID!) { conversions(programId: $p, first: 100) { edges { node {
  externalId credits { share enrollment { referralCode partner { name } }
    conversion { externalId } touchpoints { touchpoint { kind enrollment { referralCode } } } }
  } } } }"""


async def _count(
    api: Api, caplog: pytest.LogCaptureFixture, query: str, variables: dict[str, Any], token: str
) -> tuple[int, dict[str, Any]]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        data = await api.data(query, variables, token)
    return sum(1 for r in caplog.records if r.name == "tortoise.db_client"), data


async def test_a_page_of_credits_with_nested_objects_costs_a_bounded_number_of_queries(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    async def measure() -> tuple[int, int, int]:
        a = world.a
        partner, data = await _count(api, caplog, NESTED, {"id": a["enrollmentId"]}, a["token"])
        admin, _ = await _count(api, caplog, ADMIN_NESTED, {"p": world.program}, world.admin)
        return partner, admin, len(data["node"]["credits"]["edges"])

    few = await measure()
    # ten more conversions, each shared by A (two touchpoints) and B
    for n in range(10):
        customer = await Customer.create(program_id=pk(world.program), external_id=f"z{n}")
        await _touch(world, f"z{n}-a1", world.a, day(-3), customer_id=customer.pk)
        await _touch(world, f"z{n}-b", world.b, day(-2), customer_id=customer.pk)
        await _touch(world, f"z{n}-a2", world.a, day(-1), customer_id=customer.pk)
        await _sale(world, f"Z{n}", 3_000, customer_id=customer.pk)
    await _model(api, world, {"model": "LINEAR"})
    many = await measure()
    assert (few[2], many[2]) == (5, 15)
    assert min(few) > 0
    assert many[:2] == few[:2]
