from __future__ import annotations

from decimal import Decimal
from typing import Any

from portal.demo import ADMIN_EMAIL, DEMO_PROGRAM, seed_demo
from tests.helpers import Api


async def test_demo_credentials_log_in_and_show_the_demo_program(api: Api) -> None:
    first = await seed_demo()
    second = await seed_demo()  # a restart: same data, new passwords
    assert first.admin_password != second.admin_password
    admin = (await api.login(ADMIN_EMAIL, second.admin_password))["access_token"]
    data = await api.data(
        "{ programs { totalCount edges { node { id name tiers { name } "
        "enrollments { totalCount } } } } }",
        token=admin,
    )
    program = data["programs"]["edges"][0]["node"]
    assert data["programs"]["totalCount"] == 1
    assert program["name"] == DEMO_PROGRAM
    assert [t["name"] for t in program["tiers"]] == ["Bronze", "Silver", "Gold"]
    assert program["enrollments"]["totalCount"] == 3
    partner = (await api.login(second.partner_email, second.partner_password))["access_token"]
    mine = await api.data(
        "{ viewer { kind partner { enrollments { referralCode } } } }", token=partner
    )
    assert mine["viewer"] == {
        "kind": "PARTNER",
        "partner": {"enrollments": [{"referralCode": "NORTHWIND"}]},
    }
    await _demo_shows_attribution(api, admin, partner, program_id=data_id(data))
    await _demo_shows_commissions(api, admin, partner, program_id=data_id(data))
    stale = await api.client.post(
        "/auth/login", json={"email": ADMIN_EMAIL, "password": first.admin_password}
    )
    assert stale.status_code == 401


def data_id(data: dict[str, Any]) -> str:
    return str(data["programs"]["edges"][0]["node"]["id"])


async def _demo_shows_commissions(api: Api, admin: str, partner: str, program_id: str) -> None:
    """Rules, a paid payout batch, entries of every kind a partner earns, and a balance that
    is the sum of them."""
    program = await api.data(
        "query($p: ID!) { node(id: $p) { ... on Program { commissionRules { name } } } "
        "payoutBatches(programId: $p) { edges { node { status reference total { amount } "
        "items { amount { amount } } } } } }",
        {"p": program_id},
        admin,
    )
    names = sorted(r["name"] for r in program["node"]["commissionRules"])
    assert names == ["Gold sales", "Leads", "Renewals, first year", "Sales"]
    [batch] = [e["node"] for e in program["payoutBatches"]["edges"]]
    assert (batch["status"], batch["reference"]) == ("PAID", "DEMO-SEPA-0001")
    total = sum(Decimal(i["amount"]["amount"]) for i in batch["items"])
    assert [Decimal(batch["total"][0]["amount"])] == [total]
    assert total > 0
    mine = await api.data(
        "{ viewer { partner { enrollments { balance { pending { amount } approved { amount } "
        "paid { amount } } commissions(first: 100) { totalCount edges { node { kind status "
        "amount { amount } reason } } } } } } }",
        token=partner,
    )
    [enrollment] = mine["viewer"]["partner"]["enrollments"]
    entries = [e["node"] for e in enrollment["commissions"]["edges"]]
    assert enrollment["commissions"]["totalCount"] == len(entries) > 0
    assert {e["kind"] for e in entries} >= {"COMMISSION"}
    assert all(e["reason"] for e in entries)
    by_status: dict[str, Decimal] = {}
    for entry in entries:
        if entry["status"] in ("PENDING", "APPROVED", "PAID"):
            status = entry["status"].lower()
            by_status[status] = by_status.get(status, Decimal(0)) + Decimal(
                entry["amount"]["amount"]
            )
    balance = {
        key: sum((Decimal(m["amount"]) for m in value), Decimal(0))
        for key, value in enrollment["balance"].items()
    }
    assert balance == {k: by_status.get(k, Decimal(0)) for k in ("pending", "approved", "paid")}
    assert balance["paid"] > 0


async def _demo_shows_attribution(api: Api, admin: str, partner: str, program_id: str) -> None:
    """The demo's journeys are credited, and previews and data-driven models have data."""
    credits = await api.data(
        "{ viewer { partner { enrollments { credits(first: 100) { totalCount edges { node { "
        "share amount { amount } touchpoints { weight } } } } } } } }",
        token=partner,
    )
    mine = credits["viewer"]["partner"]["enrollments"][0]["credits"]
    links = await api.data(
        "{ viewer { partner { enrollments { links { code url } } } } }", token=partner
    )
    [link] = links["viewer"]["partner"]["enrollments"][0]["links"]
    assert link["code"] == "ACME-SPRING"
    assert link["url"].endswith("/r/ACME-SPRING")
    deals = await api.data(
        "query($p: ID!) { deals(programId: $p) { edges { node { companyName status } } } }",
        {"p": program_id},
        admin,
    )
    assert sorted(
        (e["node"]["companyName"], e["node"]["status"]) for e in deals["deals"]["edges"]
    ) == [
        ("Globex Corporation", "APPROVED"),
        ("Initech Ltd", "PENDING"),
    ]
    assert mine["totalCount"] > 0
    assert all(Decimal(e["node"]["amount"]["amount"]) >= 0 for e in mine["edges"])
    preview = await api.data(
        "query($p: ID!) { attributionPreview(programId: $p, model: {model: LINEAR}) { "
        "amount { amount } currentAmount { amount } } }",
        {"p": program_id},
        admin,
    )
    rows = preview["attributionPreview"]
    assert len(rows) == 3
    total = sum(Decimal(r["amount"]["amount"]) for r in rows)
    assert total == sum(Decimal(r["currentAmount"]["amount"]) for r in rows) > 0
    for method in ("MARKOV", "SHAPLEY"):
        result = await api.data(
            "query($p: ID!, $m: DataDrivenMethod!) { dataDrivenAttribution(programId: $p, "
            "method: $m) { journeys convertingJourneys rows { share } } }",
            {"p": program_id, "m": method},
            admin,
        )
        model = result["dataDrivenAttribution"]
        assert model["journeys"] > model["convertingJourneys"] > 0
        assert len(model["rows"]) == 3


async def test_healthz_answers_when_the_database_answers(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
