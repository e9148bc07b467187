"""Pure rules of referral links: what a code looks like and where a link may lead.

A link redirects whoever clicks it, so its destination must stay on the program's own site
(its destination's host or a subdomain of it) or on a host the admin allowed: a link that
could lead anywhere is an open redirect, a phishing tool carrying the merchant's name.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

CODE_MIN, CODE_MAX = 3, 64
GENERATED_LENGTH = 8
MAX_URL_LENGTH = 2048
MAX_UTM_LENGTH = 200
_CODE_RE = re.compile(r"[A-Za-z0-9_-]+")
# No 0/O or 1/I/L: generated codes are read aloud and typed from paper.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# One DNS label: letters, digits and inner hyphens, 1 to 63 characters (ASCII: IDNs in
# punycode), so a host can only be compared after it parsed the way browsers parse it.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_IPV4_RE = re.compile(r"[0-9.]+")
MAX_HOST_LENGTH = 253


def code_problem(code: str) -> str | None:
    """Why a vanity link code is refused, or None when it is fine: 3 to 64 of [A-Za-z0-9_-]."""
    if not CODE_MIN <= len(code) <= CODE_MAX:
        return f"use {CODE_MIN} to {CODE_MAX} characters"
    if not _CODE_RE.fullmatch(code):
        return "use only letters, digits, '-' and '_'"
    return None


def code_key(code: str) -> str:
    """Link codes are unique case-insensitively: `Spring` and `spring` are one code."""
    return code.lower()


def generate_code(length: int = GENERATED_LENGTH) -> str:
    """A random code that reads without look-alike characters (31 symbols: ~40 bits at 8)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def host_problem(host: str) -> str | None:
    """Why `host` is not a plain lower-case host name, or None (for allowed domains)."""
    if len(host) > MAX_HOST_LENGTH or not _HOST_RE.fullmatch(host):
        return "must be a host name such as shop.example.com (letters, digits, '-' and '.')"
    return None


def normalize_host(host: str) -> str:
    return host.strip().lower()


def _is_ip(host: str) -> bool:
    return bool(_IPV4_RE.fullmatch(host))


def url_host(url: str) -> str | None:
    """The lower-case host of a well-formed absolute http(s) URL, or None.

    Well-formed means what a browser and Python agree on: printable ASCII only (no spaces,
    no control characters, no backslash, which browsers read as '/'), no credentials, a plain
    host name, a valid port.
    """
    if not url or len(url) > MAX_URL_LENGTH:
        return None
    if any(not 0x21 <= ord(c) <= 0x7E or c == "\\" for c in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not url.lower().startswith(
        f"{parts.scheme.lower()}://"
    ):
        return None
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return None
    host = parts.hostname
    if host is None or host_problem(host) is not None:
        return None
    return host


def host_allowed(host: str, program_host: str, allowed_domains: Iterable[str]) -> bool:
    """The program's own host or one of its subdomains, or exactly an allowed domain."""
    if host == program_host or host in set(allowed_domains):
        return True
    return not _is_ip(program_host) and host.endswith("." + program_host)


def destination_problem(
    url: str, program_destination: str, allowed_domains: Iterable[str] | None
) -> str | None:
    """Why a link may not lead to `url`, or None: no open redirects."""
    host = url_host(url)
    if host is None:
        return (
            "must be an absolute http(s) URL of printable ASCII, without spaces, "
            "backslashes or credentials"
        )
    program_host = url_host(program_destination) or ""
    if not host_allowed(host, program_host, allowed_domains or ()):
        return (
            f"must lead to {program_host or 'the program’s site'} (or a subdomain) "
            "or a domain the program allows"
        )
    return None


def utm_problem(value: str) -> str | None:
    """Why a UTM default is refused, or None: 1 to 200 printable characters."""
    if not 1 <= len(value) <= MAX_UTM_LENGTH:
        return f"use 1 to {MAX_UTM_LENGTH} characters"
    if not value.isprintable():
        return "use printable characters only"
    return None
