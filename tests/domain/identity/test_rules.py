"""Pure rules of identity: API token format and checksum, scopes, passwords, e-mails."""

from __future__ import annotations

import hashlib
import re
import string
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.identity import rules

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
TOKEN_LENGTH = len("pgt_") + 43 + 6
SPACES = st.sampled_from(["", " ", "\n", "\t", "\r\n", "\u00a0", "\u2028"])


def _from_base62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + BASE62.index(char)
    return number


# API tokens -----------------------------------------------------------------------------------


def test_new_api_token_is_pgt_prefix_43_base62_chars_and_6_char_checksum() -> None:
    new = rules.new_api_token()
    assert re.fullmatch(r"pgt_[0-9A-Za-z]{49}", new.secret)
    assert len(new.secret) == TOKEN_LENGTH
    assert rules.looks_like_api_token(new.secret)


def test_new_api_token_keeps_only_a_sha256_prefix_and_last4() -> None:
    new = rules.new_api_token()
    assert new.token_hash == hashlib.sha256(new.secret.encode()).hexdigest()
    assert len(new.token_hash) == 64
    assert new.prefix == new.secret[:10]
    assert new.last4 == new.secret[-4:]
    assert new.secret not in (new.token_hash, new.prefix, new.last4)


def test_new_api_tokens_are_different_every_time() -> None:
    secrets = {rules.new_api_token().secret for _ in range(200)}
    assert len(secrets) == 200


def test_checksum_is_the_crc32_of_the_body_in_base62() -> None:
    secret = rules.new_api_token().secret
    body, checksum = secret[4:-6], secret[-6:]
    assert _from_base62(checksum) == zlib.crc32(body.encode())


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_any_32_byte_secret_fits_43_base62_characters(number: int) -> None:
    encoded = rules._base62(number, 43)
    assert len(encoded) == 43
    assert _from_base62(encoded) == number


@given(st.data())
def test_any_single_character_change_is_refused(data: st.DataObject) -> None:
    secret = rules.new_api_token().secret
    index = data.draw(st.integers(min_value=0, max_value=len(secret) - 1), label="index")
    replacement = data.draw(
        st.characters(codec="utf-8").filter(lambda c: c != secret[index]), label="char"
    )
    changed = secret[:index] + replacement + secret[index + 1 :]
    assert not rules.looks_like_api_token(changed)


@given(st.data())
def test_any_base62_single_character_change_is_refused(data: st.DataObject) -> None:
    """The hard case: the format still matches, only the checksum can tell."""
    secret = rules.new_api_token().secret
    index = data.draw(st.integers(min_value=4, max_value=len(secret) - 1), label="index")
    replacement = data.draw(st.sampled_from(BASE62).filter(lambda c: c != secret[index]))
    changed = secret[:index] + replacement + secret[index + 1 :]
    assert not rules.looks_like_api_token(changed)


def test_swapping_two_different_body_characters_is_refused() -> None:
    secret = rules.new_api_token().secret
    i = next(i for i in range(4, 46) if secret[i] != secret[i + 1])
    swapped = secret[:i] + secret[i + 1] + secret[i] + secret[i + 2 :]
    assert not rules.looks_like_api_token(swapped)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: s[:-1], id="truncated"),
        pytest.param(lambda s: s + "0", id="extended"),
        pytest.param(lambda s: s[4:], id="no-prefix"),
        pytest.param(lambda s: "PGT_" + s[4:], id="upper-prefix"),
        pytest.param(lambda s: "pgt-" + s[4:], id="other-separator"),
        pytest.param(lambda s: s + "\n", id="trailing-newline"),
        pytest.param(lambda s: " " + s, id="leading-space"),
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: "pgt_", id="prefix-only"),
    ],
)
def test_malformed_tokens_are_refused(mangle: Callable[[str], str]) -> None:
    secret = rules.new_api_token().secret
    assert not rules.looks_like_api_token(mangle(secret))


def test_hash_secret_is_hex_sha256() -> None:
    assert rules.hash_secret("pgt_x") == hashlib.sha256(b"pgt_x").hexdigest()


def test_refresh_secrets_are_random_urlsafe_strings() -> None:
    first, second = rules.new_refresh_secret(), rules.new_refresh_secret()
    assert first != second
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first)
    assert not first.startswith(rules.TOKEN_PREFIX)


