"""Commission ledgers built through the domain's own services, as the API would build them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.actor import Actor
from domain.commissions import services as commissions
from domain.commissions.specs import RuleSpec
from domain.partners import services as partners
from domain.partners.models import Enrollment
from domain.programs import services as programs
from domain.programs.models import Program
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity
from domain.tracking.models import ConversionKind

ADMIN = Actor("admin:test@example.com")


async def program(name: str = "Acme", hold_days: int = 30, percent: str = "10") -> Program:
    """A EUR program paying `percent` % of each credited SALE."""
    created = await programs.create_program(
        ADMIN,
        programs.ProgramSpec(
            name=name,
            currency="EUR",
            destination_url="https://acme.example/",
            hold_days=hold_days,
        ),
    )
    spec = RuleSpec(conversion_kind=ConversionKind.SALE, percentage=Decimal(percent))
    await commissions.create_rule(ADMIN, created.pk, spec)
    return created


async def enroll(program_id: int, name: str, email: str, code: str) -> Enrollment:
    partner = await partners.create_partner(ADMIN, name, email)
    return await partners.enroll_partner(ADMIN, program_id, partner.pk, referral_code=code)


async def sale(program_id: int, external_id: str, amount: str, code: str, at: datetime) -> None:
    """A SALE made with a partner's referral code: all its credit goes to that partner."""
    spec = ConversionSpec(
        external_id=external_id,
        kind=ConversionKind.SALE,
        amount=Decimal(amount),
        currency="EUR",
        identity=Identity(referral_code=code),
        occurred_at=at,
    )
    await ingest.record_conversion(ADMIN, program_id, spec)
