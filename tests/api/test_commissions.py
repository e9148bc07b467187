"""Commissions through real HTTP: rules and their versions, conversions earning entries,
balances, approvals, rejections, payouts, refunds before and after payout, and who may see
and do what (a partner never reaches another partner's entries, balance or rules by any path,
nor a payout batch; APP tokens by their scopes). Amounts are worked by hand from `world`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.audit.models import AuditEntry
from domain.commissions.models import Commission, CommissionRule
from tests.helpers import Api, pk

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=40)  # past the program's 30-day hold
MONEY = "{ amount currency }"
ENTRY = (
    f"id kind status amount {MONEY} availableAt reason ruleVersion rule {{ id }} "
    "conversion { externalId } enrollment { id }"
)
RULE = (
    f"id name conversionKind percentage flatAmount {MONEY} capAmount {MONEY} "
    f"monthlyCapAmount {MONEY} minimumAmount {MONEY} tier {{ id }} enrollment {{ id }} "
    "priority startsAt endsAt recurringMonths halfLifeDays archived version "
    "versions { version terms }"
)
LEDGER = f"""query($id: ID!, $status: CommissionStatus) {{ node(id: $id) {{ ... on Enrollment {{
    commissions(first: 50, status: $status) {{ totalCount edges {{ node {{ {ENTRY} }} }} }}
    balance {{ pending {MONEY} approved {MONEY} paid {MONEY} }} }} }} }}"""


@dataclass
class World:
    admin: str
    program: str
    gold: str  # a tier of `program`; A is in it
    other_tier: str  # a tier of another program
    a: dict[str, Any]  # {"id", "token", "enrollmentId", "code"}
    b: dict[str, Any]
    rules: dict[str, str]  # base (10 % of SALEs), gold (20 %), b (5.00 flat for B's enrollment)


async def _code(api: Api, admin: str, enrollment: str) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }"
    return str((await api.data(query, {"id": enrollment}, admin))["node"]["referralCode"])


async def create_rule(api: Api, world_admin: str, fields: dict[str, Any]) -> dict[str, Any]:
    return await api.mutate(
        "createCommissionRule", fields, f"commissionRule {{ {RULE} }}", world_admin
    )


async def _rule_id(api: Api, admin: str, fields: dict[str, Any]) -> str:
    payload = await create_rule(api, admin, fields)
    assert payload["userErrors"] == [], payload
    return str(payload["commissionRule"]["id"])


@pytest.fixture
async def world(api: Api) -> World:
    """One EUR program (30-day hold) with a Gold tier; A in Gold, B in no tier. SALE rules:
    10 % for the program, 20 % for Gold, 5.00 flat for B's enrollment alone."""
    admin = await api.admin_token()
    program = await api.program(admin)
    other = await api.program(admin, "Other")
    gold = await api.mutate(
        "createTier", {"programId": program, "name": "Gold", "rank": 2}, "tier { id }", admin
    )
    other_tier = await api.mutate(
        "createTier", {"programId": other, "name": "Gold", "rank": 2}, "tier { id }", admin
    )
    a = await api.partner(admin, "Alpha", "a@example.com")
    enrolled = await api.mutate(
        "enrollPartner",
        {"programId": program, "partnerId": a["id"], "tierId": gold["tier"]["id"]},
        "enrollment { id }",
        admin,
    )
    a["enrollmentId"] = enrolled["enrollment"]["id"]
    b = await api.partner(admin, "Beta", "b@example.com", program)
    for side in (a, b):
        side["code"] = await _code(api, admin, side["enrollmentId"])
    sale = {"programId": program, "conversionKind": "SALE"}
    rules = {
        "base": await _rule_id(api, admin, sale | {"name": "Base", "percentage": "10"}),
        "gold": await _rule_id(
            api, admin, sale | {"percentage": "20", "tierId": gold["tier"]["id"]}
        ),
        "b": await _rule_id(
            api, admin, sale | {"flatAmount": "5.00", "enrollmentId": b["enrollmentId"]}
        ),
    }
    return World(admin, program, gold["tier"]["id"], other_tier["tier"]["id"], a, b, rules)


async def sell(
    api: Api, world: World, who: dict[str, Any], external_id: str, amount: str, at: datetime
) -> str:
    """A SALE with `who`'s referral code (all the credit is its own); answers its global id."""
    payload = await api.mutate(
        "recordConversion",
        {"programId": world.program, "externalId": external_id, "kind": "SALE",
         "amount": amount, "currency": "EUR", "referralCode": who["code"],
         "occurredAt": at.isoformat()},
        "conversion { id }",
        world.admin,
    )  # fmt: skip
    assert payload["userErrors"] == [], payload
    return str(payload["conversion"]["id"])


async def ledger(
    api: Api, token: str, enrollment: str, status: str | None = None
) -> dict[str, Any]:
    node = (await api.data(LEDGER, {"id": enrollment, "status": status}, token))["node"]
    assert node is not None
    return {
        "entries": [edge["node"] for edge in node["commissions"]["edges"]],
        "total": node["commissions"]["totalCount"],
        "balance": {
            key: [(m["amount"], m["currency"]) for m in node["balance"][key]]
            for key in ("pending", "approved", "paid")
        },
    }


def eur(*amounts: str) -> list[tuple[str, str]]:
    return [(amount, "EUR") for amount in amounts]


def errors(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(error["field"], error["code"]) for error in payload["userErrors"]]


# --- rules ----------------------------------------------------------------------------------


