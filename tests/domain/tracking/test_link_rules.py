"""Link codes and destinations: the pure rules, with the open-redirect attempts spelled out."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.tracking.link_rules import (
    ALPHABET,
    CODE_MAX,
    CODE_MIN,
    GENERATED_LENGTH,
    code_key,
    code_problem,
    destination_problem,
    generate_code,
    host_allowed,
    host_problem,
    url_host,
    utm_problem,
)

PROGRAM = "https://acme.example/shop"
ALLOWED = ["partners.example.org"]
CODE_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


@pytest.mark.parametrize("code", ["abc", "Spring-Sale_2026", "x" * 64, "---", "A1_"])
def test_good_vanity_codes_pass(code: str) -> None:
    assert code_problem(code) is None


@pytest.mark.parametrize("code", ["ab", "x" * 65, "sp ring", "añna", "a/b", "a.b", "a%2f", ""])
def test_bad_vanity_codes_are_refused(code: str) -> None:
    assert code_problem(code) is not None


@given(st.text(alphabet=CODE_CHARS, min_size=CODE_MIN, max_size=CODE_MAX))
def test_every_code_of_the_allowed_characters_and_length_passes(code: str) -> None:
    assert code_problem(code) is None


@given(st.text(max_size=80))
def test_a_passing_code_is_3_to_64_safe_characters(code: str) -> None:
    if code_problem(code) is None:
        assert CODE_MIN <= len(code) <= CODE_MAX
        assert set(code) <= set(CODE_CHARS)


@given(st.text(alphabet=CODE_CHARS, min_size=CODE_MIN, max_size=CODE_MAX))
def test_code_keys_ignore_case(code: str) -> None:
    assert code_key(code) == code_key(code.upper()) == code_key(code.lower())


def test_generated_codes_are_valid_and_have_no_look_alikes() -> None:
    codes = {generate_code() for _ in range(500)}
    assert len(codes) == 500  # ~40 bits each: a repeat here would mean a broken generator
    for code in codes:
        assert len(code) == GENERATED_LENGTH
        assert code_problem(code) is None
        assert set(code) <= set(ALPHABET)
        assert not set(code) & set("01ILO")


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.example/",
        "https://acme.example",
        "http://acme.example/pricing?plan=pro#top",
        "https://ACME.example/Upper",
        "https://www.acme.example/",
        "https://eu.shop.acme.example:8443/x",
        "https://partners.example.org/landing",
    ],
)
def test_destinations_on_the_program_host_its_subdomains_or_allowed_domains_pass(
    url: str,
) -> None:
    assert destination_problem(url, PROGRAM, ALLOWED) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.com/",
        "https://acme.example.evil.com/",  # the program's host as a prefix
        "https://evilacme.example/",  # a suffix that is not a subdomain
        "https://www.partners.example.org/",  # an allowed domain is exact
        "//evil.com",  # scheme-relative
        "/relative/path",
        "javascript:alert(1)",
        "JaVaScRiPt://acme.example/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://acme.example/",
        "https:acme.example",  # no authority
        "https:///evil.com",
        "https://user:pass@acme.example/",  # credentials
        "https://acme.example@evil.com/",  # credentials naming the program
        "https://evil.com\\.acme.example/",  # browsers read '\' as '/': host evil.com
        "https://evil.com\\@acme.example/",
        "https://acme.example /",
        "https://acme.example/\ttab",
        "https://acme.example/\nnewline",
        "https://evil%2ecom/",
        "https://acme.example:99999/",  # a bad port
        "https://acme.example:port/",
        "https://ａcme.example/",  # full-width letter
        "https://acme.example./",  # a trailing dot
        "https://[::1]/",
        "https://acme.example/" + "x" * 2048,
        "",
    ],
)
def test_destinations_elsewhere_or_malformed_are_refused(url: str) -> None:
    assert destination_problem(url, PROGRAM, ALLOWED) is not None


def test_no_allowed_domains_means_the_program_host_only() -> None:
    assert destination_problem("https://partners.example.org/", PROGRAM, None) is not None
    assert destination_problem("https://acme.example/", PROGRAM, None) is None


def test_an_ip_destination_has_no_subdomains() -> None:
    assert not host_allowed("1.10.0.0.1", "10.0.0.1", [])
    assert host_allowed("10.0.0.1", "10.0.0.1", [])


LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
HOST = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
URL = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "HTTPS", "ftp", "javascript", ""]),
        HOST,
        st.text(max_size=30),
    ),
    st.builds(
        lambda prefix, rest: f"https://{prefix}acme.example{rest}",
        st.text(max_size=10),
        st.text(max_size=10),
    ),
)


@given(URL)
def test_an_accepted_destination_is_http_on_the_program_host_or_an_allowed_domain(
    url: str,
) -> None:
    """The invariant: whatever the text, an accepted destination parses to an http(s) URL
    whose host is acme.example, one of its subdomains, or an allowed domain."""
    if destination_problem(url, PROGRAM, ALLOWED) is not None:
        return
    host = url_host(url)
    assert host is not None
    assert url.lower().startswith(("http://", "https://"))
    assert host in ALLOWED or host == "acme.example" or host.endswith(".acme.example")
    assert "@" not in url.split("/")[2]
    assert all(0x21 <= ord(c) <= 0x7E and c != "\\" for c in url)


@given(HOST, st.sampled_from(["", "/", "/path?q=1", ":8080/x"]))
def test_every_subdomain_of_the_program_host_is_accepted(host: str, rest: str) -> None:
    assert destination_problem(f"https://{host}.acme.example{rest}", PROGRAM, None) is None


@given(HOST.filter(lambda h: h != "acme.example" and not h.endswith(".acme.example")))
def test_other_hosts_are_refused_unless_allowed(host: str) -> None:
    url = f"https://{host}/"
    assert destination_problem(url, PROGRAM, None) is not None
    assert destination_problem(url, PROGRAM, [host]) is None


@pytest.mark.parametrize("host", ["shop.example.com", "a", "x-y.example", "127.0.0.1"])
def test_good_allowed_hosts_pass(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize(
    "host", ["", "https://shop.example", "shop.example/", "-x.example", "x-.example", "a..b",
             "UPPER.example", "sp ace.example", "x" * 64 + ".example", "*.example.com"],
)  # fmt: skip
def test_bad_allowed_hosts_are_refused(host: str) -> None:
    assert host_problem(host) is not None


@pytest.mark.parametrize(("value", "ok"), [("newsletter", True), ("", False), ("x" * 201, False),
                                           ("a\nb", False), ("x" * 200, True)])  # fmt: skip
def test_utm_defaults_are_1_to_200_printable_characters(value: str, ok: bool) -> None:
    assert (utm_problem(value) is None) is ok
