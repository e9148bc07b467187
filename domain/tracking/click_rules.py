"""Pure rules of the click path `/r/{code}`: who is a bot, what kind of device, the salted IP
hash, the UTM parameters and the destination URL. No I/O, no clock, no randomness here."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CLICK_PARAM = "pg_click"
VISITOR_COOKIE = "pg_vid"
UTM_MAX = 200  # the Touchpoint columns' size
REFERRER_MAX = 512

# Substrings (lower-case) of user agents that are not people clicking: they are redirected (a
# link preview still works) but never counted. Unfurlers of chat apps and social networks fetch
# every shared link; command-line tools and HTTP libraries (curl, wget, python-requests...) are
# scripts, not visitors, so they do not count either; headless browsers are automation. The
# generic "bot", "spider", "crawl" catch the long tail (Googlebot, bingbot, AhrefsBot, ...).
BOT_MARKERS = (
    "bot",
    "spider",
    "crawl",
    "slurp",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "slack",
    "skypeuripreview",
    "embedly",
    "quora link preview",
    "bitlypreview",
    "vkshare",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
    "lighthouse",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "httpx",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "preview",
    "monitor",
)

_VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
# One scan of the user agent for every marker at once (an `any` over 31 substrings cost more).
_BOT = re.compile("|".join(re.escape(marker) for marker in BOT_MARKERS))


class UaClass(StrEnum):
    DESKTOP = "DESKTOP"
    MOBILE = "MOBILE"
    TABLET = "TABLET"
    OTHER = "OTHER"


@dataclass(frozen=True, slots=True)
class Utm:
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


def is_bot(user_agent: str) -> bool:
    """Known bots, crawlers, link unfurlers, scripts and headless browsers; an empty user agent
    too (every browser sends one)."""
    ua = user_agent.strip().lower()
    return not ua or _BOT.search(ua) is not None


def classify_user_agent(user_agent: str) -> UaClass:
    """The device class reports group clicks by. Tablets first: iPads and Android tablets also
    say "mobile"-like things (an Android tablet is Android without "Mobile")."""
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or "kindle" in ua or "silk/" in ua or "playbook" in ua:
        return UaClass.TABLET
    if "android" in ua:
        return UaClass.MOBILE if "mobile" in ua else UaClass.TABLET
    if any(m in ua for m in ("mobi", "iphone", "ipod", "windows phone", "opera mini")):
        return UaClass.MOBILE
    if any(m in ua for m in ("windows nt", "macintosh", "mac os x", "x11", "linux", "cros")):
        return UaClass.DESKTOP
    return UaClass.OTHER


def ip_hash_key(secret: str) -> bytes:
    """A key for hashing IPs only, derived from the service's secret: without the secret the
    hashes cannot be reversed by hashing the (small) IPv4 space."""
    return hmac.new(secret.encode(), b"partnergraph/click-ip/v1", hashlib.sha256).digest()


def hash_ip(key: bytes, ip: str) -> str:
    """HMAC-SHA256 of the client IP, hex: the same visitor IP gives the same hash (fraud
    checks), the raw IP is never stored."""
    return hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()


def ip_hasher(key: bytes) -> Callable[[str], str]:
    """`hash_ip` with the key fixed, through the one-shot C HMAC (no Python HMAC object per IP:
    the click path hashes one IP per click)."""

    def hash_one(ip: str) -> str:
        return hmac.digest(key, ip.encode(), "sha256").hex()

    return hash_one


def is_visitor_id(value: str | None) -> bool:
    """A visitor cookie we could have set (URL-safe, 16-64 characters): anything else is
    replaced by a new id."""
    return value is not None and _VISITOR_ID.fullmatch(value) is not None


def _clip(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:limit] or None


def incoming_utm(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The `utm_*` parameters of the click's own query (the last value of each wins), clipped."""
    found: dict[str, str] = {}
    for name, value in params:
        if name.startswith("utm_") and len(name) <= 64:
            clipped = _clip(value, UTM_MAX)
            if clipped is not None:
                found[name] = clipped
    return found


def effective_utm(defaults: Utm, incoming: dict[str, str]) -> Utm:
    """What the touchpoint records: the click's own UTM values override the link's defaults."""
    return Utm(
        source=incoming.get("utm_source", defaults.source),
        medium=incoming.get("utm_medium", defaults.medium),
        campaign=incoming.get("utm_campaign", defaults.campaign),
    )


def clip_referrer(referrer: str | None) -> str | None:
    return _clip(referrer, REFERRER_MAX)


def utm_params(utm: Utm) -> dict[str, str]:
    """The query parameters of the UTM values that are set."""
    values = {"utm_source": utm.source, "utm_medium": utm.medium, "utm_campaign": utm.campaign}
    return {name: value for name, value in values.items() if value}


def destination_url(base: str, click_id: str, defaults: Utm, incoming: dict[str, str]) -> str:
    """The redirect target: `base` with its scheme, host, path, fragment and other parameters
    unchanged, the UTM values set (the click's own over the link's defaults over the
    destination's), and `pg_click` exactly once."""
    parts = urlsplit(base)
    utm = {**utm_params(defaults), **incoming}
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k != CLICK_PARAM and k not in utm
    ]
    query = urlencode([*kept, *utm.items(), (CLICK_PARAM, click_id)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