async def test_a_rule_is_created_with_its_terms_as_money_and_a_first_version(
    api: Api, world: World
) -> None:
    payload = await create_rule(
        api,
        world.admin,
        {"programId": world.program, "conversionKind": "LEAD", "name": " Leads ",
         "flatAmount": "2.50", "capAmount": "2", "monthlyCapAmount": "100.00",
         "minimumAmount": "0.99", "priority": 3, "startsAt": "2026-01-01T00:00:00+01:00",
         "endsAt": "2027-01-01T00:00:00Z", "recurringMonths": 12, "halfLifeDays": 90.5},
    )  # fmt: skip
    assert payload["userErrors"] == []
    rule = payload["commissionRule"]
    assert rule | {"id": None, "versions": None} == {
        "id": None,
        "name": "Leads",
        "conversionKind": "LEAD",
        "percentage": None,
        "flatAmount": {"amount": "2.50", "currency": "EUR"},
        "capAmount": {"amount": "2.00", "currency": "EUR"},
        "monthlyCapAmount": {"amount": "100.00", "currency": "EUR"},
        "minimumAmount": {"amount": "0.99", "currency": "EUR"},
        "tier": None,
        "enrollment": None,
        "priority": 3,
        "startsAt": "2025-12-31T23:00:00+00:00",
        "endsAt": "2027-01-01T00:00:00+00:00",
        "recurringMonths": 12,
        "halfLifeDays": 90.5,
        "archived": False,
        "version": 1,
        "versions": None,
    }
    [version] = rule["versions"]
    assert version["version"] == 1
    assert version["terms"]["flatMinor"] == 250
    assert version["terms"]["capMinor"] == 200
    assert version["terms"]["currency"] == "EUR"
    entry = await AuditEntry.filter(action="createCommissionRule", entity_pk=pk(rule["id"])).get()
    assert entry.actor == "admin:admin@example.com"


