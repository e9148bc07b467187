"""Recording and reading the audit log."""

from __future__ import annotations

from typing import Any

from tortoise.models import Model

from domain.actor import Actor
from domain.audit.models import AuditEntry
from domain.clock import utcnow
from domain.pagination import Page, PageRequest, by_ids, paginate


async def record(
    actor: Actor,
    action: str,
    entity: Model | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry; call it inside the transaction of the change it describes."""
    return await AuditEntry.create(
        at=utcnow(),
        actor=actor.label,
        action=action,
        entity_type=type(entity).__name__ if entity is not None else None,
        entity_pk=entity.pk if entity is not None else None,
        reason=reason,
        before=before,
        after=after,
    )


async def list_entries(
    page: PageRequest, entity: tuple[str, int] | None = None
) -> Page[AuditEntry]:
    """Newest first; optionally only the entries about one entity (type name, primary key)."""
    queryset = AuditEntry.all()
    if entity is not None:
        queryset = queryset.filter(entity_type=entity[0], entity_pk=entity[1])
    return await paginate(queryset, PageRequest(page.limit, page.after, descending=True))


async def entries_by_ids(ids: list[int]) -> list[AuditEntry | None]:
    return await by_ids(AuditEntry, ids)
