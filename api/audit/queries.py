"""Reading the audit log (admins)."""

from __future__ import annotations

import strawberry

from api.audit.types import AuditEntry
from api.context import Info
from api.permissions import IsAdmin
from api.relay import Connection, connection, from_global_id, page_request
from domain.audit import services as audit


@strawberry.type
class AuditQuery:
    @strawberry.field(permission_classes=[IsAdmin], description="Every admin change, newest first.")
    async def audit_log(
        self,
        info: Info,
        entity_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[AuditEntry]:
        request = page_request(first, after)
        entity = from_global_id(entity_id) if entity_id is not None else None
        if entity_id is not None and entity is None:
            entity = ("", 0)  # not one of our IDs: nothing matches
        page = await audit.list_entries(request, entity)
        return connection(page, AuditEntry.from_model, after is not None)
