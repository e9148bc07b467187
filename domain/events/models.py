"""The event outbox: one row per thing that happened, in the transaction that made it happen.

Webhook delivery and live updates read it later; nothing that committed is without its event,
nothing rolled back has one. `partner_id` says whose event it is, so a partner only ever
receives its own.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Event(Model):
    """One event: its type (`badge.awarded`), when, and the object as the API shows it."""

    id = fields.BigIntField(primary_key=True)
    type = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    program_id = fields.IntField(null=True)
    partner_id = fields.IntField(null=True)
    enrollment_id = fields.IntField(null=True)
    data = fields.JSONField[dict[str, Any]]()

    class Meta:
        table = "events"
        indexes = (("type", "id"), ("partner_id", "id"))
