"""The contract's journey end to end, through real HTTP only: two partners' links clicked by one
visitor, the visitor identified as the merchant's customer, a sale split by the program's
model, an idempotent retry, a conflict, and refunds."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette

from tests.helpers import Api

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
CREDITS = (
    "conversion { id status amount { amount } refunded { amount } "
    "credits { share model amount { amount } enrollment { referralCode } } }"
)


@pytest.fixture(autouse=True)
def fresh_click_state(app: Starlette) -> None:
    """The session-wide app keeps codes and recent clicks in memory: start clean."""
    app.state.clicks.service.resolver.clear()
    app.state.clicks.service.recent.clear()


async def _link(api: Api, admin: str, enrollment_id: str, code: str) -> str:
    payload = await api.mutate(
        "createReferralLink",
        {"enrollmentId": enrollment_id, "code": code},
        "referralLink { url }",
        admin,
    )
    assert payload["userErrors"] == [], payload
    return str(urlsplit(payload["referralLink"]["url"]).path)


async def _click(api: Api, path: str, visitor: str | None) -> tuple[str, str]:
    """Follow a referral link like a browser: answers (visitor id, click id)."""
    headers = {"User-Agent": BROWSER}
    if visitor is not None:
        headers["Cookie"] = f"pg_vid={visitor}"
    response = await api.client.get(path, headers=headers)
    assert response.status_code == 302, response.text
    click_id = parse_qs(urlsplit(response.headers["location"]).query)["pg_click"][0]
    cookie = response.cookies.get("pg_vid") or visitor
    assert cookie is not None
    return cookie, click_id


def _errors(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def test_two_partners_one_visitor_one_sale_split_retried_refunded(api: Api) -> None:
    admin = await api.admin_token()
    program = await api.mutate(
        "createProgram",
        {
            "name": "Journey",
            "currency": "EUR",
            "destinationUrl": "https://shop.example/",
            "attribution": {"model": "LINEAR", "lookbackDays": 30},
        },
        "program { id }",
        admin,
    )
    program_id = program["program"]["id"]
    alpha = await api.partner(admin, "Alpha", "alpha@example.com", program_id)
    beta = await api.partner(admin, "Beta", "beta@example.com", program_id)
    alpha_link = await _link(api, admin, alpha["enrollmentId"], "alpha-journey")
    beta_link = await _link(api, admin, beta["enrollmentId"], "beta-journey")

    visitor, _ = await _click(api, alpha_link, None)  # a first visit sets the cookie
    same_visitor, beta_click = await _click(api, beta_link, visitor)
    assert same_visitor == visitor

    identified = await api.mutate(
        "identifyCustomer",
        {"programId": program_id, "customerId": "cust-42", "visitorId": visitor},
        "customer { externalId firstEnrollment { referralCode } }",
        admin,
    )
    assert identified["userErrors"] == []
    assert identified["customer"]["externalId"] == "cust-42"

    sale = {
        "programId": program_id,
        "externalId": "order-1",
        "kind": "SALE",
        "amount": "100.01",
        "currency": "EUR",
        "customerId": "cust-42",
    }
    first = await api.mutate("recordConversion", sale, CREDITS, admin)
    assert first["userErrors"] == []
    conversion = first["conversion"]
    credits = sorted(
        (c["enrollment"]["referralCode"], c["share"], c["amount"]["amount"], c["model"])
        for c in conversion["credits"]
    )
    alpha_code = await _referral_code(api, alpha["token"])
    beta_code = await _referral_code(api, beta["token"])
    # LINEAR over two touchpoints: one cent left over goes to the later one (Beta's click)
    assert credits == sorted(
        [
            (alpha_code, "0.500000", "50.00", "LINEAR"),
            (beta_code, "0.500000", "50.01", "LINEAR"),
        ]
    )

    retry = await api.mutate("recordConversion", sale, CREDITS, admin)
    assert retry["conversion"]["id"] == conversion["id"]  # idempotent: the first result
    conflict = await api.mutate("recordConversion", {**sale, "amount": "99.00"}, CREDITS, admin)
    assert _errors(conflict) == [(["externalId"], "CONFLICT")]
    assert conflict["conversion"] is None

    refund = {"programId": program_id, "externalId": "order-1"}
    partial = await api.mutate("refundConversion", {**refund, "amount": "30.00"}, CREDITS, admin)
    assert partial["conversion"]["status"] == "PARTIALLY_REFUNDED"
    assert partial["conversion"]["refunded"]["amount"] == "30.00"
    too_much = await api.mutate("refundConversion", {**refund, "amount": "80.00"}, CREDITS, admin)
    assert [code for _, code in _errors(too_much)] == ["INVALID"]
    rest = await api.mutate("refundConversion", refund, CREDITS, admin)
    assert rest["conversion"]["status"] == "REFUNDED"
    assert rest["conversion"]["refunded"]["amount"] == "100.01"

    # each partner sees its own credit, and only its own, on the shared conversion
    seen = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Conversion { credits { amount { amount } } } } }",
        {"id": conversion["id"]},
        beta["token"],
    )
    assert seen["node"]["credits"] == [{"amount": {"amount": "50.01"}}]
    assert beta_click  # the redirect carried the click id it stored


async def _referral_code(api: Api, token: str) -> str:
    data = await api.data("{ viewer { partner { enrollments { referralCode } } } }", token=token)
    return str(data["viewer"]["partner"]["enrollments"][0]["referralCode"])
