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
