"""GraphQL type of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry.scalars import JSON

from api.relay import Node, to_global_id
from domain.audit.models import AuditEntry as AuditRow


@strawberry.type(description="One recorded change: who, what, when, before and after.")
class AuditEntry(Node):
    at: datetime
    actor: str = strawberry.field(description="Who acted: 'admin:EMAIL', 'app:NAME (PREFIX)'.")
    action: str = strawberry.field(description="The mutation's name.")
    entity_id: strawberry.ID | None = strawberry.field(description="The changed object's ID.")
    reason: str | None
    before: JSON | None
    after: JSON | None

    @classmethod
    def from_model(cls, row: AuditRow) -> AuditEntry:
        entity = None
        if row.entity_type is not None and row.entity_pk is not None:
            entity = to_global_id(row.entity_type, row.entity_pk)
        return cls(
            id=to_global_id("AuditEntry", row.pk),
            at=row.at,
            actor=row.actor,
            action=row.action,
            entity_id=entity,
            reason=row.reason,
            before=cast(JSON, row.before),
            after=cast(JSON, row.after),
        )
