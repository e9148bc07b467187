"""Stored credits: what each enrollment earned of a conversion, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

from domain.programs.models import AttributionModelKind

if TYPE_CHECKING:
    from domain.partners.models import Enrollment
    from domain.tracking.models import Conversion


class AttributionCredit(Model):
    """One enrollment's credit for one conversion under the model in force.

    The share is exact: `points / total`. `touchpoints` explains it: a list of
    `[touchpoint id, points]` pairs in journey order, over the same `total`.
    """

    id = fields.BigIntField(primary_key=True)
    conversion: fields.ForeignKeyRelation[Conversion] = fields.ForeignKeyField(
        "partnergraph.Conversion", related_name="credits", on_delete=fields.CASCADE
    )
    conversion_id: int
    enrollment: fields.ForeignKeyRelation[Enrollment] = fields.ForeignKeyField(
        "partnergraph.Enrollment", related_name="credits", on_delete=fields.CASCADE
    )
    enrollment_id: int
    model = fields.CharEnumField(AttributionModelKind, max_length=32)
    # integers of any size, kept as decimal strings: exact on every database
    points = fields.CharField(max_length=80)
    total = fields.CharField(max_length=80)
    amount_minor = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    touchpoints = fields.JSONField[list[list[int | str]]]()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "attribution_credits"
        unique_together = (("conversion", "enrollment"),)
        indexes = (("enrollment_id", "id"),)