# Scopes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "effective"),
    [
        ([], set()),
        (["programs:read"], {"programs:read"}),
        (["programs:write"], {"programs:write", "programs:read"}),
        (["partners:write"], {"partners:write", "partners:read"}),
        (["tracking:write"], {"tracking:write"}),
        (["reports:read"], {"reports:read"}),
        (
            ["programs:write", "partners:write"],
            {"programs:write", "programs:read", "partners:write", "partners:read"},
        ),
        (["programs:read", "programs:read"], {"programs:read"}),
    ],
)
def test_effective_scopes_add_the_reads_a_write_implies(
    granted: list[str], effective: set[str]
) -> None:
    assert rules.effective_scopes(granted) == frozenset(effective)


def test_a_read_scope_never_implies_a_write() -> None:
    for scope in rules.SCOPES:
        if scope.endswith(":read"):
            assert rules.effective_scopes([scope]) == {scope}


@given(st.sets(st.sampled_from(sorted(rules.SCOPES))))
def test_effective_scopes_contain_the_granted_ones_and_are_stable(granted: set[str]) -> None:
    effective = rules.effective_scopes(granted)
    assert granted <= effective <= rules.SCOPES.keys()
    assert rules.effective_scopes(effective) == effective
    # nothing beyond what some granted scope implies
    assert effective - granted <= {
        implied for scope in granted for implied in rules.IMPLIED.get(scope, frozenset())
    }


def test_unknown_scopes_lists_the_unknown_ones_sorted() -> None:
    assert rules.unknown_scopes(["programs:read", "zeta", "alpha", "alpha"]) == ["alpha", "zeta"]
    assert rules.unknown_scopes(rules.SCOPES) == []
    assert rules.unknown_scopes(["PROGRAMS:READ"]) == ["PROGRAMS:READ"]


def test_partner_tokens_may_have_only_read_scopes() -> None:
    assert {"programs:read", "partners:read", "reports:read"} == rules.PARTNER_TOKEN_SCOPES
    assert rules.SCOPES.keys() >= rules.PARTNER_TOKEN_SCOPES
    assert rules.effective_scopes(rules.PARTNER_TOKEN_SCOPES) == rules.PARTNER_TOKEN_SCOPES


# Passwords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "accepted"),
    [(0, False), (9, False), (10, True), (11, True), (256, True), (257, False), (10_000, False)],
)
def test_password_length_must_be_10_to_256_characters(length: int, accepted: bool) -> None:
    assert (rules.password_problem("p" * length) is None) is accepted


@given(st.text(max_size=300))
def test_password_problem_depends_on_length_in_characters_only(password: str) -> None:
    problem = rules.password_problem(password)
    assert (problem is None) is (10 <= len(password) <= 256)
    if problem is not None:
        assert "characters" in problem


def test_password_length_counts_characters_not_bytes() -> None:
    assert rules.password_problem("ü" * 10) is None  # 20 bytes in UTF-8, 10 characters


# E-mails --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ana@example.com", "ana@example.com"),
        ("Ana@Example.COM", "ana@example.com"),
        ("  ana@example.com\t\n", "ana@example.com"),
        ("ANA+Tag@Sub.Example.Org", "ana+tag@sub.example.org"),
    ],
)
def test_normalize_email_trims_and_lowercases(raw: str, normalized: str) -> None:
    assert rules.normalize_email(raw) == normalized


@given(st.emails())
def test_normalized_emails_are_still_emails_and_normalization_is_stable(email: str) -> None:
    normalized = rules.normalize_email(email)
    assert rules.normalize_email(normalized) == normalized
    assert rules.normalize_email(email.upper()) == rules.normalize_email(email.lower())
    if len(email.split("@")[0]) <= 64 and len(email) <= 254:
        assert rules.is_email(normalized)


@pytest.mark.parametrize(
    "address",
    [
        "ana@example.com",
        "a.b+c@sub.example.co.uk",
        "x@y.z",
        "l" * 64 + "@example.com",
        "a@" + "d" * 240 + ".com",
    ],
)
def test_is_email_accepts_plain_addresses(address: str) -> None:
    assert len(address) <= 254
    assert rules.is_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "ana",
        "ana@",
        "@example.com",
        "ana@example",
        "ana@@example.com",
        "an a@example.com",
        "ana@exa mple.com",
        "ana@example.com\n",
        "ana@example.com ",
        "\nana@example.com",
        "l" * 65 + "@example.com",
        "a@" + "d" * 249 + ".com",
    ],
)
def test_is_email_refuses_what_is_not_one_address(address: str) -> None:
    assert not rules.is_email(address)


@given(
    st.one_of(
        st.text(max_size=80),
        st.builds(lambda *parts: "".join(parts), SPACES, st.emails(), SPACES),
    )
)
def test_an_accepted_email_has_one_at_and_no_whitespace(text: str) -> None:
    if rules.is_email(text):
        assert text.count("@") == 1
        assert not any(char.isspace() for char in text)
        assert len(text) <= 254
