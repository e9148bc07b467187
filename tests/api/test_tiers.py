"""Tiers partners earn, through real HTTP: Program.tierGraceDays, promotion by a recorded sale,
Enrollment.tierHistory and tierPinned, setEnrollmentTier and evaluateTiers, and who may do and
see what (admins and admin-made APP tokens with programs:write change tiers; a partner reads
only its own history)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.audit.models import AuditEntry
from domain.gamification.models import TierChange
from domain.partners.models import Enrollment
from tests.helpers import Api, pk

NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY = "tierHistory { from { name } to { name } reason at }"
ENROLLMENT = f"id tier {{ name }} tierPinned {HISTORY}"
READ = f"query($id: ID!) {{ node(id: $id) {{ ... on Enrollment {{ {ENROLLMENT} }} }} }}"
SET = f"enrollment {{ {ENROLLMENT} }}"
EVALUATED = "promoted { id tier { name } } demoted { id tier { name } }"


@dataclass
class World:
    """A EUR program with no tier grace: Bronze (rank 1, manual), Silver (rank 2: 100 EUR
    of revenue). A (in Bronze) and B (no tier) are its partners."""

    admin: str
    program: str
    tiers: dict[str, str]  # name -> global id
    a: dict[str, Any]  # {"id", "token", "enrollmentId", "code"}
    b: dict[str, Any]


async def create_tier(api: Api, admin: str, program: str, fields: dict[str, Any]) -> str:
    payload = await api.mutate("createTier", {"programId": program, **fields}, "tier { id }", admin)
    assert payload["userErrors"] == [], payload
    return str(payload["tier"]["id"])


async def _code(api: Api, admin: str, enrollment: str) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }"
    return str((await api.data(query, {"id": enrollment}, admin))["node"]["referralCode"])


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    made = await api.mutate(
        "createProgram",
        {"name": "Acme", "currency": "EUR", "destinationUrl": "https://acme.example/",
         "tierGraceDays": 0},
        "program { id }",
        admin,
    )  # fmt: skip
    program = made["program"]["id"]
    tiers = {
        "Bronze": await create_tier(api, admin, program, {"name": "Bronze", "rank": 1}),
        "Silver": await create_tier(
            api, admin, program,
            {"name": "Silver", "rank": 2, "qualifyMetric": "REVENUE", "qualifyThreshold": "100"},
        ),
    }  # fmt: skip
    a = await api.partner(admin, "Alpha", "a@example.com", program)
    bronze = {"id": a["enrollmentId"], "tierId": tiers["Bronze"]}
    await api.mutate("updateEnrollment", bronze, "enrollment { id }", admin)
    b = await api.partner(admin, "Beta", "b@example.com", program)
    for side in (a, b):
        side["code"] = await _code(api, admin, side["enrollmentId"])
    return World(admin, program, tiers, a, b)


async def sell(api: Api, world: World, who: dict[str, Any], external_id: str, amount: str) -> None:
    payload = await api.mutate(
        "recordConversion",
        {"programId": world.program, "externalId": external_id, "kind": "SALE",
         "amount": amount, "currency": "EUR", "referralCode": who["code"],
         "occurredAt": (NOW - timedelta(hours=1)).isoformat()},
        "conversion { id }",
        world.admin,
    )  # fmt: skip
    assert payload["userErrors"] == [], payload


async def refund(api: Api, world: World, external_id: str) -> None:
    payload = await api.mutate(
        "refundConversion",
        {"programId": world.program, "externalId": external_id},
        "conversion { id }",
        world.admin,
    )
    assert payload["userErrors"] == [], payload


async def read(api: Api, token: str, enrollment: str) -> Any:
    return (await api.data(READ, {"id": enrollment}, token))["node"]


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def _token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "t", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


# --- Program.tierGraceDays -------------------------------------------------------------------


async def test_tier_grace_days_is_set_shown_validated_and_audited(api: Api) -> None:
    admin = await api.admin_token()
    program = await api.program(admin)
    query = "query($id: ID!) { node(id: $id) { ... on Program { tierGraceDays } } }"
    assert await api.data(query, {"id": program}, admin) == {"node": {"tierGraceDays": 30}}

    refused = await api.mutate(
        "updateProgram", {"id": program, "tierGraceDays": 366}, "program { id }", admin
    )
    negative = await api.mutate(
        "updateProgram", {"id": program, "tierGraceDays": -1}, "program { id }", admin
    )
    changed = await api.mutate(
        "updateProgram", {"id": program, "tierGraceDays": 7}, "program { tierGraceDays }", admin
    )

    for payload in (refused, negative):
        assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
            (["tierGraceDays"], "INVALID")
        ]
    assert changed == {"program": {"tierGraceDays": 7}, "userErrors": []}
    entry = await AuditEntry.filter(action="updateProgram").get()
    assert (entry.before["tierGraceDays"], entry.after["tierGraceDays"]) == (30, 7)


async def test_create_program_takes_tier_grace_days(api: Api) -> None:
    admin = await api.admin_token()
    made = await api.mutate(
        "createProgram",
        {"name": "Acme", "currency": "EUR", "destinationUrl": "https://acme.example/",
         "tierGraceDays": 365},
        "program { tierGraceDays }",
        admin,
    )  # fmt: skip
    assert made == {"program": {"tierGraceDays": 365}, "userErrors": []}


# --- promotion and history -------------------------------------------------------------------


async def test_a_recorded_sale_promotes_and_the_partner_reads_its_history(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "S1", "150.00")

    seen = await read(api, world.a["token"], world.a["enrollmentId"])

    assert seen["tier"] == {"name": "Silver"}
    assert seen["tierPinned"] is False
    [change] = seen["tierHistory"]
    assert (change["from"], change["to"], change["reason"]) == (
        {"name": "Bronze"}, {"name": "Silver"}, "PROMOTED",
    )  # fmt: skip
    stored = await TierChange.get(enrollment_id=pk(world.a["enrollmentId"]))
    assert datetime.fromisoformat(change["at"]) == stored.at


async def test_history_is_newest_first(api: Api, world: World) -> None:
    enrollment = world.b["enrollmentId"]
    for tier in ("Silver", "Bronze"):
        await api.mutate(
            "setEnrollmentTier",
            {"enrollmentId": enrollment, "tierId": world.tiers[tier]},
            SET,
            world.admin,
        )

    seen = await read(api, world.admin, enrollment)

    assert [(c["from"], c["to"], c["reason"]) for c in seen["tierHistory"]] == [
        ({"name": "Silver"}, {"name": "Bronze"}, "SET"),
        (None, {"name": "Silver"}, "SET"),
    ]


# --- setEnrollmentTier -----------------------------------------------------------------------


async def test_an_admin_pins_unpins_and_clears_a_tier(api: Api, world: World) -> None:
    enrollment = world.a["enrollmentId"]
    base = {"enrollmentId": enrollment}

    pinned = await api.mutate(
        "setEnrollmentTier", base | {"tierId": world.tiers["Silver"], "pinned": True}, SET,
        world.admin,
    )  # fmt: skip
    unpinned = await api.mutate("setEnrollmentTier", base | {"pinned": False}, SET, world.admin)
    cleared = await api.mutate("setEnrollmentTier", base | {"tierId": None}, SET, world.admin)

    assert pinned["userErrors"] == []
    assert (pinned["enrollment"]["tier"], pinned["enrollment"]["tierPinned"]) == (
        {"name": "Silver"}, True,
    )  # fmt: skip
    assert (unpinned["enrollment"]["tier"], unpinned["enrollment"]["tierPinned"]) == (
        {"name": "Silver"}, False,
    )  # fmt: skip
    assert (cleared["enrollment"]["tier"], cleared["enrollment"]["tierPinned"]) == (None, False)
    assert [c["reason"] for c in cleared["enrollment"]["tierHistory"]] == [
        "SET", "UNPINNED", "PINNED",
    ]  # fmt: skip
    entries = await AuditEntry.filter(action="setEnrollmentTier").order_by("id")
    assert [e.after["reason"] for e in entries] == ["PINNED", "UNPINNED", "SET"]
    assert {e.actor for e in entries} == {"admin:admin@example.com"}


async def test_a_pinned_tier_stays_when_a_sale_qualifies_higher(api: Api, world: World) -> None:
    await api.mutate(
        "setEnrollmentTier",
        {"enrollmentId": world.a["enrollmentId"], "tierId": world.tiers["Bronze"], "pinned": True},
        SET,
        world.admin,
    )

    await sell(api, world, world.a, "S1", "500.00")
    evaluated = await api.mutate(
        "evaluateTiers", {"programId": world.program}, EVALUATED, world.admin
    )

    assert evaluated == {"promoted": [], "demoted": [], "userErrors": []}
    seen = await read(api, world.admin, world.a["enrollmentId"])
    assert (seen["tier"], seen["tierPinned"]) == ({"name": "Bronze"}, True)


async def test_another_programs_tier_or_a_wrong_id_is_not_found(api: Api, world: World) -> None:
    other = await api.program(world.admin, "Other")
    foreign = await create_tier(api, world.admin, other, {"name": "Gold", "rank": 1})
    enrollment = world.a["enrollmentId"]

    wrong_tier = await api.mutate(
        "setEnrollmentTier", {"enrollmentId": enrollment, "tierId": foreign}, SET, world.admin
    )
    wrong_type = await api.mutate(
        "setEnrollmentTier", {"enrollmentId": world.program, "pinned": True}, SET, world.admin
    )

    assert wrong_tier["enrollment"] is None
    assert [(e["field"], e["code"]) for e in wrong_tier["userErrors"]] == [
        (["tierId"], "NOT_FOUND")
    ]
    assert [(e["field"], e["code"]) for e in wrong_type["userErrors"]] == [
        (["enrollmentId"], "NOT_FOUND")
    ]
    seen = await read(api, world.admin, enrollment)
    assert (seen["tier"], seen["tierPinned"], seen["tierHistory"]) == (
        {"name": "Bronze"}, False, [],
    )  # fmt: skip


# --- evaluateTiers ---------------------------------------------------------------------------


async def test_evaluate_tiers_promotes_and_demotes(api: Api, world: World) -> None:
    await sell(api, world, world.a, "A1", "150.00")  # A: Silver at once
    await sell(api, world, world.b, "B1", "150.00")  # B: Silver at once
    await refund(api, world, "B1")  # B below Silver; no grace
    await create_tier(
        api, world.admin, world.program,
        {"name": "Gold", "rank": 3, "qualifyMetric": "REVENUE", "qualifyThreshold": "120"},
    )  # fmt: skip  # A qualifies, but no credit since: the evaluation promotes

    evaluated = await api.mutate(
        "evaluateTiers", {"programId": world.program}, EVALUATED, world.admin
    )

    assert evaluated == {
        "promoted": [{"id": world.a["enrollmentId"], "tier": {"name": "Gold"}}],
        "demoted": [{"id": world.b["enrollmentId"], "tier": {"name": "Bronze"}}],
        "userErrors": [],
    }
    entries = await AuditEntry.filter(action="evaluateTiers").order_by("entity_pk")
    assert [(e.entity_pk, e.after["reason"]) for e in entries] == [
        (pk(world.a["enrollmentId"]), "PROMOTED"),
        (pk(world.b["enrollmentId"]), "DEMOTED"),
    ]


async def test_evaluate_tiers_refuses_a_future_at_and_an_unknown_program(
    api: Api, world: World
) -> None:
    await sell(api, world, world.b, "B1", "150.00")
    await refund(api, world, "B1")  # would be demoted at once

    future = await api.mutate(
        "evaluateTiers",
        {"programId": world.program, "at": (NOW + timedelta(days=1)).isoformat()},
        EVALUATED,
        world.admin,
    )
    unknown = await api.mutate(
        "evaluateTiers", {"programId": world.a["enrollmentId"]}, EVALUATED, world.admin
    )

    assert future["promoted"] == future["demoted"] == []
    assert [(e["field"], e["code"]) for e in future["userErrors"]] == [(["at"], "INVALID")]
    assert [(e["field"], e["code"]) for e in unknown["userErrors"]] == [
        (["programId"], "NOT_FOUND")
    ]
    assert (await Enrollment.get(id=pk(world.b["enrollmentId"]))).tier_id is not None


# --- who may do and see what -----------------------------------------------------------------


async def test_partners_may_not_set_or_evaluate_tiers(api: Api, world: World) -> None:
    partner = world.a["token"]
    attempts = [
        ("setEnrollmentTier", {"enrollmentId": world.a["enrollmentId"],
                               "tierId": world.tiers["Silver"], "pinned": True}, SET),
        ("evaluateTiers", {"programId": world.program}, EVALUATED),
    ]  # fmt: skip
    for name, input_, selection in attempts:
        query = (
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ {selection} }} }}"
        )
        body = await api.post(query, {"input": input_}, partner)
        assert codes(body) == ["FORBIDDEN"]
    seen = await read(api, world.admin, world.a["enrollmentId"])
    assert (seen["tier"], seen["tierPinned"], seen["tierHistory"]) == (
        {"name": "Bronze"}, False, [],
    )  # fmt: skip


async def test_app_tokens_need_programs_write(api: Api, world: World) -> None:
    writer = await _token(api, world.admin, ["programs:write"])
    other = await _token(api, world.admin, ["partners:write", "tracking:write"])
    base = {"enrollmentId": world.a["enrollmentId"], "tierId": world.tiers["Silver"]}

    refused = await api.post(
        "mutation($i: SetEnrollmentTierInput!) { setEnrollmentTier(input: $i) { enrollment "
        "{ id } } }",
        {"i": base},
        other,
    )
    done = await api.mutate("setEnrollmentTier", base, "enrollment { tier { name } }", writer)
    evaluated = await api.mutate("evaluateTiers", {"programId": world.program}, EVALUATED, writer)

    assert codes(refused) == ["FORBIDDEN"]
    assert done == {"enrollment": {"tier": {"name": "Silver"}}, "userErrors": []}
    assert evaluated["userErrors"] == []
    changes = await TierChange.all().order_by("id")  # set above its revenue, no grace: demoted
    assert [str(c.reason) for c in changes] == ["SET", "DEMOTED"]
    assert all(c.actor.startswith("app:t (pgt_") for c in changes)


async def test_a_partner_reads_only_its_own_tier_history(api: Api, world: World) -> None:
    await sell(api, world, world.a, "A1", "150.00")
    await sell(api, world, world.b, "B1", "150.00")

    own = await read(api, world.b["token"], world.b["enrollmentId"])
    others = await read(api, world.b["token"], world.a["enrollmentId"])
    listed = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { enrollments(first: 10) { edges "
        f"{{ node {{ id {HISTORY} }} }} }} }} }} }}",
        {"id": world.program},
        world.b["token"],
    )

    assert [c["reason"] for c in own["tierHistory"]] == ["PROMOTED"]
    assert others is None
    edges = listed["node"]["enrollments"]["edges"]
    assert [e["node"]["id"] for e in edges] == [world.b["enrollmentId"]]
