from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """One recorded change, written in the transaction of the change itself. Never edited."""

    id = fields.IntField(primary_key=True)
    at = fields.DatetimeField()
    actor = fields.CharField(max_length=300)
    action = fields.CharField(max_length=100)
    entity_type = fields.CharField(max_length=50, null=True)
    entity_pk = fields.IntField(null=True)
    reason = fields.TextField(null=True)
    before = fields.JSONField[dict[str, Any]](null=True)
    after = fields.JSONField[dict[str, Any]](null=True)

    class Meta:
        table = "audit_entries"
        indexes = (("entity_type", "entity_pk"),)
