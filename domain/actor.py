"""Who is acting: recorded in the audit log beside every change."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Actor:
    label: str  # "admin:ana@example.com", "app:checkout (pgt_Ab12Cd)", ...
    user_id: int | None = None
    partner_id: int | None = None  # set when the actor acts for one partner

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(label=what)
