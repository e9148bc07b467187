"""Programs and tiers through the API: create, update, list, search, and refused input."""

from __future__ import annotations

from typing import Any

import pytest

from domain.programs.models import Program, Tier
from tests.helpers import Api

PROGRAM_FIELDS = """program { id name currency destinationUrl status holdDays
  attribution { model lookbackDays halfLifeDays firstWeight lastWeight roleWeights { role weight } }
  refereeReward { kind value } }"""


async def test_create_program_with_every_setting(api: Api) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "createProgram",
        {
            "name": "Acme Cloud",
            "currency": "jpy",
            "destinationUrl": "https://acme.example/pricing",
            "attribution": {
                "model": "ROLE_WEIGHTED",
                "lookbackDays": 60,
                "roleWeights": [
                    {"role": "SOURCE", "weight": "0.5"},
                    {"role": "CLOSE", "weight": "0.3"},
                ],
            },
            "holdDays": 14,
            "refereeReward": {"kind": "FLAT_CREDIT", "value": "500"},
        },
        PROGRAM_FIELDS,
        admin,
    )
    assert payload["userErrors"] == []
    program = payload["program"]
    assert program["currency"] == "JPY"
    assert program["status"] == "ACTIVE"
    assert program["holdDays"] == 14
    assert program["attribution"] == {
        "model": "ROLE_WEIGHTED",
        "lookbackDays": 60,
        "halfLifeDays": None,
        "firstWeight": None,
        "lastWeight": None,
        "roleWeights": [{"role": "SOURCE", "weight": "0.5"}, {"role": "CLOSE", "weight": "0.3"}],
    }
    assert program["refereeReward"] == {"kind": "FLAT_CREDIT", "value": "500"}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"currency": "XYZ"}, ["currency"], "INVALID"),
        ({"destinationUrl": "javascript:alert(1)"}, ["destinationUrl"], "INVALID"),
        ({"name": "  "}, ["name"], "INVALID"),
        ({"holdDays": -1}, ["holdDays"], "INVALID"),
        (
            {"attribution": {"model": "LINEAR", "lookbackDays": 400}},
            ["attribution", "lookbackDays"],
            "INVALID",
        ),
        (
            {"attribution": {"model": "TIME_DECAY", "halfLifeDays": 0}},
            ["attribution", "halfLifeDays"],
            "INVALID",
        ),
        (
            {"refereeReward": {"kind": "FLAT_CREDIT", "value": "1.234"}},
            ["refereeReward", "value"],
            "INVALID",
        ),
    ],
)
async def test_create_program_refuses_bad_input_and_creates_nothing(
    api: Api, change: dict[str, Any], field: list[str], code: str
) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "createProgram",
        {"name": "Acme", "currency": "EUR", "destinationUrl": "https://a.example/", **change},
        "program { id }",
        admin,
    )
    assert payload["program"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(field, code)]
    assert await Program.all().count() == 0


async def test_several_bad_fields_are_reported_together(api: Api) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "createProgram",
        {"name": "", "currency": "EURO", "destinationUrl": "nope"},
        "program { id }",
        admin,
    )
    assert sorted(e["field"][0] for e in payload["userErrors"]) == [
        "currency",
        "destinationUrl",
        "name",
    ]


async def test_a_float_for_a_decimal_is_refused(api: Api) -> None:
    admin = await api.admin_token()
    body = await api.post(
        "mutation($i: CreateProgramInput!) { createProgram(input: $i) { program { id } } }",
        {
            "i": {
                "name": "A",
                "currency": "EUR",
                "destinationUrl": "https://a.example/",
                "refereeReward": {"kind": "FLAT_CREDIT", "value": 1.5},
            }
        },
        admin,
    )
    assert "strings" in body["errors"][0]["message"]
    assert await Program.all().count() == 0


async def test_update_program_changes_only_what_is_given(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin, name="Old")
    payload = await api.mutate(
        "updateProgram",
        {"id": program_id, "name": "New", "status": "PAUSED"},
        PROGRAM_FIELDS,
        admin,
    )
    assert payload["userErrors"] == []
    assert payload["program"]["name"] == "New"
    assert payload["program"]["status"] == "PAUSED"
    assert payload["program"]["destinationUrl"] == "https://acme.example/"


