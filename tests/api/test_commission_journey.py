"""Issue 5's "done when", end to end through HTTP: a double-sided program with tiered,
recurring and decaying rules pays its partners the right amounts through approvals and two
payout batches, a refund before payout and one after come out right, and the referee rewards
are in the program's cost. Every amount is worked by hand in the comments."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.api.test_commissions import MONEY, create_rule, eur, ledger
from tests.helpers import Api

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=100)
BATCH = (
    f"payoutBatch {{ id status reference total {MONEY} "
    f"items {{ enrollment {{ id }} amount {MONEY} }} }}"
)


async def _ok(api: Api, name: str, input_: dict[str, Any], selection: str, token: str) -> Any:
    payload = await api.mutate(name, input_, selection, token)
    assert payload["userErrors"] == [], payload
    return payload


async def _convert(api: Api, admin: str, program: str, **item: Any) -> None:
    item = {"programId": program, "currency": "EUR"} | item
    item["occurredAt"] = item["occurredAt"].isoformat()
    await _ok(api, "recordConversion", item, "conversion { id }", admin)


async def _enroll(api: Api, admin: str, program: str, name: str, tier: str) -> dict[str, Any]:
    partner = await api.partner(admin, name, f"{name.lower()}@example.com")
    enrolled = await _ok(
        api,
        "enrollPartner",
        {"programId": program, "partnerId": partner["id"], "tierId": tier},
        "enrollment { id referralCode }",
        admin,
    )
    partner["enrollmentId"] = enrolled["enrollment"]["id"]
    partner["code"] = enrolled["enrollment"]["referralCode"]
    return partner


async def test_a_double_sided_program_pays_its_partners_the_right_amounts(api: Api) -> None:
    admin = await api.admin_token()
    program = (
        await _ok(
            api,
            "createProgram",
            {
                "name": "Acme",
                "currency": "EUR",
                "destinationUrl": "https://acme.example/",
                "holdDays": 14,
                "refereeReward": {"kind": "FLAT_CREDIT", "value": "10"},
            },
            "program { id }",
            admin,
        )
    )["program"]["id"]
    tiers = {}
    for name, rank in (("Silver", 1), ("Gold", 2)):
        payload = await _ok(
            api,
            "createTier",
            {"programId": program, "name": name, "rank": rank},
            "tier { id }",
            admin,
        )
        tiers[name] = payload["tier"]["id"]
    a = await _enroll(api, admin, program, "Alpha", tiers["Silver"])
    b = await _enroll(api, admin, program, "Beta", tiers["Gold"])
    for rule in (
        {"conversionKind": "SALE", "percentage": "10"},  # everyone: 10 % of sales
        {"conversionKind": "SALE", "percentage": "20", "tierId": tiers["Gold"]},  # Gold: 20 %
        # renewals: 10 % for two months after the first sale, halving every 30 days
        {"conversionKind": "RENEWAL", "percentage": "10", "recurringMonths": 2, "halfLifeDays": 30},
    ):
        assert (await create_rule(api, admin, {"programId": program} | rule))["userErrors"] == []

    # A's customer buys for 200.00 at T0 with A's code: A (Silver) earns 10 % = 20.00; the
    # customer's first sale costs the program its 10.00 referee reward.
    await _convert(
        api,
        admin,
        program,
        externalId="s1",
        kind="SALE",
        amount="200.00",
        customerId="c1",
        referralCode=a["code"],
        occurredAt=T0,
    )
    # It renews 30 days later: credited to A like the first sale; 10 % of 200.00 = 20.00,
    # halved once (one half-life since the code was used) = 10.00.
    await _convert(
        api,
        admin,
        program,
        externalId="r1",
        kind="RENEWAL",
        amount="200.00",
        customerId="c1",
        occurredAt=T0 + timedelta(days=30),
    )
    # And 70 days later: past the two recurring months, it earns nothing.
    await _convert(
        api,
        admin,
        program,
        externalId="r2",
        kind="RENEWAL",
        amount="200.00",
        customerId="c1",
        occurredAt=T0 + timedelta(days=70),
    )
    # B's customer buys for 300.00: B (Gold) earns 20 % = 60.00; another 10.00 reward.
    await _convert(
        api,
        admin,
        program,
        externalId="s2",
        kind="SALE",
        amount="300.00",
        customerId="c2",
        referralCode=b["code"],
        occurredAt=T0 + timedelta(days=5),
    )

    seen_a = await ledger(api, a["token"], a["enrollmentId"])
    assert sorted((e["kind"], e["amount"]["amount"]) for e in seen_a["entries"]) == [
        ("COMMISSION", "10.00"),
        ("COMMISSION", "20.00"),
    ]
    assert seen_a["balance"] == {"pending": eur("30.00"), "approved": [], "paid": []}

    # Before any payout, B's customer gets 75.00 of 300.00 back: B keeps 60.00 x 225 / 300 =
    # 45.00, a REVERSAL of -15.00 waiting with the commission.
    await _ok(
        api,
        "refundConversion",
        {"programId": program, "externalId": "s2", "amount": "75.00"},
        "conversion { id }",
        admin,
    )
    seen_b = await ledger(api, b["token"], b["enrollmentId"])
    assert sorted((e["kind"], e["status"], e["amount"]["amount"]) for e in seen_b["entries"]) == [
        ("COMMISSION", "PENDING", "60.00"),
        ("REVERSAL", "PENDING", "-15.00"),
    ]

    # Every hold (14 days) is over: approve, then pay everyone above 25.00: A 30.00, B 45.00.
    approved = await _ok(api, "approveCommissions", {"programId": program}, "count", admin)
    assert approved["count"] == 4
    first = (
        await _ok(
            api, "createPayoutBatch", {"programId": program, "minimumAmount": "25.00"}, BATCH, admin
        )
    )["payoutBatch"]
    assert first["total"] == [{"amount": "75.00", "currency": "EUR"}]
    assert sorted((i["enrollment"]["id"], i["amount"]["amount"]) for i in first["items"]) == sorted(
        [(a["enrollmentId"], "30.00"), (b["enrollmentId"], "45.00")]
    )
    paid = await _ok(
        api, "markPayoutPaid", {"id": first["id"], "reference": "SEPA-1"}, BATCH, admin
    )
    assert paid["payoutBatch"]["status"] == "PAID"

    # After the payout, A's first sale is refunded in full: the paid 20.00 stays paid, and a
    # REVERSAL of -20.00 is approved at once, carried into A's next payout.
    await _ok(
        api,
        "refundConversion",
        {"programId": program, "externalId": "s1"},
        "conversion { id }",
        admin,
    )
    seen_a = await ledger(api, a["token"], a["enrollmentId"])
    assert seen_a["balance"] == {"pending": [], "approved": eur("-20.00"), "paid": eur("30.00")}
    nothing = await api.mutate(
        "createPayoutBatch", {"programId": program}, "payoutBatch { id }", admin
    )
    assert nothing["payoutBatch"] is None  # A's total is negative: nothing to pay yet

    # A's next customer buys for 500.00 (20 days ago, past the hold): 50.00, and a third
    # referee reward. The next payout pays A 50.00 - 20.00 = 30.00.
    await _convert(
        api,
        admin,
        program,
        externalId="s3",
        kind="SALE",
        amount="500.00",
        customerId="c3",
        referralCode=a["code"],
        occurredAt=NOW - timedelta(days=20),
    )
    await _ok(api, "approveCommissions", {"programId": program}, "count", admin)
    second = (await _ok(api, "createPayoutBatch", {"programId": program}, BATCH, admin))[
        "payoutBatch"
    ]
    assert [(i["enrollment"]["id"], i["amount"]["amount"]) for i in second["items"]] == [
        (a["enrollmentId"], "30.00")
    ]
    await _ok(api, "markPayoutPaid", {"id": second["id"], "reference": "SEPA-2"}, BATCH, admin)
    seen_a = await ledger(api, a["token"], a["enrollmentId"])
    # paid: 20.00 + 10.00 (first batch) + 50.00 - 20.00 (second batch) = 60.00
    assert seen_a["balance"] == {"pending": [], "approved": [], "paid": eur("60.00")}
    seen_b = await ledger(api, b["token"], b["enrollmentId"])
    assert seen_b["balance"] == {"pending": [], "approved": [], "paid": eur("45.00")}

    # The program's cost: what the partners earned (60.00 + 45.00) and three first sales'
    # referee rewards (30.00), every entry in the commissions export.
    response = await api.client.get(
        "/exports/commissions.csv",
        params={"programId": program},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    cost: dict[str, int] = {}
    for row in rows:
        if row["status"] not in ("REJECTED",):
            cents = int(Decimal(row["amount"]) * 100)
            cost[row["kind"]] = cost.get(row["kind"], 0) + cents
    assert cost == {
        "COMMISSION": 20_00 + 10_00 + 60_00 + 50_00,
        "REVERSAL": -15_00 - 20_00,
        "REFEREE_REWARD": 30_00,
    }
