"""Schemathesis hooks: strategies for our scalars (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

from datetime import UTC

import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
        st.text(max_size=12),
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        st.text(max_size=20),
    ).map(nodes.String),
)

# Refusals the API documents (ApiError codes): a client's mistake, answered in `errors` with a
# reason, as GraphQL-over-HTTP allows for queries that have no payload to carry user errors.
CLIENT_ERROR_CODES = frozenset({"BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED"})


@schemathesis.check
def no_server_error(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """No 5xx, and no GraphQL error but a documented refusal: an INTERNAL_SERVER_ERROR (an
    exception we did not mean) or an error without a code fails. Schemathesis's own
    not_a_server_error counts every execution error as a server failure, refusals included."""
    assert response.status_code < 500, f"status {response.status_code}"
    payload = response.json()
    for error in payload.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code not in CLIENT_ERROR_CODES and "path" in error:
            raise AssertionError(f"server error: {error}")
