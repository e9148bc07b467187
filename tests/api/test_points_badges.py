"""Points and badges through real HTTP: setPointRules and Program.pointRules, createBadge and
Program.badges, conversions earning points and awards (Enrollment.points, Enrollment.badges,
BadgeAward.credentialUrl, Badge.holders), refunds taking points back, a CLICKS badge earned
on the click route, two recordConversion calls at once awarding once, and who may see and do
what (a partner never reaches another partner's awards or points by any path)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from domain.audit.models import AuditEntry
from domain.gamification.models import Badge, BadgeAward, PointEntry, PointRule
from domain.settings import Settings
from domain.tracking.clicks import ClickService
from tests.helpers import Api

MONEY = "{ amount currency }"
BADGE = (
    f"id code name description imageUrl metric threshold periodDays points repeating "
    f"bonusAmount {MONEY} holders program {{ id }}"
)
AWARD = "id awardedAt sequence value credentialUrl badge { code } enrollment { id }"
ENROLLMENT = f"""query($id: ID!) {{ node(id: $id) {{ ... on Enrollment {{
    points badges {{ {AWARD} }} }} }} }}"""
PROGRAM = f"""query($id: ID!) {{ node(id: $id) {{ ... on Program {{
    pointRules {{ conversionKind pointsPerConversion pointsPerUnit }}
    badges {{ {BADGE} }} }} }} }}"""
NODE = "query($id: ID!) { node(id: $id) { id } }"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


@dataclass
class World:
    admin: str
    program: str
    other: str  # another program; partner C is enrolled in it
    a: dict[str, Any]  # {"id", "token", "enrollmentId", "code"}
    b: dict[str, Any]
    c: dict[str, Any]


async def _code(api: Api, admin: str, enrollment: str) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }"
    return str((await api.data(query, {"id": enrollment}, admin))["node"]["referralCode"])


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    program = await api.program(admin)
    other = await api.program(admin, "Other")
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    c = await api.partner(admin, "Gamma", "c@example.com", other)
    for side in (a, b, c):
        side["code"] = await _code(api, admin, side["enrollmentId"])
    return World(admin, program, other, a, b, c)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def _token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "t", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


async def set_rules(api: Api, token: str, program: str, rules: list[dict[str, Any]]) -> Any:
    return await api.mutate(
        "setPointRules",
        {"programId": program, "rules": rules},
        "program { id pointRules { conversionKind pointsPerConversion pointsPerUnit } }",
        token,
    )


async def create_badge(api: Api, token: str, fields: dict[str, Any]) -> dict[str, Any]:
    return await api.mutate("createBadge", fields, f"badge {{ {BADGE} }}", token)


async def sell(api: Api, world: World, who: dict[str, Any], external_id: str, amount: str,
               program: str | None = None) -> None:  # fmt: skip
    payload = await api.mutate(
        "recordConversion",
        {"programId": program or world.program, "externalId": external_id, "kind": "SALE",
         "amount": amount, "currency": "EUR", "referralCode": who["code"]},
        "conversion { id }",
        world.admin,
    )  # fmt: skip
    assert payload["userErrors"] == [], payload


async def enrollment(api: Api, token: str, enrollment_id: str) -> Any:
    return (await api.data(ENROLLMENT, {"id": enrollment_id}, token))["node"]


# --- point rules ----------------------------------------------------------------------------


async def test_set_point_rules_replaces_the_programs_rules(api: Api, world: World) -> None:
    first = await set_rules(
        api, world.admin, world.program,
        [{"conversionKind": "SALE", "pointsPerConversion": 10, "pointsPerUnit": 1},
         {"conversionKind": "LEAD", "pointsPerConversion": 5}],
    )  # fmt: skip
    assert first["userErrors"] == []
    assert first["program"]["pointRules"] == [
        {"conversionKind": "LEAD", "pointsPerConversion": 5, "pointsPerUnit": 0},
        {"conversionKind": "SALE", "pointsPerConversion": 10, "pointsPerUnit": 1},
    ]
    second = await set_rules(
        api, world.admin, world.program, [{"conversionKind": "SIGNUP", "pointsPerUnit": 3}]
    )
    shown = (await api.data(PROGRAM, {"id": world.program}, world.a["token"]))["node"]
    assert (
        shown["pointRules"]
        == second["program"]["pointRules"]
        == [{"conversionKind": "SIGNUP", "pointsPerConversion": 0, "pointsPerUnit": 3}]
    )
    assert await AuditEntry.filter(action="setPointRules").count() == 2


async def test_refused_point_rules_are_user_errors_and_change_nothing(
    api: Api, world: World
) -> None:
    await set_rules(
        api, world.admin, world.program, [{"conversionKind": "SALE", "pointsPerUnit": 1}]
    )
    refused = await set_rules(
        api, world.admin, world.program,
        [{"conversionKind": "LEAD", "pointsPerConversion": 1},
         {"conversionKind": "LEAD", "pointsPerUnit": -2}],
    )  # fmt: skip
    assert refused["program"] is None
    assert refused["userErrors"] == [
        {"field": ["rules", "1", "conversionKind"], "message": "one rule per conversion kind",
         "code": "INVALID"},
        {"field": ["rules", "1", "pointsPerUnit"], "message": "must be 0 to 1000000",
         "code": "INVALID"},
    ]  # fmt: skip
    missing = await set_rules(api, world.admin, world.a["enrollmentId"], [])
    assert [e["code"] for e in missing["userErrors"]] == ["NOT_FOUND"]  # not a program id
    rows = await PointRule.all().values_list("conversion_kind", "points_per_unit")
    assert [(str(kind), unit) for kind, unit in rows] == [("SALE", 1)]


# --- badges ---------------------------------------------------------------------------------


async def test_a_badge_is_created_and_listed_with_its_program(api: Api, world: World) -> None:
    made = await create_badge(
        api, world.admin,
        {"programId": world.program, "code": "big-seller", "name": "Big seller",
         "description": "Sold 1000 EUR", "imageUrl": "https://cdn.example/big.png",
         "metric": "REVENUE", "threshold": "1000.00", "periodDays": 30, "points": 25,
         "bonusAmount": "50"},
    )  # fmt: skip
    assert made["userErrors"] == []
    badge = made["badge"]
    assert {k: v for k, v in badge.items() if k != "id"} == {
        "code": "big-seller", "name": "Big seller", "description": "Sold 1000 EUR",
        "imageUrl": "https://cdn.example/big.png", "metric": "REVENUE", "threshold": "1000",
        "periodDays": 30, "points": 25, "repeating": False,
        "bonusAmount": {"amount": "50.00", "currency": "EUR"}, "holders": 0,
        "program": {"id": world.program},
    }  # fmt: skip
    listed = (await api.data(PROGRAM, {"id": world.program}, world.admin))["node"]["badges"]
    assert listed == [badge]
    entry = await AuditEntry.get(action="createBadge")
    assert entry.after is not None
    assert entry.after["bonusMinor"] == 5000


async def test_refused_badges_are_user_errors_and_nothing_is_stored(api: Api, world: World) -> None:
    base = {"programId": world.program, "code": "first", "name": "First", "metric": "CLICKS",
            "threshold": "1"}  # fmt: skip
    assert (await create_badge(api, world.admin, base))["userErrors"] == []
    again = await create_badge(api, world.admin, base | {"name": "Again"})
    assert again == {
        "badge": None,
        "userErrors": [{"field": ["code"], "message": "the program has a badge with this code",
                        "code": "CONFLICT"}],
    }  # fmt: skip
    bad = await create_badge(
        api, world.admin,
        base | {"code": "second", "imageUrl": "http://cdn.example/x.png", "threshold": "1.5",
                "bonusAmount": "-1"},
    )  # fmt: skip
    assert [(e["field"], e["code"]) for e in bad["userErrors"]] == [
        (["imageUrl"], "INVALID"), (["threshold"], "INVALID"), (["bonusAmount"], "INVALID")
    ]  # fmt: skip
    assert await create_badge(api, world.admin, base | {"programId": world.a["id"]}) == {
        "badge": None,
        "userErrors": [
            {"field": ["programId"], "message": "no Program with this ID", "code": "NOT_FOUND"}
        ],
    }
    assert [b.name for b in await Badge.all()] == ["First"]


async def test_conversions_earn_points_and_badges_seen_on_the_enrollment(
    api: Api, world: World, settings: Settings
) -> None:
    sale = {"conversionKind": "SALE", "pointsPerConversion": 10, "pointsPerUnit": 1}
    await set_rules(api, world.admin, world.program, [sale])
    made = await create_badge(
        api, world.admin,
        {"programId": world.program, "code": "every-2", "name": "Every two", "metric":
         "CONVERSIONS", "threshold": "2", "repeating": True, "points": 5, "bonusAmount": "1.50"},
    )  # fmt: skip
    badge_id = made["badge"]["id"]
    await sell(api, world, world.a, "s1", "20.00")  # 10 + 20 = 30
    assert await enrollment(api, world.admin, world.a["enrollmentId"]) == {
        "points": 30, "badges": []
    }  # fmt: skip
    await sell(api, world, world.a, "s2", "5.50")  # 10 + 5 = 15; 2 conversions: award, +5
    await sell(api, world, world.a, "s3", "1.00")  # 10 + 1 = 11
    await sell(api, world, world.a, "s4", "1.00")  # 11; 4 conversions: award 2, +5
    seen = await enrollment(api, world.a["token"], world.a["enrollmentId"])
    assert seen["points"] == 30 + 15 + 5 + 11 + 11 + 5
    awards = seen["badges"]
    assert [(a["badge"]["code"], a["sequence"], a["value"]) for a in awards] == [
        ("every-2", 1, "2"), ("every-2", 2, "4")
    ]  # fmt: skip
    for award in awards:
        assert award["credentialUrl"] == f"{settings.public_url}/badges/{award['id']}"
        assert award["enrollment"] == {"id": world.a["enrollmentId"]}
    holders = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Badge { holders } } }", {"id": badge_id},
        world.b["token"],
    )  # fmt: skip
    assert holders == {"node": {"holders": 1}}
    bonuses = await api.data(
        f"""query($id: ID!) {{ node(id: $id) {{ ... on Enrollment {{
        commissions(first: 10) {{ edges {{ node {{ kind amount {MONEY} status }} }} }} }} }} }}""",
        {"id": world.a["enrollmentId"]}, world.a["token"],
    )  # fmt: skip
    kinds = [e["node"] for e in bonuses["node"]["commissions"]["edges"]]
    assert kinds == [{"kind": "BONUS", "amount": {"amount": "1.50", "currency": "EUR"},
                      "status": "PENDING"}] * 2  # fmt: skip


async def test_a_refund_takes_points_back_but_keeps_the_award(api: Api, world: World) -> None:
    await set_rules(api, world.admin, world.program,
                    [{"conversionKind": "SALE", "pointsPerUnit": 2}])  # fmt: skip
    await create_badge(api, world.admin, {"programId": world.program, "code": "p100",
                                          "name": "100 points", "metric": "POINTS",
                                          "threshold": "100"})  # fmt: skip
    await sell(api, world, world.a, "s1", "80.00")  # 160 points
    refunded = await api.mutate(
        "refundConversion", {"programId": world.program, "externalId": "s1", "amount": "30.00"},
        "conversion { status }", world.admin,
    )  # fmt: skip
    assert refunded["userErrors"] == []
    seen = await enrollment(api, world.admin, world.a["enrollmentId"])
    assert seen["points"] == 100  # 160 x 50/80
    assert [a["badge"]["code"] for a in seen["badges"]] == ["p100"]
    rows = await PointEntry.all().order_by("id").values_list("kind", "points")
    assert [(str(k), p) for k, p in rows] == [("CONVERSION", 160), ("REVERSAL", -60)]


async def test_two_conversions_recorded_at_once_award_a_badge_once(api: Api, world: World) -> None:
    await create_badge(api, world.admin, {"programId": world.program, "code": "two",
                                          "name": "Two", "metric": "CONVERSIONS",
                                          "threshold": "2", "points": 7})  # fmt: skip
    await sell(api, world, world.a, "s1", "1.00")
    await asyncio.gather(
        sell(api, world, world.a, "x", "1.00"), sell(api, world, world.a, "y", "1.00")
    )
    seen = await enrollment(api, world.admin, world.a["enrollmentId"])
    assert seen["points"] == 7
    assert [(a["badge"]["code"], a["sequence"]) for a in seen["badges"]] == [("two", 1)]


# --- a CLICKS badge on the click route ------------------------------------------------------


async def click(client: httpx.AsyncClient, code: str, visitor: str) -> httpx.Response:
    return await client.get(f"/r/{code}", headers={"User-Agent": BROWSER,
                                                   "Cookie": f"pg_vid={visitor}"})  # fmt: skip


async def test_clicks_on_the_click_route_earn_a_clicks_badge(
    api: Api, world: World, client: httpx.AsyncClient, app: Starlette
) -> None:
    service: ClickService = app.state.clicks.service
    service.resolver.clear()
    service.recent.clear()
    service.writer.click_badges.clear()
    await create_badge(api, world.admin, {"programId": world.program, "code": "clicked-2",
                                          "name": "Two clicks", "metric": "CLICKS",
                                          "threshold": "2", "points": 3})  # fmt: skip
    visitors = ["v" * 22, "w" * 22, "x" * 22]
    assert (await click(client, world.a["code"], visitors[0])).status_code == 302
    assert (await click(client, world.a["code"], visitors[0])).status_code == 302  # a repeat
    assert await BadgeAward.all().count() == 0
    await click(client, world.b["code"], visitors[1])  # B's click is not A's
    assert await BadgeAward.all().count() == 0
    await click(client, world.a["code"], visitors[2])
    seen = await enrollment(api, world.a["token"], world.a["enrollmentId"])
    assert seen["points"] == 3
    assert [(a["badge"]["code"], a["value"]) for a in seen["badges"]] == [("clicked-2", "2")]
    assert (await enrollment(api, world.admin, world.b["enrollmentId"]))["badges"] == []


# --- who may see and do what ----------------------------------------------------------------


@pytest.fixture(params=["user", "app token"])
async def as_b(request: pytest.FixtureRequest, api: Api, world: World) -> str:
    """Partner B, as its user or through a token it made with every scope a partner may have."""
    if request.param == "user":
        return str(world.b["token"])
    return await _token(api, world.b["token"], ["reports:read", "partners:read", "programs:read"])


async def test_a_partner_never_reaches_another_partners_awards_or_points(
    api: Api, world: World, as_b: str
) -> None:
    await set_rules(api, world.admin, world.program,
                    [{"conversionKind": "SALE", "pointsPerConversion": 10}])  # fmt: skip
    await create_badge(api, world.admin, {"programId": world.program, "code": "first",
                                          "name": "First", "metric": "CONVERSIONS",
                                          "threshold": "1"})  # fmt: skip
    other_badge = await create_badge(
        api, world.admin, {"programId": world.other, "code": "first", "name": "First",
                           "metric": "CONVERSIONS", "threshold": "1"},
    )  # fmt: skip
    await sell(api, world, world.a, "a1", "10.00")
    await sell(api, world, world.c, "c1", "10.00", program=world.other)
    a_award = (await enrollment(api, world.admin, world.a["enrollmentId"]))["badges"][0]["id"]
    for hidden in (a_award, world.a["enrollmentId"], other_badge["badge"]["id"]):
        assert await api.data(NODE, {"id": hidden}, as_b) == {"node": None}
    through = await api.data(
        f"query($id: ID!) {{ node(id: $id) {{ ... on BadgeAward {{ {AWARD} }} }} }}",
        {"id": a_award}, as_b,
    )  # fmt: skip
    assert through == {"node": None}
    own = await api.data(
        """{ viewer { partner { enrollments { id points badges { id }
        program { badges { code holders } } } } } }""",
        None, as_b,
    )  # fmt: skip
    assert own["viewer"]["partner"]["enrollments"] == [
        {"id": world.b["enrollmentId"], "points": 0, "badges": [],
         "program": {"badges": [{"code": "first", "holders": 1}]}}
    ]  # fmt: skip
    mine = await api.data(ENROLLMENT, {"id": world.a["enrollmentId"]}, world.a["token"])
    assert mine["node"]["points"] == 10
    assert [a["id"] for a in mine["node"]["badges"]] == [a_award]


async def test_partners_and_read_only_tokens_cannot_create_badges_or_set_point_rules(
    api: Api, world: World, as_b: str
) -> None:
    reader = await _token(api, world.admin, ["programs:read", "partners:read"])
    for token in (as_b, reader):
        body = await api.post(
            "mutation($i: CreateBadgeInput!) { createBadge(input: $i) { badge { id } } }",
            {"i": {"programId": world.program, "code": "x", "name": "X", "metric": "LEADS",
                   "threshold": "1"}},
            token,
        )  # fmt: skip
        assert codes(body) == ["FORBIDDEN"]
        body = await api.post(
            "mutation($i: SetPointRulesInput!) { setPointRules(input: $i) { program { id } } }",
            {"i": {"programId": world.program, "rules": [{"conversionKind": "SALE",
                                                          "pointsPerUnit": 1}]}},
            token,
        )  # fmt: skip
        assert codes(body) == ["FORBIDDEN"]
    assert await Badge.all().count() == 0
    assert await PointRule.all().count() == 0
    writer = await _token(api, world.admin, ["programs:write"])
    leads = {"programId": world.program, "code": "x", "name": "X", "metric": "LEADS",
             "threshold": "1"}  # fmt: skip
    made = await create_badge(api, writer, leads)
    assert made["userErrors"] == []
    assert (await AuditEntry.get(action="createBadge")).actor.startswith("app:t (pgt_")


async def test_app_tokens_read_badges_and_awards_by_their_scopes(api: Api, world: World) -> None:
    await create_badge(api, world.admin, {"programId": world.program, "code": "first",
                                          "name": "First", "metric": "CONVERSIONS",
                                          "threshold": "1"})  # fmt: skip
    await sell(api, world, world.a, "a1", "10.00")
    award = (await enrollment(api, world.admin, world.a["enrollmentId"]))["badges"][0]
    badge_id = (await api.data(PROGRAM, {"id": world.program}, world.admin))["node"]["badges"][0][
        "id"
    ]
    programs = await _token(api, world.admin, ["programs:read"])
    partners = await _token(api, world.admin, ["partners:read"])
    assert await api.data(NODE, {"id": badge_id}, programs) == {"node": {"id": badge_id}}
    assert await api.data(NODE, {"id": award["id"]}, programs) == {"node": None}
    assert await api.data(NODE, {"id": award["id"]}, partners) == {"node": {"id": award["id"]}}
    assert await api.data(NODE, {"id": badge_id}, partners) == {"node": None}
