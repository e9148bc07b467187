"""Pure rules for partners: referral codes and partner details."""

from __future__ import annotations

import re
import secrets

from domain.errors import ErrorCollector

CODE_MIN, CODE_MAX = 3, 32
_CODE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?$")
# No 0/O or 1/I/L: generated codes are read aloud and typed from paper.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
# Codes that would read as the service's own words.
RESERVED = frozenset({"admin", "api", "auth", "graphql", "healthz", "login", "r", "static"})


def code_problem(code: str) -> str | None:
    """Why a vanity referral code is refused, or None when it is fine."""
    if not CODE_MIN <= len(code) <= CODE_MAX:
        return f"use {CODE_MIN} to {CODE_MAX} characters"
    if not _CODE_RE.match(code):
        return "use letters, digits, '-' and '_', starting and ending with a letter or digit"
    if code.lower() in RESERVED:
        return "this code is reserved"
    return None


def code_key(code: str) -> str:
    """Codes are unique case-insensitively: `Anna10` and `anna10` are one code."""
    return code.lower()


def generate_code(name: str, length: int = 6) -> str:
    """A human-friendly code: up to six letters of the name, '-', random characters."""
    stem = re.sub(r"[^A-Za-z0-9]", "", name).upper()[:6]
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(length))
    return f"{stem}-{suffix}" if stem else suffix


def ensure_partner_fields(errors: ErrorCollector, name: str | None, email_ok: bool | None) -> None:
    if name is not None and not 1 <= len(name.strip()) <= 200:
        errors.invalid(["name"], "must be 1 to 200 characters")
    if email_ok is False:
        errors.invalid(["email"], "not an e-mail address")
