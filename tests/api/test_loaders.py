"""DataLoaders: the number of SQL queries does not grow with the number of items listed."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import Api

QUERY = """query($id: ID!) { node(id: $id) { ... on Program { name tiers { name }
  enrollments(first: 50) { edges { node { referralCode tier { name } program { name }
  partner { name enrollments { referralCode } } } } } } } }"""


async def _queries_for(api: Api, caplog: pytest.LogCaptureFixture, partners: int) -> int:
    admin = await api.admin_token(f"admin{partners}@example.com")
    program = await api.program(admin, name=f"P{partners}")
    tier = await api.mutate(
        "createTier", {"programId": program, "name": "T", "rank": 1}, "tier { id }", admin
    )
    for i in range(partners):
        partner = await api.partner(admin, f"N{i}", f"n{partners}-{i}@example.com", program)
        await api.mutate(
            "updateEnrollment",
            {"id": partner["enrollmentId"], "tierId": tier["tier"]["id"]},
            "enrollment { id }",
            admin,
        )
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
        data = await api.data(QUERY, {"id": program}, token=admin)
    assert len(data["node"]["enrollments"]["edges"]) == partners
    return sum(1 for r in caplog.records if r.name == "tortoise.db_client")


async def test_listing_more_enrollments_costs_no_more_queries(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    few = await _queries_for(api, caplog, 2)
    many = await _queries_for(api, caplog, 7)
    assert few > 0
    assert many == few
