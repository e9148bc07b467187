"""The one authorization policy: may this principal see or change these things?

Every entry point asks here: `node(id:)`, list queries, nested fields (through the
partner-scoped loaders) and mutations. What a partner may not see is reported as not found.
"""

from __future__ import annotations

from api.errors import forbidden, unauthenticated
from api.principal import Principal, PrincipalKind

# The scope an APP token needs to read each type; partners read their own without scopes.
READ_SCOPE: dict[str, str | None] = {
    "Program": "programs:read",
    "Tier": "programs:read",
    "Partner": "partners:read",
    "Enrollment": "partners:read",
    "ApiToken": None,  # admins, and a partner user for its own
    "AuditEntry": None,  # admins only
    # a partner-made token reads its partner's only, like the partner (partner_scope)
    "Conversion": "reports:read",
    "AttributionCredit": "reports:read",
    "Touchpoint": "reports:read",
    "Customer": "reports:read",  # admins and admin-made tokens: never a partner's
    "ReferralLink": "partners:read",  # like its enrollment: a link belongs to a partner
    "Deal": "partners:read",
}
# A partner reads its own: conversions one of its enrollments is credited with, the credits
# and touchpoints of its enrollments (never another partner's credit on a shared conversion).
PARTNER_READABLE = frozenset(
    {
        "Program",
        "Tier",
        "Partner",
        "Enrollment",
        "ApiToken",
        "Conversion",
        "AttributionCredit",
        "Touchpoint",
        "ReferralLink",
        "Deal",
    }
)


def partner_scope(principal: Principal) -> int | None:
    """The partner whose data alone this principal may see; None means every partner's."""
    return principal.partner_id


def can_read(principal: Principal, type_name: str) -> bool:
    if principal.kind is PrincipalKind.ADMIN:
        return True
    if principal.kind is PrincipalKind.PARTNER:
        return type_name in PARTNER_READABLE
    if principal.kind is PrincipalKind.APP:
        scope = READ_SCOPE.get(type_name)
        return scope is not None and scope in principal.scopes
    return False


def ensure_read(principal: Principal, type_name: str) -> None:
    if principal.is_anonymous:
        raise unauthenticated()
    if not can_read(principal, type_name):
        raise forbidden(f"reading {type_name} objects")


def ensure_report(principal: Principal, type_name: str) -> None:
    """A program-wide listing of `type_name`, a report (Query.conversions): admins and APP
    tokens with its read scope (a partner-made token still sees only its partner's, by
    `partner_scope`); a partner user reads its own through its enrollments instead."""
    ensure_read(principal, type_name)
    if principal.kind is PrincipalKind.PARTNER:
        raise forbidden(f"listing a program's {type_name} objects (read your enrollments')")


def can_write(principal: Principal, scope: str) -> bool:
    """Admin-level changes: an admin, or an admin-made APP token with `scope`."""
    if principal.kind is PrincipalKind.ADMIN:
        return True
    return (
        principal.kind is PrincipalKind.APP
        and principal.partner_id is None
        and scope in principal.scopes
    )


def ensure_admin(principal: Principal) -> None:
    if principal.is_anonymous:
        raise unauthenticated()
    if not principal.is_admin:
        raise forbidden("admins only")


def ensure_write(principal: Principal, scope: str) -> None:
    if principal.is_anonymous:
        raise unauthenticated()
    if not can_write(principal, scope):
        raise forbidden(f"this needs an admin or an app token with {scope}")


def ensure_user(principal: Principal) -> None:
    """A logged-in person (admin or partner user), not an app."""
    if principal.is_anonymous:
        raise unauthenticated()
    if principal.kind not in (PrincipalKind.ADMIN, PrincipalKind.PARTNER):
        raise forbidden("only a logged-in user can manage API tokens")
