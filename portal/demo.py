"""`serve --demo`: a demo program with tiers and partners, and fresh credentials to try it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal

from domain.actor import Actor
from domain.identity import services as identity
from domain.identity.models import User, UserKind
from domain.identity.passwords import hash_password
from domain.partners import services as partners
from domain.partners.models import Partner
from domain.programs import services as programs
from domain.programs.models import AttributionModelKind, Program, RewardKind, TierMetric
from domain.programs.rules import AttributionSettings, RewardOffer, TierSpec

DEMO_PROGRAM = "Acme Cloud Partner Program"
ADMIN_EMAIL = "admin@demo.partnergraph.dev"
PARTNERS = [
    ("Northwind Consulting", "ana@northwind.example", "NORTHWIND"),
    ("Bluebird Media", "ben@bluebird.example", None),
    ("Cedar Reviews", "cleo@cedar.example", None),
]
TIERS = [
    ("Bronze", 1, None),
    ("Silver", 2, Decimal("5000")),
    ("Gold", 3, Decimal("25000")),
]


@dataclass(frozen=True)
class DemoCredentials:
    admin_email: str
    admin_password: str
    partner_email: str
    partner_password: str


async def _user_with_new_password(email: str, kind: UserKind, partner: Partner | None) -> str:
    """Demo passwords are new on every start: none is baked into the code."""
    password = secrets.token_urlsafe(12)
    user = await User.get_or_none(email=email)
    if user is None:
        await identity.create_user(email, password, kind, partner)
    else:
        user.password_hash = await hash_password(password)
        user.is_active = True
        await user.save(update_fields=["password_hash", "is_active"])
    return password


async def seed_demo() -> DemoCredentials:
    actor = Actor.system("demo")
    admin_password = await _user_with_new_password(ADMIN_EMAIL, UserKind.ADMIN, None)
    if not await Program.filter(name=DEMO_PROGRAM).exists():
        program = await programs.create_program(
            actor,
            programs.ProgramSpec(
                name=DEMO_PROGRAM,
                currency="EUR",
                destination_url="https://acme.example/pricing",
                attribution=AttributionSettings(
                    model=AttributionModelKind.POSITION_BASED,
                    lookback_days=30,
                    first_weight=Decimal("0.4"),
                    last_weight=Decimal("0.4"),
                ),
                hold_days=30,
                referee_reward=RewardOffer(RewardKind.PERCENT_DISCOUNT, Decimal("20")),
            ),
        )
        tiers = {}
        for name, rank, threshold in TIERS:
            tiers[rank] = await programs.create_tier(
                actor,
                program.id,
                TierSpec(
                    name=name,
                    rank=rank,
                    qualify_metric=TierMetric.REVENUE if threshold else None,
                    qualify_threshold=threshold,
                    qualify_period_days=90 if threshold else None,
                ),
            )
        for index, (name, email, code) in enumerate(PARTNERS):
            partner = await partners.create_partner(actor, name, email)
            tier = tiers[min(index + 1, 3)]
            await partners.enroll_partner(actor, program.id, partner.id, tier.id, code)
    first = await Partner.get(email=PARTNERS[0][1])
    partner_password = await _user_with_new_password(PARTNERS[0][1], UserKind.PARTNER, first)
    return DemoCredentials(ADMIN_EMAIL, admin_password, PARTNERS[0][1], partner_password)
