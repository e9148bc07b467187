from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.programs.models import Program, Tier


class PartnerStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class EnrollmentStatus(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"


class Partner(Model):
    """An organization or person that refers customers. Its users log in."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=254, unique=True)  # stored lower-case
    status = fields.CharEnumField(PartnerStatus, max_length=16, default=PartnerStatus.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "partners"

    def snapshot(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "status": str(self.status)}


class Enrollment(Model):
    """One partner in one program, with its tier and referral code."""

    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "partnergraph.Program", related_name="enrollments", on_delete=fields.CASCADE
    )
    program_id: int
    partner: fields.ForeignKeyRelation[Partner] = fields.ForeignKeyField(
        "partnergraph.Partner", related_name="enrollments", on_delete=fields.CASCADE
    )
    partner_id: int
    tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "partnergraph.Tier", related_name="enrollments", null=True, on_delete=fields.SET_NULL
    )
    tier_id: int | None
    tier_pinned = fields.BooleanField(default=False)  # set by an admin: no automatic change
    # since when it is below its tier's qualification (demotion waits the program's grace)
    unqualified_since = fields.DatetimeField(null=True)
    status = fields.CharEnumField(EnrollmentStatus, max_length=16, default=EnrollmentStatus.ACTIVE)
    referral_code = fields.CharField(max_length=32)
    # lower-case copy: codes are unique case-insensitively, on every database
    code_key = fields.CharField(max_length=32, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "enrollments"
        unique_together = (("program", "partner"),)

    def snapshot(self) -> dict[str, Any]:
        return {
            "programId": self.program_id,
            "partnerId": self.partner_id,
            "tierId": self.tier_id,
            "status": str(self.status),
            "referralCode": self.referral_code,
        }