async def test_scoped_rules_name_their_tier_and_enrollment_by_global_id(
    api: Api, world: World
) -> None:
    query = f"query($id: ID!) {{ node(id: $id) {{ ... on CommissionRule {{ {RULE} }} }} }}"
    gold = (await api.data(query, {"id": world.rules["gold"]}, world.admin))["node"]
    assert gold["tier"] == {"id": world.gold}
    assert gold["percentage"] == "20"
    assert gold["versions"][0]["terms"]["tierId"] == world.gold
    b = (await api.data(query, {"id": world.rules["b"]}, world.admin))["node"]
    assert b["enrollment"] == {"id": world.b["enrollmentId"]}
    assert b["flatAmount"] == {"amount": "5.00", "currency": "EUR"}
    assert b["versions"][0]["terms"]["enrollmentId"] == world.b["enrollmentId"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"percentage": "10", "flatAmount": "1.00"}, [(["percentage"], "INVALID")],
                     id="both-percentage-and-flat"),
        pytest.param({}, [(["percentage"], "INVALID")], id="neither"),
        pytest.param({"percentage": "100.5"}, [(["percentage"], "INVALID")], id="over-100"),
        pytest.param({"percentage": "0"}, [(["percentage"], "INVALID")], id="zero"),
        pytest.param(  # only the wrong field: the whole rule is judged once each field is right
            {"flatAmount": "1.001"}, [(["flatAmount"], "INVALID")],
            id="sub-cent",
        ),
        pytest.param({"flatAmount": "-1"}, [(["flatAmount"], "INVALID")], id="negative"),
        pytest.param(
            {"percentage": "5", "startsAt": "2026-02-01T00:00:00Z",
             "endsAt": "2026-01-01T00:00:00Z"},
            [(["endsAt"], "INVALID")], id="ends-before-it-starts",
        ),
        pytest.param({"percentage": "5", "tierId": "OTHER"}, [(["tierId"], "NOT_FOUND")],
                     id="tier-of-another-program"),
        pytest.param({"percentage": "5", "tierId": "PROGRAM"}, [(["tierId"], "NOT_FOUND")],
                     id="not-a-tier-id"),
        pytest.param(
            {"percentage": "5", "tierId": "GOLD", "enrollmentId": "B"},
            [(["enrollmentId"], "INVALID")], id="tier-and-enrollment",
        ),
        pytest.param(
            {"percentage": "101", "flatAmount": "1.00", "recurringMonths": -1},
            [(["percentage"], "INVALID"), (["recurringMonths"], "INVALID")],
            id="several-at-once",
        ),
    ],
)  # fmt: skip
async def test_a_wrong_rule_is_refused_with_user_errors_and_nothing_is_stored(
    api: Api, world: World, fields: dict[str, Any], expected: list[tuple[list[str], str]]
) -> None:
    names = {"OTHER": world.other_tier, "PROGRAM": world.program, "GOLD": world.gold,
             "B": world.b["enrollmentId"]}  # fmt: skip
    fields = {k: names.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    before = await CommissionRule.all().count()
    payload = await create_rule(
        api, world.admin, {"programId": world.program, "conversionKind": "SALE"} | fields
    )
    assert payload["commissionRule"] is None
    assert sorted(errors(payload)) == sorted(expected)
    assert await CommissionRule.all().count() == before


async def test_an_update_keeps_omitted_fields_clears_explicit_nulls_and_adds_a_version(
    api: Api, world: World
) -> None:
    rule = world.rules["base"]
    selection = f"commissionRule {{ {RULE} }}"
    first = await api.mutate(
        "updateCommissionRule", {"id": rule, "capAmount": "30.00", "priority": 2}, selection,
        world.admin,
    )  # fmt: skip
    assert first["userErrors"] == []
    assert first["commissionRule"]["name"] == "Base"  # omitted: kept
    assert first["commissionRule"]["percentage"] == "10"
    assert first["commissionRule"]["capAmount"] == {"amount": "30.00", "currency": "EUR"}
    second = await api.mutate(
        "updateCommissionRule", {"id": rule, "name": None, "capAmount": None}, selection,
        world.admin,
    )  # fmt: skip
    updated = second["commissionRule"]
    assert (updated["name"], updated["capAmount"], updated["priority"]) == (None, None, 2)
    assert updated["version"] == 3
    versions = [
        (v["version"], v["terms"]["name"], v["terms"]["capMinor"]) for v in updated["versions"]
    ]
    assert versions == [(1, "Base", None), (2, "Base", 3000), (3, None, None)]
    # switching from a percentage to a flat amount needs the percentage cleared
    switch = await api.mutate(
        "updateCommissionRule", {"id": rule, "flatAmount": "1.00"}, selection, world.admin
    )
    assert errors(switch) == [(["percentage"], "INVALID")]
    switched = await api.mutate(
        "updateCommissionRule", {"id": rule, "flatAmount": "1.00", "percentage": None}, selection,
        world.admin,
    )  # fmt: skip
    assert switched["commissionRule"]["flatAmount"] == {"amount": "1.00", "currency": "EUR"}
    assert switched["commissionRule"]["version"] == 4


async def test_an_update_that_changes_nothing_makes_no_version(api: Api, world: World) -> None:
    payload = await api.mutate(
        "updateCommissionRule", {"id": world.rules["base"], "percentage": "10"},
        "commissionRule { version }", world.admin,
    )  # fmt: skip
    assert payload == {"commissionRule": {"version": 1}, "userErrors": []}


async def test_clearing_the_priority_is_a_user_error(api: Api, world: World) -> None:
    payload = await api.post(
        """mutation($input: UpdateCommissionRuleInput!) { updateCommissionRule(input: $input) {
            commissionRule { priority } userErrors { field code } } }""",
        {"input": {"id": world.rules["base"], "priority": None}},
        world.admin,
    )
    assert payload["data"]["updateCommissionRule"]["userErrors"] == [
        {"field": ["priority"], "code": "INVALID"}
    ]


async def test_an_archived_rule_stays_listed_for_admins_and_cannot_change(
    api: Api, world: World
) -> None:
    archived = await api.mutate(
        "archiveCommissionRule", {"id": world.rules["base"]},
        "commissionRule { id archived version }", world.admin,
    )  # fmt: skip
    assert archived == {
        "commissionRule": {"id": world.rules["base"], "archived": True, "version": 2},
        "userErrors": [],
    }
    again = await api.mutate(
        "archiveCommissionRule", {"id": world.rules["base"]}, "commissionRule { version }",
        world.admin,
    )  # fmt: skip
    assert again == {"commissionRule": {"version": 2}, "userErrors": []}
    refused = await api.mutate(
        "updateCommissionRule", {"id": world.rules["base"], "percentage": "12"},
        "commissionRule { id }", world.admin,
    )  # fmt: skip
    assert errors(refused) == [(["id"], "CONFLICT")]
    query = (
        "query($id: ID!) { node(id: $id) { ... on Program { commissionRules { id archived } } } }"
    )
    rules = (await api.data(query, {"id": world.program}, world.admin))["node"]["commissionRules"]
    assert rules == [
        {"id": world.rules["base"], "archived": True},
        {"id": world.rules["gold"], "archived": False},
        {"id": world.rules["b"], "archived": False},
    ]
    # an archived rule prices nothing new: B's flat rule still applies to B, A falls to Gold
    await sell(api, world, world.b, "after-archive", "100.00", NOW)
    [entry] = (await ledger(api, world.admin, world.b["enrollmentId"]))["entries"]
    assert entry["rule"] == {"id": world.rules["b"]}


async def test_unknown_ids_are_not_found(api: Api, world: World) -> None:
    for name, input_ in (
        ("updateCommissionRule", {"id": world.program, "name": "x"}),
        ("archiveCommissionRule", {"id": "nonsense"}),
    ):
        payload = await api.mutate(name, input_, "commissionRule { id }", world.admin)
        assert errors(payload) == [(["id"], "NOT_FOUND")]
    payload = await create_rule(
        api, world.admin, {"programId": world.gold, "conversionKind": "SALE", "percentage": "1"}
    )
    assert errors(payload) == [(["programId"], "NOT_FOUND")]


# --- earning, history, balances -------------------------------------------------------------


async def test_a_recorded_sale_earns_a_pending_commission_with_its_rule_and_reason(
    api: Api, world: World
) -> None:
    conversion = await sell(api, world, world.a, "order-1", "200.00", OLD)
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    [entry] = seen["entries"]
    assert entry["kind"] == "COMMISSION"
    assert entry["status"] == "PENDING"
    assert entry["amount"] == {"amount": "40.00", "currency": "EUR"}  # Gold: 20 % of 200.00
    assert entry["rule"] == {"id": world.rules["gold"]}
    assert entry["ruleVersion"] == 1
    assert "20 % of 20000" in entry["reason"]
    assert entry["reason"].endswith("= 4000")
    assert entry["conversion"] == {"externalId": "order-1"}
    assert entry["enrollment"] == {"id": world.a["enrollmentId"]}
    assert datetime.fromisoformat(entry["availableAt"]) == OLD + timedelta(days=30)
    assert seen["balance"] == {"pending": eur("40.00"), "approved": [], "paid": []}
    assert conversion
    # B: its own enrollment's flat rule beats the program's 10 %
    await sell(api, world, world.b, "order-2", "100.00", OLD)
    [b_entry] = (await ledger(api, world.b["token"], world.b["enrollmentId"]))["entries"]
    assert (b_entry["amount"]["amount"], b_entry["rule"]) == ("5.00", {"id": world.rules["b"]})


async def test_entries_keep_the_rule_version_they_used_after_an_update(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "v1", "100.00", OLD)
    updated = await api.mutate(
        "updateCommissionRule", {"id": world.rules["gold"], "percentage": "25"},
        "commissionRule { version versions { version terms } }", world.admin,
    )  # fmt: skip
    assert updated["commissionRule"]["version"] == 2
    terms = [
        (v["version"], v["terms"]["percentage"]) for v in updated["commissionRule"]["versions"]
    ]
    assert terms == [(1, "20"), (2, "25")]
    await sell(api, world, world.a, "v2", "100.00", OLD)
    entries = (await ledger(api, world.admin, world.a["enrollmentId"]))["entries"]
    got = [
        (e["conversion"]["externalId"], e["ruleVersion"], e["amount"]["amount"]) for e in entries
    ]
    assert got == [("v2", 2, "25.00"), ("v1", 1, "20.00")]  # newest first


async def test_the_balance_sums_entries_per_status_and_currency_sorted(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "s1", "100.00", OLD)  # 20.00
    await sell(api, world, world.a, "s2", "50.05", OLD)  # 10.01
    enrollment, program = pk(world.a["enrollmentId"]), pk(world.program)
    for currency, amount in (("USD", 700), ("CHF", -300), ("USD", 50)):  # adjustments by hand
        await Commission.create(
            program_id=program, enrollment_id=enrollment, kind="ADJUSTMENT", status="APPROVED",
            amount_minor=amount, currency=currency, available_at=NOW,
        )  # fmt: skip
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    assert seen["balance"] == {
        "pending": eur("30.01"),
        "approved": [("-3.00", "CHF"), ("7.50", "USD")],
        "paid": [],
    }
    assert seen["total"] == 5


async def test_commissions_page_newest_first_and_filter_by_status(api: Api, world: World) -> None:
    for n in range(3):
        await sell(api, world, world.a, f"p{n}", f"{n + 1}0.00", OLD)
    query = """query($id: ID!, $after: String) { node(id: $id) { ... on Enrollment {
        commissions(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { conversion { externalId } } } } } } }"""
    page = (await api.data(query, {"id": world.a["enrollmentId"]}, world.a["token"]))["node"]
    first = page["commissions"]
    assert [e["node"]["conversion"]["externalId"] for e in first["edges"]] == ["p2", "p1"]
    assert (first["totalCount"], first["pageInfo"]["hasNextPage"]) == (3, True)
    after = {"id": world.a["enrollmentId"], "after": first["pageInfo"]["endCursor"]}
    rest = (await api.data(query, after, world.a["token"]))["node"]["commissions"]
    assert [e["node"]["conversion"]["externalId"] for e in rest["edges"]] == ["p0"]
    assert (await ledger(api, world.a["token"], world.a["enrollmentId"], "APPROVED"))["total"] == 0


# --- approvals and rejections ---------------------------------------------------------------

CHANGED = f"commissions {{ id status amount {MONEY} reason }} count"


async def _approve(api: Api, world: World, **fields: Any) -> dict[str, Any]:
    return await api.mutate(
        "approveCommissions", {"programId": world.program} | fields, CHANGED, world.admin
    )


async def _ids(api: Api, world: World, who: dict[str, Any]) -> dict[str, str]:
    """`who`'s COMMISSION entries by the external id of their conversion."""
    entries = (await ledger(api, world.admin, who["enrollmentId"]))["entries"]
    return {e["conversion"]["externalId"]: e["id"] for e in entries if e["kind"] == "COMMISSION"}


async def test_approving_takes_the_entries_whose_hold_ended(api: Api, world: World) -> None:
    await sell(api, world, world.a, "due", "100.00", OLD)  # available 10 days ago
    await sell(api, world, world.a, "fresh", "50.00", NOW)  # in its hold for 30 days
    ids = await _ids(api, world, world.a)
    early = await _approve(api, world, availableBefore=(OLD + timedelta(days=29)).isoformat())
    assert (early["count"], early["commissions"], early["userErrors"]) == (0, [], [])
    approved = await _approve(api, world)
    assert approved["userErrors"] == []
    assert approved["count"] == 1
    assert [(c["id"], c["status"]) for c in approved["commissions"]] == [(ids["due"], "APPROVED")]
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    assert seen["balance"] == {"pending": eur("10.00"), "approved": eur("20.00"), "paid": []}
    again = await _approve(api, world)
    assert again["count"] == 0
    entry = await AuditEntry.filter(action="approveCommissions").get()
    assert entry.after is not None
    assert entry.after["commissionIds"] == [pk(ids["due"])]


async def test_approving_named_ids_takes_them_even_inside_their_hold(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "fresh-1", "100.00", NOW)
    await sell(api, world, world.a, "fresh-2", "100.00", NOW)
    await sell(api, world, world.b, "fresh-3", "100.00", NOW)
    ids = await _ids(api, world, world.a) | await _ids(api, world, world.b)
    payload = await _approve(api, world, ids=[ids["fresh-2"], ids["fresh-3"]])
    assert payload["count"] == 2
    assert [c["id"] for c in payload["commissions"]] == [ids["fresh-3"], ids["fresh-2"]]
    assert {c["status"] for c in payload["commissions"]} == {"APPROVED"}
    pending = await ledger(api, world.admin, world.a["enrollmentId"], "PENDING")
    assert [e["id"] for e in pending["entries"]] == [ids["fresh-1"]]
    # named, but not yet available by availableBefore: left pending
    held = await _approve(api, world, ids=[ids["fresh-1"]], availableBefore=NOW.isoformat())
    assert held["count"] == 0


async def test_approving_ids_of_another_program_or_type_changes_nothing(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "fresh", "100.00", NOW)
    ids = await _ids(api, world, world.a)
    other = await api.program(world.admin, "Elsewhere")
    foreign = await api.mutate(
        "approveCommissions", {"programId": other, "ids": [ids["fresh"]]}, CHANGED, world.admin
    )
    assert errors(foreign) == [(["ids", "0"], "NOT_FOUND")]
    wrong_type = await _approve(api, world, ids=[ids["fresh"], world.program])
    assert errors(wrong_type) == [(["ids", "1"], "NOT_FOUND")]
    assert (wrong_type["commissions"], wrong_type["count"]) == ([], 0)
    assert await Commission.filter(status="APPROVED").count() == 0


async def test_rejecting_with_a_reason_takes_the_entry_out_of_the_balance(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "bad", "100.00", NOW)
    await sell(api, world, world.a, "good", "100.00", NOW)
    ids = await _ids(api, world, world.a)
    refused = await api.mutate(
        "rejectCommissions", {"ids": [ids["bad"]], "reason": "  "}, CHANGED, world.admin
    )
    assert errors(refused) == [(["reason"], "INVALID")]
    payload = await api.mutate(
        "rejectCommissions", {"ids": [ids["bad"]], "reason": "self-referral"}, CHANGED, world.admin
    )
    assert payload["userErrors"] == []
    assert payload["count"] == 1
    [entry] = payload["commissions"]
    assert (entry["id"], entry["status"], entry["reason"]) == (
        ids["bad"],
        "REJECTED",
        "self-referral",
    )
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    assert seen["balance"]["pending"] == eur("20.00")
    rejected = await ledger(api, world.a["token"], world.a["enrollmentId"], "REJECTED")
    assert [(e["id"], e["reason"]) for e in rejected["entries"]] == [(ids["bad"], "self-referral")]
    audit = await AuditEntry.filter(action="rejectCommissions").get()
    assert audit.reason == "self-referral"


# --- payouts and refunds --------------------------------------------------------------------

BATCH = (
    f"payoutBatch {{ id status reference total {MONEY} minimumAmount {MONEY} items {{ "
    f"enrollment {{ id }} amount {MONEY} commissions {{ id kind amount {MONEY} }} }} }}"
)


async def _batch(api: Api, world: World, minimum: str | None = None) -> dict[str, Any]:
    fields = {"programId": world.program} | ({} if minimum is None else {"minimumAmount": minimum})
    return await api.mutate("createPayoutBatch", fields, BATCH, world.admin)


async def _paid(api: Api, world: World, batch: str, reference: str) -> dict[str, Any]:
    return await api.mutate(
        "markPayoutPaid", {"id": batch, "reference": reference}, BATCH, world.admin
    )


async def test_a_payout_batch_pays_approved_entries_that_reach_the_minimum(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "a-1", "100.00", OLD)  # A: 20.00
    await sell(api, world, world.a, "a-2", "25.00", OLD)  # A: 5.00
    await sell(api, world, world.b, "b-1", "100.00", OLD)  # B: 5.00 flat
    nothing = await _batch(api, world)
    assert nothing["payoutBatch"] is None
    assert errors(nothing) == [(["programId"], "NOT_FOUND")]
    assert "minimum" in nothing["userErrors"][0]["message"]
    assert (await _approve(api, world))["count"] == 3
    for wrong in ("0.001", "-1", "1E+1000000"):
        assert errors(await _batch(api, world, wrong)) == [(["minimumAmount"], "INVALID")]
    made = await _batch(api, world, "10.00")
    assert made["userErrors"] == []
    batch = made["payoutBatch"]
    assert (batch["status"], batch["reference"]) == ("PENDING", None)
    assert batch["minimumAmount"] == {"amount": "10.00", "currency": "EUR"}
    assert batch["total"] == [{"amount": "25.00", "currency": "EUR"}]
    [item] = batch["items"]
    assert item["enrollment"] == {"id": world.a["enrollmentId"]}
    assert item["amount"] == {"amount": "25.00", "currency": "EUR"}
    assert sorted(c["amount"]["amount"] for c in item["commissions"]) == ["20.00", "5.00"]
    # B's 5.00 waits for a later batch; A's entries are in this one and never in another
    rest = await _batch(api, world)
    assert [i["enrollment"]["id"] for i in rest["payoutBatch"]["items"]] == [
        world.b["enrollmentId"]
    ]
    listed = await api.data(
        "query($p: ID!) { payoutBatches(programId: $p) { totalCount edges { node { id } } } }",
        {"p": world.program},
        world.admin,
    )
    assert [e["node"]["id"] for e in listed["payoutBatches"]["edges"]] == [
        rest["payoutBatch"]["id"],
        batch["id"],
    ]
    query = "query($id: ID!) { node(id: $id) { ... on Commission { payoutBatch { id } } } }"
    entry = item["commissions"][0]["id"]
    assert (await api.data(query, {"id": entry}, world.admin))["node"] == {
        "payoutBatch": {"id": batch["id"]}
    }


async def test_marking_a_batch_paid_pays_its_entries_once(api: Api, world: World) -> None:
    await sell(api, world, world.a, "a-1", "100.00", OLD)
    await _approve(api, world)
    batch = (await _batch(api, world))["payoutBatch"]["id"]
    refused = await _paid(api, world, batch, " ")
    assert errors(refused) == [(["reference"], "INVALID")]
    paid = await _paid(api, world, batch, "tr_123")
    assert paid["userErrors"] == []
    assert (paid["payoutBatch"]["status"], paid["payoutBatch"]["reference"]) == ("PAID", "tr_123")
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    assert seen["balance"] == {"pending": [], "approved": [], "paid": eur("20.00")}
    assert [e["status"] for e in seen["entries"]] == ["PAID"]
    same = await _paid(api, world, batch, "tr_123")
    assert (same["userErrors"], same["payoutBatch"]["reference"]) == ([], "tr_123")
    other = await _paid(api, world, batch, "tr_999")
    assert errors(other) == [(["reference"], "CONFLICT")]
    assert other["payoutBatch"] is None
    assert await AuditEntry.filter(action="markPayoutPaid").count() == 1
    # a paid entry cannot be rejected
    entry = seen["entries"][0]["id"]
    late = await api.mutate(
        "rejectCommissions", {"ids": [entry], "reason": "too late"}, CHANGED, world.admin
    )
    assert errors(late) == [(["ids", "0"], "CONFLICT")]
    unknown = await _paid(api, world, world.program, "tr_1")
    assert errors(unknown) == [(["id"], "NOT_FOUND")]


async def _refund(api: Api, world: World, external_id: str, amount: str | None = None) -> None:
    fields = {"programId": world.program, "externalId": external_id}
    payload = await api.mutate(
        "refundConversion",
        fields | ({} if amount is None else {"amount": amount}),
        "conversion { id }",
        world.admin,
    )
    assert payload["userErrors"] == [], payload


async def test_refunds_before_payout_reverse_unpaid_entries(api: Api, world: World) -> None:
    await sell(api, world, world.a, "full", "100.00", NOW)  # 20.00
    await sell(api, world, world.a, "part", "50.00", NOW)  # 10.00
    await _refund(api, world, "full")
    await _refund(api, world, "part", "12.50")  # a quarter: 2.50 back
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    got = [(e["conversion"]["externalId"], e["kind"], e["status"], e["amount"]["amount"])
           for e in seen["entries"]]  # fmt: skip
    assert got == [
        ("part", "REVERSAL", "PENDING", "-2.50"),
        ("full", "REVERSAL", "REVERSED", "-20.00"),
        ("part", "COMMISSION", "PENDING", "10.00"),
        ("full", "COMMISSION", "REVERSED", "20.00"),
    ]
    assert seen["balance"] == {"pending": eur("7.50"), "approved": [], "paid": []}


async def test_a_refund_after_payout_is_carried_into_the_next_payout(
    api: Api, world: World
) -> None:
    await sell(api, world, world.a, "paid", "100.00", OLD)  # 20.00, paid below
    await _approve(api, world)
    first = (await _batch(api, world))["payoutBatch"]["id"]
    await _paid(api, world, first, "tr_1")
    await _refund(api, world, "paid")
    seen = await ledger(api, world.a["token"], world.a["enrollmentId"])
    [reversal, paid] = seen["entries"]
    assert (reversal["kind"], reversal["status"], reversal["amount"]["amount"]) == (
        "REVERSAL", "APPROVED", "-20.00",
    )  # fmt: skip
    assert paid["status"] == "PAID"  # the paid entry is never touched
    assert seen["balance"] == {"pending": [], "approved": eur("-20.00"), "paid": eur("20.00")}
    # a negative total waits: nothing to pay yet
    assert (await _batch(api, world))["payoutBatch"] is None
    await sell(api, world, world.a, "next", "150.00", OLD)  # 30.00
    await _approve(api, world)
    carried = (await _batch(api, world))["payoutBatch"]
    [item] = carried["items"]
    assert item["amount"]["amount"] == "10.00"  # 30.00 less the 20.00 refunded after payout
    assert sorted(c["amount"]["amount"] for c in item["commissions"]) == ["-20.00", "30.00"]
    await _paid(api, world, carried["id"], "tr_2")
    final = await ledger(api, world.a["token"], world.a["enrollmentId"])
    assert final["balance"] == {"pending": [], "approved": [], "paid": eur("30.00")}


# --- who may see and do what ----------------------------------------------------------------

NODE = "query($id: ID!) { node(id: $id) { id } }"
RULES = "query($id: ID!) { node(id: $id) { ... on Program { commissionRules { id } } } }"


async def _token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "t", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@dataclass
class Paid:
    """A's and B's entries, both paid in one batch."""

    a_entry: str
    b_entry: str
    batch: str


async def _paid_world(api: Api, world: World) -> Paid:
    await sell(api, world, world.a, "a-1", "100.00", OLD)
    await sell(api, world, world.b, "b-1", "100.00", OLD)
    await _approve(api, world)
    batch = (await _batch(api, world))["payoutBatch"]["id"]
    await _paid(api, world, batch, "tr_1")
    a, b = await _ids(api, world, world.a), await _ids(api, world, world.b)
    return Paid(a["a-1"], b["b-1"], batch)


@pytest.fixture(params=["user", "app token"])
async def as_a(request: pytest.FixtureRequest, api: Api, world: World) -> str:
    """Partner A, as its user or through a token it made with every scope a partner may have."""
    if request.param == "user":
        return str(world.a["token"])
    return await _token(api, world.a["token"], ["reports:read", "partners:read", "programs:read"])


async def test_a_partner_reaches_its_own_entries_but_never_anothers(
    api: Api, world: World, as_a: str
) -> None:
    paid = await _paid_world(api, world)
    assert await api.data(NODE, {"id": paid.a_entry}, as_a) == {"node": {"id": paid.a_entry}}
    assert await api.data(NODE, {"id": paid.b_entry}, as_a) == {"node": None}
    # nor through B's enrollment (not found), whose ledger and balance stay out of reach
    query = """query($id: ID!) { node(id: $id) { ... on Enrollment {
        balance { paid { amount } } commissions { totalCount } } } }"""
    assert await api.data(query, {"id": world.b["enrollmentId"]}, as_a) == {"node": None}
    own = await ledger(api, as_a, world.a["enrollmentId"])
    assert [e["id"] for e in own["entries"]] == [paid.a_entry]
    assert own["balance"]["paid"] == eur("20.00")


async def test_a_partner_never_reaches_a_payout_batch(api: Api, world: World, as_a: str) -> None:
    paid = await _paid_world(api, world)
    assert await api.data(NODE, {"id": paid.batch}, as_a) == {"node": None}
    listed = await api.post(
        "query($p: ID!) { payoutBatches(programId: $p) { totalCount } }",
        {"p": world.program},
        as_a,
    )
    assert codes(listed) == ["FORBIDDEN"]
    assert listed["data"] is None
    query = "query($id: ID!) { node(id: $id) { ... on Commission { payoutBatch { id } } } }"
    assert await api.data(query, {"id": paid.a_entry}, as_a) == {"node": {"payoutBatch": None}}
    admin = await api.data(query, {"id": paid.a_entry}, world.admin)
    assert admin == {"node": {"payoutBatch": {"id": paid.batch}}}


async def test_a_partner_sees_only_the_rules_that_can_apply_to_it(
    api: Api, world: World, as_a: str
) -> None:
    silver = await api.mutate(
        "createTier", {"programId": world.program, "name": "Silver", "rank": 1}, "tier { id }",
        world.admin,
    )  # fmt: skip
    sale = {"programId": world.program, "conversionKind": "SALE"}
    silver_rule = await _rule_id(
        api, world.admin, sale | {"percentage": "15", "tierId": silver["tier"]["id"]}
    )
    archived = await _rule_id(api, world.admin, sale | {"percentage": "1"})
    await api.mutate(
        "archiveCommissionRule", {"id": archived}, "commissionRule { id }", world.admin
    )
    a_rules = (await api.data(RULES, {"id": world.program}, as_a))["node"]["commissionRules"]
    assert a_rules == [{"id": world.rules["base"]}, {"id": world.rules["gold"]}]
    b_rules = (await api.data(RULES, {"id": world.program}, world.b["token"]))["node"]
    assert b_rules["commissionRules"] == [{"id": world.rules["base"]}, {"id": world.rules["b"]}]
    admin = (await api.data(RULES, {"id": world.program}, world.admin))["node"]
    assert len(admin["commissionRules"]) == 5
    for hidden in (world.rules["b"], silver_rule):
        assert await api.data(NODE, {"id": hidden}, as_a) == {"node": None}
    assert await api.data(NODE, {"id": world.rules["gold"]}, world.b["token"]) == {"node": None}
    # an archived rule that applies stays reachable by id (its entries name it)
    assert await api.data(NODE, {"id": archived}, as_a) == {"node": {"id": archived}}


async def test_a_rule_moved_to_another_enrollment_leaves_the_partners_sight(
    api: Api, world: World, as_a: str
) -> None:
    await sell(api, world, world.a, "a-1", "100.00", OLD)
    moved = await api.mutate(
        "updateCommissionRule",
        {"id": world.rules["gold"], "tierId": None, "enrollmentId": world.b["enrollmentId"]},
        "commissionRule { version }",
        world.admin,
    )
    assert moved == {"commissionRule": {"version": 2}, "userErrors": []}
    [entry] = (await ledger(api, as_a, world.a["enrollmentId"]))["entries"]
    assert (entry["rule"], entry["ruleVersion"]) == (None, 1)
    assert await api.data(NODE, {"id": world.rules["gold"]}, as_a) == {"node": None}
    # B sees the rule now, but not the version that was Gold's
    query = "query($id: ID!) { node(id: $id) { ... on CommissionRule { versions { version } } } }"
    b_view = await api.data(query, {"id": world.rules["gold"]}, world.b["token"])
    assert b_view == {"node": {"versions": [{"version": 2}]}}
    admin = await api.data(query, {"id": world.rules["gold"]}, world.admin)
    assert admin == {"node": {"versions": [{"version": 1}, {"version": 2}]}}


@pytest.mark.parametrize(
    ("name", "make_input", "selection"),
    [
        ("createCommissionRule", lambda w: {"programId": w.program, "conversionKind": "SALE",
                                            "percentage": "99"}, "commissionRule { id }"),
        ("updateCommissionRule", lambda w: {"id": w.rules["base"], "percentage": "99"},
         "commissionRule { id }"),
        ("archiveCommissionRule", lambda w: {"id": w.rules["base"]}, "commissionRule { id }"),
        ("approveCommissions", lambda w: {"programId": w.program}, "count"),
        ("rejectCommissions", lambda w: {"ids": [w.b["entry"]], "reason": "x"}, "count"),
        ("createPayoutBatch", lambda w: {"programId": w.program}, "payoutBatch { id }"),
    ],
)  # fmt: skip
async def test_partners_and_read_only_tokens_cannot_change_commissions(
    api: Api, world: World, as_a: str, name: str, make_input: Any, selection: str
) -> None:
    await sell(api, world, world.b, "b-1", "100.00", OLD)
    world.b["entry"] = (await _ids(api, world, world.b))["b-1"]
    reader = await _token(api, world.admin, ["reports:read", "programs:read"])
    before = (
        await CommissionRule.all().order_by("id").values_list("id", "version", "archived"),
        await Commission.all().order_by("id").values_list("id", "status", "payout_item_id"),
    )
    query = (
        f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
        f"{{ {selection} userErrors {{ code }} }} }}"
    )
    for token in (as_a, reader):
        body = await api.post(query, {"input": make_input(world)}, token)
        assert codes(body) == ["FORBIDDEN"]
        assert body["data"] is None
    after = (
        await CommissionRule.all().order_by("id").values_list("id", "version", "archived"),
        await Commission.all().order_by("id").values_list("id", "status", "payout_item_id"),
    )
    assert after == before


async def test_app_tokens_read_by_their_scopes(api: Api, world: World) -> None:
    paid = await _paid_world(api, world)
    reports = await _token(api, world.admin, ["reports:read"])
    programs = await _token(api, world.admin, ["programs:read"])
    # reports:read: every partner's entries and the payout batches, but no rules
    assert await api.data(NODE, {"id": paid.b_entry}, reports) == {"node": {"id": paid.b_entry}}
    assert await api.data(NODE, {"id": paid.batch}, reports) == {"node": {"id": paid.batch}}
    listed = await api.data(
        "query($p: ID!) { payoutBatches(programId: $p) { totalCount } }",
        {"p": world.program},
        reports,
    )
    assert listed == {"payoutBatches": {"totalCount": 1}}
    assert await api.data(NODE, {"id": world.rules["b"]}, reports) == {"node": None}
    # programs:read: every rule, archived ones too, but no entries nor batches
    await api.mutate(
        "archiveCommissionRule", {"id": world.rules["base"]}, "commissionRule { id }", world.admin
    )
    rules = (await api.data(RULES, {"id": world.program}, programs))["node"]["commissionRules"]
    assert [r["id"] for r in rules] == [world.rules["base"], world.rules["gold"], world.rules["b"]]
    for hidden in (paid.a_entry, paid.batch):
        assert await api.data(NODE, {"id": hidden}, programs) == {"node": None}
    refused = await api.post(
        "query($p: ID!) { payoutBatches(programId: $p) { totalCount } }",
        {"p": world.program},
        programs,
    )
    assert codes(refused) == ["FORBIDDEN"]


async def test_an_app_token_with_programs_write_manages_rules_and_payouts(
    api: Api, world: World
) -> None:
    writer = await _token(api, world.admin, ["programs:write"])
    await sell(api, world, world.a, "a-1", "100.00", OLD)
    made = await api.mutate(
        "createCommissionRule",
        {"programId": world.program, "conversionKind": "LEAD", "flatAmount": "1.00"},
        f"commissionRule {{ id flatAmount {MONEY} }}",
        writer,
    )
    assert made["userErrors"] == []
    assert made["commissionRule"]["flatAmount"] == {"amount": "1.00", "currency": "EUR"}
    approved = await api.mutate(
        "approveCommissions", {"programId": world.program}, "count commissions { status }",
        writer,
    )  # fmt: skip
    assert approved == {"count": 1, "commissions": [{"status": "APPROVED"}], "userErrors": []}
    batch = await api.mutate(
        "createPayoutBatch", {"programId": world.program}, "payoutBatch { status }", writer
    )
    assert batch == {"payoutBatch": {"status": "PENDING"}, "userErrors": []}
    entry = await AuditEntry.filter(action="createPayoutBatch").get()
    assert entry.actor.startswith("app:t (pgt_")


async def test_balances_of_many_enrollments_cost_no_more_queries(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    query = """query($id: ID!) { node(id: $id) { ... on Program { enrollments(first: 50) {
        edges { node { balance { pending { amount } } } } } } } }"""

    async def count() -> tuple[int, int]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            data = await api.data(query, {"id": world.program}, world.admin)
        queries = sum(1 for r in caplog.records if r.name == "tortoise.db_client")
        return len(data["node"]["enrollments"]["edges"]), queries

    await sell(api, world, world.a, "a-1", "100.00", OLD)
    few = await count()
    for n in range(3):
        partner = await api.mutate(
            "createPartner", {"name": f"P{n}", "email": f"p{n}@example.com"}, "partner { id }",
            world.admin,
        )  # fmt: skip
        await api.mutate(
            "enrollPartner", {"programId": world.program, "partnerId": partner["partner"]["id"]},
            "enrollment { id }", world.admin,
        )  # fmt: skip
    many = await count()
    assert (few[0], many[0]) == (2, 5)
    assert few[1] == many[1] > 0
