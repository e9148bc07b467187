"""Use cases of partners and enrollments."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.identity import rules as identity_rules
from domain.identity.models import User, UserKind
from domain.identity.services import create_user, ensure_password
from domain.pagination import Page, PageRequest, by_ids, in_list, paginate, select_where
from domain.partners import rules
from domain.partners.models import Enrollment, EnrollmentStatus, Partner, PartnerStatus
from domain.programs.models import Program, Tier
from domain.tracking.models import ReferralLink

CODE_ATTEMPTS = 8


async def create_partner(
    actor: Actor, name: str, email: str, password: str | None = None
) -> Partner:
    """A partner organization; with a password, also its first user (same e-mail)."""
    errors = ErrorCollector()
    address = identity_rules.normalize_email(email)
    rules.ensure_partner_fields(errors, name, identity_rules.is_email(address))
    if password is not None:
        ensure_password(errors, ["password"], password)
    errors.raise_if_any()
    async with in_transaction():
        if await Partner.filter(email=address).exists():
            raise DomainError(ErrorCode.CONFLICT, ["email"], "a partner with this e-mail exists")
        if password is not None and await User.filter(email=address).exists():
            raise DomainError(ErrorCode.CONFLICT, ["email"], "a user with this e-mail exists")
        partner = await Partner.create(name=name.strip(), email=address)
        if password is not None:
            await create_user(address, password, UserKind.PARTNER, partner)
        await audit.record(actor, "createPartner", partner, after=partner.snapshot())
    return partner


async def update_partner(
    actor: Actor,
    partner_id: int,
    name: str | None = None,
    email: str | None = None,
    status: PartnerStatus | None = None,
) -> Partner:
    errors = ErrorCollector()
    address = identity_rules.normalize_email(email) if email is not None else None
    rules.ensure_partner_fields(
        errors, name, None if address is None else identity_rules.is_email(address)
    )
    errors.raise_if_any()
    async with in_transaction():
        partner = await Partner.filter(id=partner_id).select_for_update().first()
        if partner is None:
            raise not_found(["id"], "partner")
        before = partner.snapshot()
        if address is not None and address != partner.email:
            if await Partner.filter(email=address).exists():
                raise DomainError(
                    ErrorCode.CONFLICT, ["email"], "a partner with this e-mail exists"
                )
            partner.email = address
        if name is not None:
            partner.name = name.strip()
        if status is not None:
            partner.status = status
        await partner.save()
        await audit.record(actor, "updatePartner", partner, before, partner.snapshot())
    return partner


async def list_partners(
    partner_id: int | None, page: PageRequest, program_id: int | None, search: str | None
) -> Page[Partner]:
    """Partners (or only the viewer's own), optionally of one program, searched by name/e-mail."""
    queryset = Partner.all() if partner_id is None else Partner.filter(id=partner_id)
    if program_id is not None:
        queryset = queryset.filter(enrollments__program_id=program_id)
    if search and search.strip():
        term = search.strip()
        queryset = queryset.filter(Q(name__icontains=term) | Q(email__icontains=term.lower()))
    return await paginate(queryset.distinct(), page)


async def partners_by_ids(ids: list[int], partner_id: int | None = None) -> list[Partner | None]:
    if partner_id is None:
        return await by_ids(Partner, ids)
    return await by_ids(Partner, ids, '"id" = {}', [partner_id])


# Enrollments --------------------------------------------------------------------------------


async def enroll_partner(
    actor: Actor,
    program_id: int,
    partner_id: int,
    tier_id: int | None = None,
    referral_code: str | None = None,
) -> Enrollment:
    """Enroll a partner in a program with a unique, case-insensitive referral code."""
    if referral_code is not None:
        problem = rules.code_problem(referral_code)
        if problem:
            raise DomainError(ErrorCode.INVALID, ["referralCode"], problem)
    async with in_transaction():
        program = await Program.get_or_none(id=program_id)
        if program is None:
            raise not_found(["programId"], "program")
        partner = await Partner.get_or_none(id=partner_id)
        if partner is None:
            raise not_found(["partnerId"], "partner")
        if (
            tier_id is not None
            and not await Tier.filter(id=tier_id, program_id=program_id).exists()
        ):
            raise not_found(["tierId"], "tier of this program")
        if await Enrollment.filter(program_id=program_id, partner_id=partner_id).exists():
            raise DomainError(ErrorCode.CONFLICT, ["partnerId"], "already enrolled in this program")
        enrollment = await _create_with_code(program, partner, tier_id, referral_code)
        await audit.record(actor, "enrollPartner", enrollment, after=enrollment.snapshot())
    return enrollment


async def _create_with_code(
    program: Program, partner: Partner, tier_id: int | None, vanity: str | None
) -> Enrollment:
    attempts = 1 if vanity is not None else CODE_ATTEMPTS
    for _ in range(attempts):
        code = vanity if vanity is not None else rules.generate_code(partner.name)
        key = rules.code_key(code)
        # `/r/{code}` resolves links and referral codes alike: one namespace for both
        if (
            await Enrollment.filter(code_key=key).exists()
            or await ReferralLink.filter(code_key=key).exists()
        ):
            continue
        try:
            async with in_transaction():
                return await Enrollment.create(
                    program=program,
                    partner=partner,
                    tier_id=tier_id,
                    referral_code=code,
                    code_key=rules.code_key(code),
                )
        except IntegrityError:
            continue
    if vanity is not None:
        raise DomainError(ErrorCode.CONFLICT, ["referralCode"], "this referral code is taken")
    raise DomainError(ErrorCode.CONFLICT, ["referralCode"], "could not find a free code; retry")


async def update_enrollment(
    actor: Actor,
    enrollment_id: int,
    status: EnrollmentStatus | None = None,
    tier_id: int | None = None,
    clear_tier: bool = False,
) -> Enrollment:
    async with in_transaction():
        enrollment = await Enrollment.filter(id=enrollment_id).select_for_update().first()
        if enrollment is None:
            raise not_found(["id"], "enrollment")
        before = enrollment.snapshot()
        if tier_id is not None:
            if not await Tier.filter(id=tier_id, program_id=enrollment.program_id).exists():
                raise not_found(["tierId"], "tier of this program")
            enrollment.tier_id = tier_id
        elif clear_tier:
            enrollment.tier_id = None
        if status is not None:
            enrollment.status = status
        await enrollment.save()
        await audit.record(actor, "updateEnrollment", enrollment, before, enrollment.snapshot())
    return enrollment


async def list_enrollments(
    partner_id: int | None,
    page: PageRequest,
    program_id: int | None = None,
    search: str | None = None,
) -> Page[Enrollment]:
    """Enrollments (or only one partner's), optionally of one program, searched by referral
    code or partner name."""
    queryset = Enrollment.all() if partner_id is None else Enrollment.filter(partner_id=partner_id)
    if program_id is not None:
        queryset = queryset.filter(program_id=program_id)
    if search and search.strip():
        term = search.strip()
        queryset = queryset.filter(
            Q(code_key__contains=term.lower()) | Q(partner__name__icontains=term)
        )
    return await paginate(queryset, page)


async def enrollments_by_ids(
    ids: list[int], partner_id: int | None = None
) -> list[Enrollment | None]:
    if partner_id is None:
        return await by_ids(Enrollment, ids)
    return await by_ids(Enrollment, ids, '"partner_id" = {}', [partner_id])


async def enrollments_by_partners(partner_ids: list[int]) -> list[list[Enrollment]]:
    """Each partner's enrollments, oldest first, in the order of `partner_ids`."""
    unique = sorted(set(partner_ids))
    rows = await select_where(Enrollment, f'"partner_id" IN ({in_list(len(unique))})', unique)
    grouped: dict[int, list[Enrollment]] = {i: [] for i in partner_ids}
    for row in rows:
        grouped[row.partner_id].append(row)
    return [grouped[i] for i in partner_ids]


async def is_enrolled(partner_id: int, program_id: int) -> bool:
    return await Enrollment.filter(partner_id=partner_id, program_id=program_id).exists()
