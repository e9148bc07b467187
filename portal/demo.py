"""`serve --demo`: a demo program with tiers and partners, and fresh credentials to try it."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from domain.actor import Actor
from domain.attribution import services as attribution
from domain.clock import utcnow
from domain.commissions import services as commissions
from domain.commissions.models import Commission, CommissionKind, CommissionStatus
from domain.commissions.specs import RuleSpec
from domain.gamification import badges, points
from domain.gamification.criteria import BadgeSpec, PointTerms
from domain.gamification.models import BadgeMetric
from domain.identity import services as identity
from domain.identity.models import User, UserKind
from domain.identity.passwords import hash_password
from domain.partners import services as partners
from domain.partners.models import Enrollment, Partner
from domain.programs import services as programs
from domain.programs.models import (
    AttributionModelKind,
    FunnelRole,
    Program,
    RewardKind,
    Tier,
    TierMetric,
)
from domain.programs.rules import AttributionSettings, RewardOffer, TierSpec
from domain.tracking import deals, ingest, links
from domain.tracking.models import (
    Conversion,
    ConversionKind,
    Customer,
    Touchpoint,
    TouchpointKind,
)

DEMO_PROGRAM = "Acme Cloud Partner Program"
ADMIN_EMAIL = "admin@demo.partnergraph.dev"
PARTNERS = [
    ("Northwind Consulting", "ana@northwind.example", "NORTHWIND"),
    ("Bluebird Media", "ben@bluebird.example", None),
    ("Cedar Reviews", "cleo@cedar.example", None),
]
TIERS = [
    ("Bronze", 1, None),
    ("Silver", 2, Decimal("300")),  # EUR of credited revenue over 90 days: partners climb
    ("Gold", 3, Decimal("3000")),
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
        enrollments = []
        for name, email, code in PARTNERS:
            partner = await partners.create_partner(actor, name, email)
            tier = tiers[1]  # everyone starts in Bronze and is promoted by its sales
            enrollments.append(
                await partners.enroll_partner(actor, program.id, partner.id, tier.id, code)
            )
        await _seed_journeys(program, enrollments)
        await _seed_commission_rules(actor, program, tiers)
        await _seed_points_and_badges(actor, program)
        await attribution.recompute(actor, program.id, None, None)
        await _seed_payouts_and_refunds(actor, program)
        await _seed_links_and_deals(actor, enrollments)
    first = await Partner.get(email=PARTNERS[0][1])
    partner_password = await _user_with_new_password(PARTNERS[0][1], UserKind.PARTNER, first)
    return DemoCredentials(ADMIN_EMAIL, admin_password, PARTNERS[0][1], partner_password)


# (kind, role) of the touchpoints the demo's journeys are made of
STEPS = [
    (TouchpointKind.CLICK, FunnelRole.SOURCE),
    (TouchpointKind.WEBINAR, FunnelRole.INFLUENCE),
    (TouchpointKind.LEAD, FunnelRole.SOURCE),
    (TouchpointKind.MEETING, FunnelRole.INFLUENCE),
    (TouchpointKind.DEAL, FunnelRole.CLOSE),
]


async def _seed_journeys(program: Program, enrollments: list[Enrollment]) -> None:
    """Forty customers' journeys over the last two months (the same every time): most end in
    a sale, a few renew, some never convert, so previews and the data-driven models have
    something to show. Northwind tends to find customers, Cedar to close them."""
    rng = random.Random(20261123)
    now = utcnow().replace(microsecond=0)
    finder, middle, closer = enrollments
    for n in range(40):
        customer = await Customer.create(program_id=program.pk, external_id=f"demo-{n:03}")
        sale_at = now - timedelta(days=rng.uniform(1, 50))
        length = rng.randint(1, 4)
        for step in range(length):
            kind, role = STEPS[rng.randrange(len(STEPS))]
            pool = [finder, finder, middle] if step == 0 else [middle, closer, closer]
            await Touchpoint.create(
                program_id=program.pk,
                enrollment_id=rng.choice(pool).pk,
                kind=kind,
                role=FunnelRole.CLOSE if step == length - 1 and step else role,
                occurred_at=sale_at - timedelta(days=(length - step) * rng.uniform(0.5, 5)),
                customer_id=customer.pk,
            )
        if rng.random() < 0.25:
            continue  # never bought: a non-converting journey
        amount = rng.choice([4_900, 9_900, 19_900, 49_900])
        await Conversion.create(
            program_id=program.pk,
            external_id=f"demo-sale-{n:03}",
            kind=ConversionKind.SALE,
            amount_minor=amount,
            currency=program.currency,
            occurred_at=sale_at,
            customer_id=customer.pk,
        )
        if sale_at < now - timedelta(days=31) and rng.random() < 0.5:
            await Conversion.create(
                program_id=program.pk,
                external_id=f"demo-renewal-{n:03}",
                kind=ConversionKind.RENEWAL,
                amount_minor=amount,
                currency=program.currency,
                occurred_at=sale_at + timedelta(days=30),
                customer_id=customer.pk,
            )


async def _seed_commission_rules(actor: Actor, program: Program, tiers: dict[int, Tier]) -> None:
    """20 % of every credited sale, 30 % for Gold; renewals earn 10 % for twelve months after
    the first sale, halving every 180 days since the referral; a flat 5 EUR per lead."""
    rules = [
        RuleSpec(conversion_kind=ConversionKind.SALE, name="Sales", percentage=Decimal("20")),
        RuleSpec(
            conversion_kind=ConversionKind.SALE,
            name="Gold sales",
            percentage=Decimal("30"),
            tier_id=tiers[3].pk,
        ),
        RuleSpec(
            conversion_kind=ConversionKind.RENEWAL,
            name="Renewals, first year",
            percentage=Decimal("10"),
            recurring_months=12,
            half_life_days=180.0,
        ),
        RuleSpec(conversion_kind=ConversionKind.LEAD, name="Leads", flat_amount=Decimal("5")),
    ]
    for spec in rules:
        await commissions.create_rule(actor, program.pk, spec)


async def _seed_points_and_badges(actor: Actor, program: Program) -> None:
    """10 points per sale and one per euro, 3 per renewal; a first-sale badge, a milestone
    every five sales (with a 10 EUR bonus) and a 1,000-point badge."""
    await points.set_point_rules(
        actor,
        program.pk,
        [
            PointTerms(ConversionKind.SALE, per_conversion=10, per_unit=1),
            PointTerms(ConversionKind.RENEWAL, per_conversion=3),
        ],
    )
    for spec in (
        BadgeSpec(code="first-sale", name="First sale", metric=BadgeMetric.CONVERSIONS,
                  threshold=Decimal(1), points=25, description="Your first credited sale"),
        BadgeSpec(code="five-sales", name="Every five sales", metric=BadgeMetric.CONVERSIONS,
                  threshold=Decimal(5), repeating=True, bonus_amount=Decimal("10")),
        BadgeSpec(code="points-1000", name="1,000 points", metric=BadgeMetric.POINTS,
                  threshold=Decimal(1000)),
    ):  # fmt: skip
        await badges.create_badge(actor, program.pk, spec)


async def _seed_payouts_and_refunds(actor: Actor, program: Program) -> None:
    """What is past the hold is approved and paid in one batch; then one paid sale is refunded
    in part (its reversal waits for the next payout) and one unpaid sale in full."""
    await commissions.approve(actor, program.pk)
    batch = await commissions.create_payout_batch(actor, program.pk, 5_000)
    if batch is not None:
        await commissions.mark_payout_paid(actor, batch.pk, "DEMO-SEPA-0001")
    sales = Commission.filter(program_id=program.pk, kind=CommissionKind.COMMISSION).order_by("id")
    paid = await sales.filter(status=CommissionStatus.PAID).first()
    pending = await sales.filter(status=CommissionStatus.PENDING).first()
    for entry, amount in ((paid, Decimal("10.00")), (pending, None)):
        if entry is not None and entry.conversion_id is not None:
            conversion = await Conversion.get(id=entry.conversion_id)
            await ingest.refund_conversion(actor, program.pk, conversion.external_id, amount)


async def _seed_links_and_deals(actor: Actor, enrollments: list[Enrollment]) -> None:
    """A referral link per partner (Northwind's with a vanity code and UTM defaults), an
    approved deal registration and a pending one."""
    northwind, bluebird, cedar = enrollments
    await links.create_link(
        actor,
        northwind.pk,
        links.LinkSpec(code="ACME-SPRING", utm_source="northwind", utm_medium="blog"),
    )
    for enrollment in (bluebird, cedar):
        await links.create_link(actor, enrollment.pk, links.LinkSpec())
    approved = await deals.register_deal(
        actor, cedar.pk, "Globex Corporation", "buyer@globex.example", Decimal("12000")
    )
    await deals.approve_deal(actor, approved.pk)
    await deals.register_deal(actor, bluebird.pk, "Initech Ltd", "it@initech.example")
