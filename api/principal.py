"""Who is calling: the request's principal, derived from its credential."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.actor import Actor
from domain.identity.rules import SCOPES


class PrincipalKind(StrEnum):
    ANONYMOUS = "ANONYMOUS"
    ADMIN = "ADMIN"
    PARTNER = "PARTNER"
    APP = "APP"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    label: str = "anonymous"
    user_id: int | None = None
    partner_id: int | None = None  # a partner user, or an APP token made by a partner
    email: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)  # effective scopes of an APP
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind is PrincipalKind.ADMIN

    @property
    def is_anonymous(self) -> bool:
        return self.kind is PrincipalKind.ANONYMOUS

    def granted_scopes(self) -> list[str]:
        """What the principal may do, as scopes (an admin has them all)."""
        if self.kind is PrincipalKind.ADMIN:
            return sorted(SCOPES)
        return sorted(self.scopes)

    def actor(self) -> Actor:
        return Actor(label=self.label, user_id=self.user_id, partner_id=self.partner_id)


ANONYMOUS = Principal(kind=PrincipalKind.ANONYMOUS)