async def test_update_program_can_end_the_referee_reward(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    given = await api.mutate(
        "updateProgram",
        {"id": program_id, "refereeReward": {"kind": "PERCENT_DISCOUNT", "value": "10"}},
        "program { refereeReward { kind } }",
        admin,
    )
    assert given["program"]["refereeReward"] == {"kind": "PERCENT_DISCOUNT"}
    kept = await api.mutate(
        "updateProgram",
        {"id": program_id, "name": "X"},
        "program { refereeReward { kind } }",
        admin,
    )
    assert kept["program"]["refereeReward"] == {"kind": "PERCENT_DISCOUNT"}
    ended = await api.mutate(
        "updateProgram",
        {"id": program_id, "refereeReward": None},
        "program { refereeReward { kind } }",
        admin,
    )
    assert ended["program"]["refereeReward"] is None


async def test_update_of_an_unknown_program_is_not_found(api: Api) -> None:
    admin = await api.admin_token()
    payload = await api.mutate(
        "updateProgram", {"id": "UHJvZ3JhbTo5OTk", "name": "X"}, "program { id }", admin
    )
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["id"], "NOT_FOUND")]


async def test_an_id_of_another_type_is_not_found(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    partner = await api.partner(admin, "P", "p@example.com", program_id)
    payload = await api.mutate(
        "updateProgram", {"id": partner["id"], "name": "X"}, "program { id }", admin
    )
    assert payload["userErrors"][0]["code"] == "NOT_FOUND"


async def test_tiers_are_unique_by_rank_and_name_and_listed_by_rank(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    for name, rank in [("Gold", 3), ("Bronze", 1)]:
        created = await api.mutate(
            "createTier",
            {"programId": program_id, "name": name, "rank": rank},
            "tier { id name rank program { id } }",
            admin,
        )
        assert created["userErrors"] == []
        assert created["tier"]["program"]["id"] == program_id
    same_rank = await api.mutate(
        "createTier", {"programId": program_id, "name": "Other", "rank": 3}, "tier { id }", admin
    )
    same_name = await api.mutate(
        "createTier", {"programId": program_id, "name": "Gold", "rank": 9}, "tier { id }", admin
    )
    assert [(e["field"], e["code"]) for e in same_rank["userErrors"]] == [(["rank"], "CONFLICT")]
    assert [(e["field"], e["code"]) for e in same_name["userErrors"]] == [(["name"], "CONFLICT")]
    assert await Tier.all().count() == 2
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { tiers { name rank } } } }",
        {"id": program_id},
        admin,
    )
    assert data["node"]["tiers"] == [{"name": "Bronze", "rank": 1}, {"name": "Gold", "rank": 3}]


async def test_update_tier_qualification(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    tier = await api.mutate(
        "createTier", {"programId": program_id, "name": "Gold", "rank": 3}, "tier { id }", admin
    )
    payload = await api.mutate(
        "updateTier",
        {
            "id": tier["tier"]["id"],
            "qualifyMetric": "REVENUE",
            "qualifyThreshold": "25000",
            "qualifyPeriodDays": 90,
        },
        "tier { name qualifyMetric qualifyThreshold qualifyPeriodDays }",
        admin,
    )
    assert payload["userErrors"] == []
    assert payload["tier"] == {
        "name": "Gold",
        "qualifyMetric": "REVENUE",
        "qualifyThreshold": "25000",
        "qualifyPeriodDays": 90,
    }


async def test_programs_connection_pages_and_searches(api: Api) -> None:
    admin = await api.admin_token()
    names = [f"Program {i}" for i in range(5)] + ["Special"]
    for name in names:
        await api.program(admin, name=name)
    query = """query($first: Int, $after: String, $search: String) {
      programs(first: $first, after: $after, search: $search) {
        totalCount edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = (await api.data(query, {"first": 2, "after": after}, admin))["programs"]
        assert page["totalCount"] == 6
        seen += [e["node"]["name"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == names
    found = (await api.data(query, {"search": "speci"}, admin))["programs"]
    assert [e["node"]["name"] for e in found["edges"]] == ["Special"]
    assert found["totalCount"] == 1
