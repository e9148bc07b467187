"""The click path's pure rules: bots, device classes, IP hashes, UTM values, destination URLs."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.tracking import click_rules as rules
from domain.tracking.click_rules import UaClass, Utm

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
SAFARI_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148 Safari/604.1"
ANDROID_PHONE = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari/537.36"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 Safari/537.36"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "Slackbot-LinkExpanding 1.0",
        "facebookexternalhit/1.1",
        "Twitterbot/1.0",
        "LinkedInBot/1.0",
        "WhatsApp/2.23.20.0",
        "Discordbot/2.0",
        "TelegramBot (like TwitterBot)",
        "curl/8.5.0",
        "Wget/1.21",
        "python-requests/2.32",
        "Go-http-client/1.1",
        "Mozilla/5.0 HeadlessChrome/126.0",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0)",
        "Baiduspider",
        "some-crawler/1.0",
        "",
        "   ",
    ],
)
def test_known_bots_and_scripts_are_bots(ua: str) -> None:
    assert rules.is_bot(ua)


@pytest.mark.parametrize("ua", [CHROME, SAFARI_MAC, FIREFOX_LINUX, IPHONE, ANDROID_PHONE, IPAD])
def test_browsers_are_not_bots(ua: str) -> None:
    assert not rules.is_bot(ua)


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME, UaClass.DESKTOP),
        (SAFARI_MAC, UaClass.DESKTOP),
        (FIREFOX_LINUX, UaClass.DESKTOP),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) Chrome/126.0", UaClass.DESKTOP),
        (IPHONE, UaClass.MOBILE),
        (ANDROID_PHONE, UaClass.MOBILE),
        ("Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1) Mobile Edge/15", UaClass.MOBILE),
        ("Opera/9.80 (J2ME/MIDP; Opera Mini/9.80) Presto/2.5", UaClass.MOBILE),
        (IPAD, UaClass.TABLET),
        (ANDROID_TABLET, UaClass.TABLET),
        ("Mozilla/5.0 (Linux; Android 9; KFTRWI) Silk/126.1 like Chrome", UaClass.TABLET),
        ("SmartTV/1.0", UaClass.OTHER),
        ("", UaClass.OTHER),
    ],
)
def test_user_agent_classes(ua: str, expected: UaClass) -> None:
    assert rules.classify_user_agent(ua) is expected


@given(st.text())
def test_every_user_agent_has_a_class(ua: str) -> None:
    assert rules.classify_user_agent(ua) in set(UaClass)


def test_ip_hash_is_keyed_stable_and_hides_the_ip() -> None:
    key = rules.ip_hash_key("k" * 40)
    digest = rules.hash_ip(key, "198.51.100.23")
    assert digest == rules.hash_ip(key, "198.51.100.23")
    assert len(digest) == 64
    assert "198.51.100.23" not in digest
    assert digest != rules.hash_ip(rules.ip_hash_key("j" * 40), "198.51.100.23")
    assert digest != rules.hash_ip(key, "198.51.100.24")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("A" * 22, True),
        ("abc_DEF-0123456789xyz", True),
        ("x" * 64, True),
        ("x" * 15, False),
        ("x" * 65, False),
        ("has space in it 1234", False),
        ("<script>alert(1)</script>", False),
        ("", False),
        (None, False),
    ],
)
def test_visitor_ids(value: str | None, valid: bool) -> None:
    assert rules.is_visitor_id(value) is valid


def test_incoming_utm_keeps_utm_parameters_only_clipped_last_wins() -> None:
    params = [("utm_source", "a"), ("ref", "x"), ("utm_source", "b"), ("utm_term", " t "),
              ("utm_medium", ""), ("utm_campaign", "c" * 300)]  # fmt: skip
    assert rules.incoming_utm(params) == {
        "utm_source": "b",
        "utm_term": "t",
        "utm_campaign": "c" * 200,
    }


def test_effective_utm_prefers_the_click_over_the_link() -> None:
    defaults = Utm("partner", "referral", "summer")
    assert rules.effective_utm(defaults, {"utm_medium": "email", "utm_term": "x"}) == Utm(
        "partner", "email", "summer"
    )
    assert rules.effective_utm(Utm(), {}) == Utm()


def test_referrer_is_clipped_to_512() -> None:
    assert (
        rules.clip_referrer("https://x.example/" + "a" * 600)
        == ("https://x.example/" + "a" * 600)[:512]
    )
    assert rules.clip_referrer(None) is None
    assert rules.clip_referrer("") is None


def test_destination_url_adds_the_click_and_utm() -> None:
    url = rules.destination_url(
        "https://acme.example/pricing?plan=pro&pg_click=forged#top",
        "CLICK123",
        Utm("partner", None, "summer"),
        {"utm_campaign": "bf", "utm_content": "hero"},
    )
    assert url == (
        "https://acme.example/pricing?plan=pro&utm_source=partner&utm_campaign=bf"
        "&utm_content=hero&pg_click=CLICK123#top"
    )


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_values = st.text(max_size=12)


@given(
    scheme=st.sampled_from(["https", "http"]),
    host=st.from_regex(r"[a-z]{1,10}(\.[a-z]{2,5}){1,2}(:[0-9]{2,5})?", fullmatch=True),
    path=st.from_regex(r"(/[A-Za-z0-9._~-]{0,8}){0,3}", fullmatch=True),
    params=st.lists(st.tuples(_names, _values), max_size=5),
    defaults=st.builds(Utm, st.none() | _values, st.none() | _values, st.none() | _values),
    incoming=st.dictionaries(_names.map(lambda n: "utm_" + n), _values.filter(bool), max_size=3),
    click_id=st.from_regex(r"[A-Za-z0-9_-]{22}", fullmatch=True),
)
def test_destination_url_invariants(
    scheme: str,
    host: str,
    path: str,
    params: list[tuple[str, str]],
    defaults: Utm,
    incoming: dict[str, str],
    click_id: str,
) -> None:
    base = f"{scheme}://{host}{path}" + (f"?{urlencode(params)}" if params else "")
    url = rules.destination_url(base, click_id, defaults, incoming)
    before, after = urlsplit(base), urlsplit(url)
    # never another site, never another page
    assert (after.scheme, after.netloc, after.path) == (before.scheme, before.netloc, before.path)
    pairs = parse_qsl(after.query, keep_blank_values=True)
    # the click id exactly once, last
    assert [v for k, v in pairs if k == rules.CLICK_PARAM] == [click_id]
    assert pairs[-1] == (rules.CLICK_PARAM, click_id)
    # the destination's other parameters stay, in order, unless a UTM value replaced them
    set_utm = set(rules.utm_params(defaults)) | set(incoming)
    kept = [(k, v) for k, v in params if k != rules.CLICK_PARAM and k not in set_utm]
    assert pairs[: len(kept)] == kept
    # the click's own UTM values win
    found = dict(pairs)
    for name, value in incoming.items():
        assert found[name] == value
