"""The one authorization policy: may this principal see or change these things?

Every entry point asks here: `node(id:)`, list queries, nested fields (through the
partner-scoped loaders) and mutations. What a partner may not see is reported as not found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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
    "Commission": "reports:read",  # a partner-made token: its partner's entries only
    "CommissionRule": "programs:read",  # a partner-made token: the rules that can apply to it
    "PayoutBatch": "reports:read",  # whole-program readers only (PROGRAM_WIDE)
    # a partner (or its token): a program it is enrolled in, as the program's visibility allows
    "LeaderboardEntry": "reports:read",
    "Badge": "programs:read",  # a partner: the badges of its programs
    "BadgeAward": "partners:read",  # a partner: its own enrollments' awards
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
        "Commission",
        "CommissionRule",
        "LeaderboardEntry",
        "Badge",
        "BadgeAward",
    }
)
# Types that hold several partners' data in one object (a payout batch lists every partner paid):
# read by admins and admin-made tokens only, never by a partner nor a token a partner made.
PROGRAM_WIDE = frozenset({"PayoutBatch"})
# Ledger entries that are a program's cost, not a partner's earnings: never shown to partners.
PROGRAM_COSTS = frozenset({"REFEREE_REWARD"})


def partner_scope(principal: Principal) -> int | None:
    """The partner whose data alone this principal may see; None means every partner's."""
    return principal.partner_id


def can_read(principal: Principal, type_name: str) -> bool:
    if principal.kind is PrincipalKind.ADMIN:
        return True
    if type_name in PROGRAM_WIDE and principal.partner_id is not None:
        return False
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


def owns(principal: Principal, partner_id: int) -> bool:
    """Whether the principal may see this partner's data (admins and admin-made tokens: all)."""
    scope = partner_scope(principal)
    return scope is None or scope == partner_id


@dataclass(frozen=True, slots=True)
class PartnerReach:
    """A partner's enrollments, their programs and tiers: what its commission data may name."""

    enrollment_ids: frozenset[int]
    program_ids: frozenset[int]
    tier_ids: frozenset[int]

    @classmethod
    def of(cls, enrollments: Iterable[tuple[int, int, int | None]]) -> PartnerReach:
        """From (enrollment, program, tier) triples of the partner's enrollments."""
        rows = list(enrollments)
        return cls(
            frozenset(e for e, _, _ in rows),
            frozenset(p for _, p, _ in rows),
            frozenset(t for _, _, t in rows if t is not None),
        )


def can_see_entry(reach: PartnerReach, enrollment_id: int, kind: str) -> bool:
    """A partner sees the ledger entries of its own enrollments, program costs excepted."""
    return enrollment_id in reach.enrollment_ids and kind not in PROGRAM_COSTS


def can_see_rule_scope(reach: PartnerReach, tier_id: int | None, enrollment_id: int | None) -> bool:
    """A rule (or a version of one) that can apply to the partner: for the whole program, for
    a tier one of its enrollments has, or for one of its enrollments; another enrollment's or
    another tier's terms are not its business."""
    if enrollment_id is not None:
        return enrollment_id in reach.enrollment_ids
    return tier_id is None or tier_id in reach.tier_ids


def can_see_rule(
    reach: PartnerReach, program_id: int, tier_id: int | None, enrollment_id: int | None
) -> bool:
    return program_id in reach.program_ids and can_see_rule_scope(reach, tier_id, enrollment_id)


def can_see_badge(reach: PartnerReach, program_id: int) -> bool:
    """A partner sees the badges of the programs it is enrolled in."""
    return program_id in reach.program_ids


def can_see_award(reach: PartnerReach, enrollment_id: int) -> bool:
    """A partner sees its own enrollments' awards, never another partner's."""
    return enrollment_id in reach.enrollment_ids
