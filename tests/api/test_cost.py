"""The query cost limit: costly operations are refused before they run; costs are reported."""

from __future__ import annotations

import pytest
from graphql import OperationDefinitionNode, parse

from api.cost import LIST_FACTOR, MAX_COST, operation_cost
from api.schema import build_schema
from tests.helpers import Api

SCHEMA = build_schema()._schema


def cost(query: str, variables: dict[str, int] | None = None) -> int:
    document = parse(query)
    operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
    fragments = {d.name.value: d for d in document.definitions if d.kind == "fragment_definition"}  # type: ignore[attr-defined]
    return operation_cost(SCHEMA, operation, fragments, variables or {})


def test_fields_cost_one_each_and_typename_is_free() -> None:
    assert cost("{ viewer { kind email __typename } }") == 3


def test_connections_count_their_edges_first_times_default_twenty() -> None:
    # programs + totalCount + edges, whose selection (node, name) counts `first` times
    assert cost("{ programs(first: 5) { totalCount edges { node { name } } } }") == 3 + 5 * 2
    assert cost("{ programs { edges { node { name } } } }") == 2 + 20 * 2
    query = "query($n: Int) { programs(first: $n) { edges { cursor } } }"
    assert cost(query, {"n": 7}) == 2 + 7 * 1


def test_plain_lists_multiply_by_the_list_factor_and_fragments_count() -> None:
    query = """{ programs(first: 2) { edges { node { ...P } } } }
      fragment P on Program { tiers { name rank } }"""
    assert cost(query) == 2 + 2 * (1 + (1 + LIST_FACTOR * 2))


async def test_too_costly_an_operation_is_refused_before_it_runs(api: Api) -> None:
    admin = await api.admin_token()
    query = """{ programs(first: 100) { edges { node { enrollments(first: 100) { edges {
      node { partner { enrollments { referralCode } } } } } } } } }"""
    body = await api.post(query, token=admin)
    assert "data" not in body  # refused before execution began
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert body["errors"][0]["extensions"]["cost"] > MAX_COST


@pytest.mark.parametrize("first", [1, 50])
async def test_every_answer_reports_its_cost(api: Api, first: int) -> None:
    admin = await api.admin_token()
    body = await api.post(
        "query($n: Int) { programs(first: $n) { edges { node { name } } } }", {"n": first}, admin
    )
    assert body["extensions"]["cost"] == {"requested": 2 + first * 2, "limit": MAX_COST}
