from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.partners.rules import code_key, code_problem, generate_code


@pytest.mark.parametrize("code", ["ANNA10", "anna-10", "a_b", "x" * 32, "Q2W"])
def test_good_vanity_codes_pass(code: str) -> None:
    assert code_problem(code) is None


@pytest.mark.parametrize(
    "code", ["ab", "x" * 33, "-anna", "anna-", "an na", "añna", "an/na", "graphql", "ADMIN"]
)
def test_bad_vanity_codes_are_refused(code: str) -> None:
    assert code_problem(code) is not None


def test_codes_are_compared_case_insensitively() -> None:
    assert code_key("Anna10") == code_key("ANNA10") == "anna10"


@given(st.text(max_size=40))
def test_generated_codes_are_always_valid_vanity_codes(name: str) -> None:
    code = generate_code(name)
    assert code_problem(code) is None
    suffix = code.rsplit("-", 1)[-1]
    assert len(suffix) == 6
    assert not set(suffix) & set("01OIL")  # the random part avoids look-alike characters
