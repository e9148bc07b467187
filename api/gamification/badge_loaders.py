"""Per-request loaders of points and badges, scoped by the policy: a partner reaches the badges
of its programs and its own enrollments' awards and points, nothing of another partner's.

Reached as `context.loaders.badges` (one instance per request, made on first use).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from api import policy
from api.policy import PartnerReach
from api.principal import Principal
from domain.gamification import badges, points
from domain.gamification.models import Badge, BadgeAward, PointRule

K = TypeVar("K")
V = TypeVar("V")
Reach = Callable[[], Awaitable[PartnerReach | None]]


class BadgeLoaders:
    def __init__(self, principal: Principal, reach: Reach) -> None:
        self.principal = principal
        self.reach = reach  # the principal's partner's reach; None: every partner's

    def _loader(
        self, type_name: str, load: Callable[[list[K]], Awaitable[list[V]]]
    ) -> DataLoader[K, V]:
        async def checked(keys: list[K]) -> list[V]:
            policy.ensure_read(self.principal, type_name)
            return await load(keys)

        return DataLoader(checked)

    @cached_property
    def badge_by_id(self) -> DataLoader[int, Badge | None]:
        """A partner's only if it belongs to one of its programs."""

        async def load(ids: list[int]) -> list[Badge | None]:
            rows, reach = await badges.badges_by_ids(ids), await self.reach()
            if reach is None:
                return rows
            return [
                row if row is not None and policy.can_see_badge(reach, row.program_id) else None
                for row in rows
            ]

        return self._loader("Badge", load)

    @cached_property
    def badges_by_program(self) -> DataLoader[int, list[Badge]]:
        """Each program's badges, oldest first (programs already known to be visible)."""
        return self._loader("Badge", badges.badges_by_programs)

    @cached_property
    def holders_by_badge(self) -> DataLoader[int, int]:
        async def load(ids: list[int]) -> list[int]:
            found = await badges.holders(ids)
            return [found[i] for i in ids]

        return self._loader("Badge", load)

    @cached_property
    def award_by_id(self) -> DataLoader[int, BadgeAward | None]:
        """A partner's only if it is one of its own enrollments'."""

        async def load(ids: list[int]) -> list[BadgeAward | None]:
            rows, reach = await badges.awards_by_ids(ids), await self.reach()
            if reach is None:
                return rows
            return [
                row if row is not None and policy.can_see_award(reach, row.enrollment_id) else None
                for row in rows
            ]

        return self._loader("BadgeAward", load)

    @cached_property
    def awards_by_enrollment(self) -> DataLoader[int, list[BadgeAward]]:
        """Enrollments already known to be the principal's (Enrollment.badges checks)."""
        return self._loader("BadgeAward", badges.awards_by_enrollments)

    @cached_property
    def points_by_enrollment(self) -> DataLoader[int, int]:
        """Enrollments already known to be the principal's (Enrollment.points checks)."""

        async def load(ids: list[int]) -> list[int]:
            found = await points.points_of(ids)
            return [found[i] for i in ids]

        return self._loader("Enrollment", load)

    @cached_property
    def point_rules_by_program(self) -> DataLoader[int, list[PointRule]]:
        return self._loader("Program", points.point_rules_by_programs)
