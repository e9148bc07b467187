"""Attribution over stored journeys through the API: recompute, what-if preview, data-driven
models, who may ask, and refused input.

Journeys are written straight into the database (the ingestion mutations come with tracking);
every figure below is worked by hand from the journeys of `world`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.attribution.models import AttributionCredit
from domain.audit.models import AuditEntry
from domain.tracking.models import (
    Conversion,
    ConversionKind,
    Customer,
    Touchpoint,
    TouchpointKind,
)
from tests.helpers import Api, pk

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@dataclass
class World:
    admin: str
    program: str  # global id
    a: dict[str, Any]
    b: dict[str, Any]
    c: dict[str, Any]

    @property
    def names(self) -> dict[int, str]:
        return {pk(p["enrollmentId"]): n for n, p in (("A", self.a), ("B", self.b), ("C", self.c))}


async def _touch(
    program: int, enrollment: dict[str, Any], at: datetime, **fields: Any
) -> Touchpoint:
    fields.setdefault("kind", TouchpointKind.CLICK)
    return await Touchpoint.create(
        program_id=program, enrollment_id=pk(enrollment["enrollmentId"]), occurred_at=at, **fields
    )


@pytest.fixture
async def world(api: Api) -> World:
    """Partners A, B, C in one EUR program (lookback 30 days).

    X1, SALE 100.00 at day 0 by customer cust-1 (who also used visitor v1):
        A click day -10 (visitor v1), B lead day -5 and C deal day -1 (cust-1),
        plus a flagged C touchpoint (day -2) and an A click of day -40 (outside the window),
        and a B meeting at day +1 (after the sale).
    X2, SALE 50.00 at day 0 naming B's click ck-2 (day -3, visitor v2).
    X3, RENEWAL 30.00 of cust-1 at day 60: credited like X1.
    Not converting: visitor v3 (an A click, day -2); customer cust-2 (a C webinar, day -4).
    """
    admin = await api.admin_token()
    program = await api.program(admin)
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    c = await api.partner(admin, "Gamma", "c@example.com", program)
    p = pk(program)
    cust1 = await Customer.create(program_id=p, external_id="cust-1")
    cust2 = await Customer.create(program_id=p, external_id="cust-2")
    await _touch(p, a, day(-10), visitor_id="v1", click_id="ck-1")
    await _touch(p, b, day(-5), kind=TouchpointKind.LEAD, customer_id=cust1.pk)
    await _touch(p, c, day(-1), kind=TouchpointKind.DEAL, customer_id=cust1.pk)
    await _touch(p, c, day(-2), customer_id=cust1.pk, excluded=True)
    await _touch(p, a, day(-40), customer_id=cust1.pk)
    await _touch(p, b, day(1), kind=TouchpointKind.MEETING, customer_id=cust1.pk)
    await _touch(p, b, day(-3), visitor_id="v2", click_id="ck-2")
    await _touch(p, a, day(-2), visitor_id="v3", click_id="ck-3")
    await _touch(p, c, day(-4), kind=TouchpointKind.WEBINAR, customer_id=cust2.pk)
    common = {"program_id": p, "currency": "EUR", "occurred_at": day(0)}
    await Conversion.create(
        external_id="X1",
        kind=ConversionKind.SALE,
        amount_minor=10_000,
        customer_id=cust1.pk,
        visitor_id="v1",
        **common,
    )
    await Conversion.create(
        external_id="X2", kind=ConversionKind.SALE, amount_minor=5_000, click_id="ck-2", **common
    )
    common["occurred_at"] = day(60)
    await Conversion.create(
        external_id="X3",
        kind=ConversionKind.RENEWAL,
        amount_minor=3_000,
        customer_id=cust1.pk,
        **common,
    )
    return World(admin, program, a, b, c)


async def _set_model(api: Api, world: World, model: dict[str, Any]) -> None:
    payload = await api.mutate(
        "updateProgram",
        {"id": world.program, "attribution": model},
        "program { attribution { model codeWins } }",
        world.admin,
    )
    assert payload["userErrors"] == [], payload


async def _recompute(api: Api, world: World, **extra: Any) -> dict[str, Any]:
    return await api.mutate(
        "recomputeAttribution",
        {"programId": world.program, **extra},
        "conversionsRecomputed",
        world.admin,
    )


async def _stored(world: World) -> dict[str, list[tuple[str, int]]]:
    """Stored credits: conversion external id -> [(partner letter, amount)]."""
    rows = (
        await AttributionCredit.all()
        .order_by("id")
        .values_list("conversion__external_id", "enrollment_id", "amount_minor")
    )
    found: dict[str, list[tuple[str, int]]] = {}
    for external_id, enrollment_id, amount in rows:
        found.setdefault(external_id, []).append((world.names[enrollment_id], amount))
    return {k: sorted(v) for k, v in found.items()}


async def test_recompute_stores_credits_of_every_journey_kind(api: Api, world: World) -> None:
    await _set_model(api, world, {"model": "LINEAR"})
    payload = await _recompute(api, world)
    assert payload == {"conversionsRecomputed": 3, "userErrors": []}
    # X1: A (visitor v1), B and C (cust-1); the flagged, too old and later touchpoints are out.
    # 10000 / 3 leaves one cent: the tie goes to the later touchpoint (C).
    assert await _stored(world) == {
        "X1": [("A", 3333), ("B", 3333), ("C", 3334)],
        "X2": [("B", 5000)],
        "X3": [("A", 1000), ("B", 1000), ("C", 1000)],  # the renewal follows X1's journey
    }
    credit = await AttributionCredit.get(
        conversion__external_id="X1", enrollment_id=pk(world.c["enrollmentId"])
    )
    assert (credit.model, credit.points, credit.total, credit.currency) == (
        "LINEAR",
        "1",
        "3",
        "EUR",
    )
    deal = await Touchpoint.get(kind=TouchpointKind.DEAL)
    assert credit.touchpoints == [[deal.pk, "1"]]
    entry = await AuditEntry.get(action="recomputeAttribution")
    assert entry.after == {
        "model": "LINEAR",
        "from": None,
        "to": None,
        "conversionsRecomputed": 3,
        "ledgerEntries": 0,  # the program has no commission rules
        "byKind": {},
    }


async def test_recompute_replaces_credits_and_respects_the_range(api: Api, world: World) -> None:
    await _set_model(api, world, {"model": "LINEAR"})
    await _recompute(api, world)
    await _set_model(api, world, {"model": "FIRST_TOUCH"})
    payload = await _recompute(api, world, **{"from": day(30).isoformat()})
    assert payload == {"conversionsRecomputed": 1, "userErrors": []}
    stored = await _stored(world)
    assert stored["X1"] == [("A", 3333), ("B", 3333), ("C", 3334)]  # outside the range: kept
    assert stored["X3"] == [("A", 3000)]
    payload = await _recompute(api, world, to=day(30).isoformat())
    assert payload["conversionsRecomputed"] == 2
    assert (await _stored(world))["X1"] == [("A", 10_000)]


async def test_code_wins_gives_the_checkout_code_all_the_credit(api: Api, world: World) -> None:
    p = pk(world.program)
    code = await _touch(p, world.b, day(0), kind=TouchpointKind.CODE)
    await Conversion.filter(external_id="X1").update(code_touchpoint_id=code.pk)
    await _set_model(api, world, {"model": "LINEAR", "codeWins": True})
    await _recompute(api, world, to=day(30).isoformat())
    assert (await _stored(world))["X1"] == [("B", 10_000)]
    await _set_model(api, world, {"model": "LINEAR", "codeWins": False})
    await _recompute(api, world, to=day(30).isoformat())
    # four touchpoints now: A, B (lead), C, B (code): B earns two quarters
    assert (await _stored(world))["X1"] == [("A", 2500), ("B", 5000), ("C", 2500)]


PREVIEW = """query($p: ID!, $m: AttributionModelInput!, $from: DateTime, $to: DateTime) {
  attributionPreview(programId: $p, model: $m, from: $from, to: $to) {
    enrollment { referralCode partner { name } }
    conversions amount { amount currency } currentConversions currentAmount { amount }
    difference { amount } } }"""


def _preview_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    return [
        (
            row["enrollment"]["partner"]["name"],
            row["conversions"],
            row["amount"]["amount"],
            row["currentConversions"],
            row["currentAmount"]["amount"],
            row["difference"]["amount"],
        )
        for row in data["attributionPreview"]
    ]


async def test_preview_compares_another_model_without_writing(api: Api, world: World) -> None:
    await _set_model(api, world, {"model": "LINEAR"})
    await _recompute(api, world)
    before = await _stored(world)
    data = await api.data(PREVIEW, {"p": world.program, "m": {"model": "FIRST_TOUCH"}}, world.admin)
    assert _preview_rows(data) == [
        # FIRST_TOUCH: A takes X1 and its renewal X3; B keeps X2; C nothing
        ("Alpha", "2.000000", "130.00", "0.666667", "43.33", "86.67"),
        ("Beta", "1.000000", "50.00", "1.666667", "93.33", "-43.33"),
        ("Gamma", "0.000000", "0.00", "0.666667", "43.34", "-43.34"),
    ]
    assert data["attributionPreview"][0]["amount"]["currency"] == "EUR"
    assert await _stored(world) == before  # nothing written
    assert await AuditEntry.filter(action="recomputeAttribution").count() == 1


async def test_preview_of_position_and_time_decay_by_hand(api: Api, world: World) -> None:
    # X1's journey A (day -10), B (day -5), C (day -1); X3 follows it; X2 is B's alone.
    position = {"model": "POSITION_BASED", "firstWeight": "0.3", "lastWeight": "0.5"}
    data = await api.data(
        PREVIEW, {"p": world.program, "m": position, "to": day(30).isoformat()}, world.admin
    )
    assert [(r[0], r[1], r[2]) for r in _preview_rows(data)] == [
        ("Beta", "1.200000", "70.00"),  # X1: 0.2 of the middle; X2 alone
        ("Gamma", "0.500000", "50.00"),
        ("Alpha", "0.300000", "30.00"),
    ]
    decay = {"model": "TIME_DECAY", "halfLifeDays": 4.5}
    data = await api.data(
        PREVIEW, {"p": world.program, "m": decay, "to": day(30).isoformat()}, world.admin
    )
    # weights 2^(-10/4.5), 2^(-5/4.5), 2^(-1/4.5): exact shares computed here in Decimal
    w = [Decimal(2) ** (Decimal(-age) / Decimal("4.5")) for age in (10, 5, 1)]
    shares = [x / sum(w) for x in w]
    rows = {r[0]: r for r in _preview_rows(data)}
    assert Decimal(rows["Alpha"][1]) == round(shares[0], 6)
    assert Decimal(rows["Gamma"][1]) == round(shares[2], 6)
    cents = [int(s * 10_000) for s in shares]  # floors; the cents left go to the largest rests
    assert Decimal(rows["Alpha"][2]) * 100 in {cents[0], cents[0] + 1}
    assert sum(Decimal(r[2]) for r in rows.values()) == Decimal("150.00")


DATA_DRIVEN = """query($p: ID!, $m: DataDrivenMethod!, $from: DateTime, $to: DateTime) {
  dataDrivenAttribution(programId: $p, method: $m, from: $from, to: $to) {
    method journeys convertingJourneys conversionProbability exact
    rows { enrollment { partner { name } } removalEffect shapleyValue share
           attributedConversions } } }"""


async def test_markov_over_stored_journeys(api: Api, world: World) -> None:
    await _set_model(api, world, {"model": "LINEAR"})
    data = await api.data(DATA_DRIVEN, {"p": world.program, "m": "MARKOV"}, world.admin)
    result = data["dataDrivenAttribution"]
    # converting: X1 A>B>C, X2 B, X3 A>B>C; not converting: v3 A, cust-2 C
    assert (result["journeys"], result["convertingJourneys"]) == (5, 3)
    assert result["conversionProbability"] == "0.600000"
    assert result["exact"] is True
    # START -> A 3/5, B 1/5, C 1/5; A -> B 2/3, NULL 1/3; B -> C 2/3, CONV 1/3;
    # C -> CONV 2/3, NULL 1/3. Without A: P = 1/5 (1/3 + 2/3 2/3) + 1/5 2/3 = 13/45, so
    # RE_A = 1 - (13/45) / (3/5) = 14/27; without B: P = 2/15, RE_B = 7/9; without C:
    # P = 3/5 2/3 1/3 + 1/5 1/3 = 1/5, RE_C = 2/3. Shares over 53/27: 21/53, 18/53, 14/53.
    rows = [
        (r["enrollment"]["partner"]["name"], r["removalEffect"], r["share"], r["shapleyValue"])
        for r in result["rows"]
    ]
    assert rows == [
        ("Beta", "0.777778", "0.396226", None),
        ("Gamma", "0.666667", "0.339623", None),
        ("Alpha", "0.518519", "0.264151", None),
    ]
    total = sum(Decimal(r["attributedConversions"]) for r in result["rows"])
    assert abs(total - 3) <= Decimal("0.000003")


async def test_shapley_over_stored_journeys(api: Api, world: World) -> None:
    data = await api.data(DATA_DRIVEN, {"p": world.program, "m": "SHAPLEY"}, world.admin)
    result = data["dataDrivenAttribution"]
    assert result["conversionProbability"] is None
    values = {r["enrollment"]["partner"]["name"]: r["shapleyValue"] for r in result["rows"]}
    # v({A,B,C}) = 2/2, v({B}) = 1/1, v({A}) = 0/1, v({C}) = 0/1, every other set 0.
    # phi_A = v(A)/3 + [v(AB) - v(B)]/6 + [v(AC) - v(C)]/6 + [v(ABC) - v(BC)]/3
    #       = 0 - 1/6 + 0 + 1/3 = 1/6, the same for C; phi_B = 1/3 + 0 + 0 + 1/3 = 2/3
    assert values["Alpha"] == values["Gamma"]  # symmetric players
    assert values == {"Alpha": "0.166667", "Beta": "0.666667", "Gamma": "0.166667"}


async def test_data_driven_range_limits_the_journeys(api: Api, world: World) -> None:
    variables = {"p": world.program, "m": "MARKOV", "from": day(30).isoformat()}
    result = (await api.data(DATA_DRIVEN, variables, world.admin))["dataDrivenAttribution"]
    # only X3 converts in range; no touchpoint falls after day 30 (the renewal uses X1's)
    assert (result["journeys"], result["convertingJourneys"]) == (1, 1)
    assert result["conversionProbability"] == "1.000000"


async def test_empty_program_answers_zeroes(api: Api) -> None:
    admin = await api.admin_token()
    program = await api.program(admin)
    for method in ("MARKOV", "SHAPLEY"):
        result = (await api.data(DATA_DRIVEN, {"p": program, "m": method}, admin))[
            "dataDrivenAttribution"
        ]
        assert (result["journeys"], result["convertingJourneys"], result["rows"]) == (0, 0, [])
    data = await api.data(PREVIEW, {"p": program, "m": {"model": "LINEAR"}}, admin)
    assert data == {"attributionPreview": []}
    payload = await api.mutate(
        "recomputeAttribution", {"programId": program}, "conversionsRecomputed", admin
    )
    assert payload == {"conversionsRecomputed": 0, "userErrors": []}


def _error(body: dict[str, Any]) -> tuple[str, str]:
    assert body["data"] is None, body
    error = body["errors"][0]
    return error["extensions"]["code"], error["message"]


async def test_only_admins_preview_and_read_data_driven_models(api: Api, world: World) -> None:
    token = (
        await api.mutate(
            "createApiToken",
            {"name": "bi", "scopes": ["reports:read", "programs:write", "partners:read"]},
            "token",
            world.admin,
        )
    )["token"]
    queries = [
        (PREVIEW, {"p": world.program, "m": {"model": "LINEAR"}}),
        (DATA_DRIVEN, {"p": world.program, "m": "MARKOV"}),
    ]
    for query, variables in queries:
        assert _error(await api.post(query, variables, world.a["token"]))[0] == "FORBIDDEN"
        assert _error(await api.post(query, variables, token))[0] == "FORBIDDEN"
        assert _error(await api.post(query, variables))[0] == "UNAUTHENTICATED"


async def test_partners_cannot_recompute(api: Api, world: World) -> None:
    query = """mutation($i: RecomputeAttributionInput!) {
      recomputeAttribution(input: $i) { conversionsRecomputed } }"""
    body = await api.post(query, {"i": {"programId": world.program}}, world.b["token"])
    assert _error(body)[0] == "FORBIDDEN"
    assert await AttributionCredit.all().count() == 0
    assert await AuditEntry.filter(action="recomputeAttribution").count() == 0


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"model": "POSITION_BASED", "firstWeight": "0.7", "lastWeight": "0.5"},
            "attribution",
        ),
        ({"model": "TIME_DECAY", "halfLifeDays": 0}, "halfLifeDays"),
        ({"model": "LINEAR", "lookbackDays": 366}, "lookbackDays"),
    ],
)
async def test_preview_refuses_bad_settings(
    api: Api, world: World, model: dict[str, Any], message: str
) -> None:
    body = await api.post(PREVIEW, {"p": world.program, "m": model}, world.admin)
    code, text = _error(body)
    assert code == "BAD_USER_INPUT"
    assert message in text


async def test_bad_ranges_and_ids_are_refused_and_change_nothing(api: Api, world: World) -> None:
    backwards = {"from": day(5).isoformat(), "to": day(1).isoformat()}
    body = await api.post(
        DATA_DRIVEN, {"p": world.program, "m": "SHAPLEY", **backwards}, world.admin
    )
    assert _error(body) == ("BAD_USER_INPUT", "to: must be after `from`")
    body = await api.post(DATA_DRIVEN, {"p": world.a["enrollmentId"], "m": "MARKOV"}, world.admin)
    assert _error(body)[0] == "NOT_FOUND"  # an id of another type names no program
    missing = world.program[:-2] + ("xx" if not world.program.endswith("xx") else "yy")
    body = await api.post(PREVIEW, {"p": missing, "m": {"model": "LINEAR"}}, world.admin)
    assert _error(body)[0] in {"BAD_USER_INPUT", "NOT_FOUND"}
    payload = await _recompute(api, world, **backwards)
    assert payload["conversionsRecomputed"] is None
    assert payload["userErrors"] == [
        {"field": ["to"], "message": "must be after `from`", "code": "INVALID"}
    ]
    assert await AttributionCredit.all().count() == 0
    assert await AuditEntry.filter(action="recomputeAttribution").count() == 0


async def test_unverified_conversions_are_never_credited(api: Api, world: World) -> None:
    """The pixel's conversions wait for a confirmation: recompute and preview skip them."""
    await Conversion.filter(external_id="X2").update(verified=False)
    await _set_model(api, world, {"model": "LINEAR"})
    assert (await _recompute(api, world))["conversionsRecomputed"] == 2
    assert "X2" not in await _stored(world)
    data = await api.data(PREVIEW, {"p": world.program, "m": {"model": "LAST_TOUCH"}}, world.admin)
    beta = [row for row in _preview_rows(data) if row[0] == "Beta"]
    assert beta == [("Beta", "0.000000", "0.00", "0.666667", "43.33", "-43.33")]
