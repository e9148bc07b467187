"""Use cases of referral links: create, change and read a partner's shareable links.

Admins (and admin apps) act on any enrollment; a partner only on its own, and another
partner's enrollment or link answers NOT_FOUND, so ids cannot be probed. A link's code is
unique case-insensitively among links and never equals an enrollment's referral code, so
`/r/{code}` names exactly one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from domain.actor import Actor
from domain.audit import services as audit
from domain.errors import DomainError, ErrorCode, ErrorCollector, not_found
from domain.pagination import by_ids, in_list, select_where
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs.models import Program
from domain.tracking import link_rules as rules
from domain.tracking.models import ReferralLink, TouchpointKind

CODE_ATTEMPTS = 8
MAX_LINKS_PER_ENROLLMENT = 100  # Enrollment.links is a plain list: bounded here
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign")
_API_NAMES = {
    "code": "code",
    "destination_url": "destinationUrl",
    "utm_source": "utmSource",
    "utm_medium": "utmMedium",
    "utm_campaign": "utmCampaign",
}


@dataclass(frozen=True)
class LinkSpec:
    """A new link: no code means a generated one, no destination the program's."""

    code: str | None = None
    destination_url: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None


@dataclass(frozen=True)
class LinkChanges:
    """Changes to a link: None keeps a field; a name in `clear` sets it back to none
    (a cleared destination is the program's again)."""

    destination_url: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    disabled: bool | None = None
    clear: frozenset[str] = field(default_factory=frozenset)


def snapshot(link: ReferralLink) -> dict[str, Any]:
    """The audited view of a link (JSON-safe)."""
    return {
        "enrollmentId": link.enrollment_id,
        "code": link.code,
        "destinationUrl": link.destination_url,
        "utmSource": link.utm_source,
        "utmMedium": link.utm_medium,
        "utmCampaign": link.utm_campaign,
        "disabled": link.disabled,
    }


def _check_fields(errors: ErrorCollector, values: dict[str, str | None], program: Program) -> None:
    """The rules of every given field, collected so a client fixes them in one round trip."""
    code = values.get("code")
    if code is not None and (problem := rules.code_problem(code)):
        errors.invalid(["code"], problem)
    destination = values.get("destination_url")
    if destination is not None and (
        problem := rules.destination_problem(
            destination, program.destination_url, program.allowed_domains
        )
    ):
        errors.invalid(["destinationUrl"], problem)
    for name in UTM_FIELDS:
        value = values.get(name)
        if value is not None and (problem := rules.utm_problem(value)):
            errors.invalid([_API_NAMES[name]], problem)


async def _enrollment(actor: Actor, enrollment_id: int) -> Enrollment:
    query = Enrollment.filter(id=enrollment_id)
    if actor.partner_id is not None:
        query = query.filter(partner_id=actor.partner_id)
    enrollment = await query.first()
    if enrollment is None:
        raise not_found(["enrollmentId"], "enrollment")
    return enrollment


async def create_link(actor: Actor, enrollment_id: int, spec: LinkSpec) -> ReferralLink:
    """A new link for an active enrollment (a partner: only its own), with a vanity code or a
    generated one, leading to the program's site or an allowed domain."""
    async with in_transaction():
        enrollment = await _enrollment(actor, enrollment_id)
        program = await Program.get(id=enrollment.program_id)
        errors = ErrorCollector()
        _check_fields(errors, vars(spec), program)
        errors.raise_if_any()
        if enrollment.status is EnrollmentStatus.SUSPENDED:
            raise DomainError(
                ErrorCode.FORBIDDEN, ["enrollmentId"], "a suspended enrollment gets no new links"
            )
        if await ReferralLink.filter(enrollment_id=enrollment.pk).count() >= (
            MAX_LINKS_PER_ENROLLMENT
        ):
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                ["enrollmentId"],
                f"an enrollment has at most {MAX_LINKS_PER_ENROLLMENT} links",
            )
        link = await _save_with_code(enrollment, spec)
        await audit.record(actor, "createReferralLink", link, after=snapshot(link))
    return link


async def _code_taken(key: str) -> bool:
    return (
        await ReferralLink.filter(code_key=key).exists()
        or await Enrollment.filter(code_key=key).exists()
    )


async def _save_with_code(enrollment: Enrollment, spec: LinkSpec) -> ReferralLink:
    attempts = 1 if spec.code is not None else CODE_ATTEMPTS
    for _ in range(attempts):
        code = spec.code if spec.code is not None else rules.generate_code()
        key = rules.code_key(code)
        if await _code_taken(key):
            continue
        link = ReferralLink(
            program_id=enrollment.program_id,
            enrollment_id=enrollment.pk,
            code=code,
            code_key=key,
            destination_url=spec.destination_url,
            utm_source=spec.utm_source,
            utm_medium=spec.utm_medium,
            utm_campaign=spec.utm_campaign,
        )
        try:
            async with in_transaction():  # a savepoint: a lost race leaves the outer one usable
                await link.save()
        except IntegrityError:
            continue
        return link
    if spec.code is not None:
        raise DomainError(ErrorCode.CONFLICT, ["code"], "this code is taken")
    raise DomainError(ErrorCode.CONFLICT, ["code"], "could not find a free code; retry")


async def update_link(actor: Actor, link_id: int, changes: LinkChanges) -> ReferralLink:
    """Change a link's destination, UTM defaults or whether it is disabled (a partner: only
    its own links), by the same rules as at creation."""
    async with in_transaction():
        query = ReferralLink.filter(id=link_id)
        if actor.partner_id is not None:
            query = query.filter(enrollment__partner_id=actor.partner_id)
        link = await query.select_for_update().first()
        if link is None:
            raise not_found(["id"], "referral link")
        program = await Program.get(id=link.program_id)
        values = {
            "destination_url": changes.destination_url,
            **{name: getattr(changes, name) for name in UTM_FIELDS},
        }
        errors = ErrorCollector()
        _check_fields(errors, values, program)
        errors.raise_if_any()
        before = snapshot(link)
        for name, value in values.items():
            if value is not None:
                setattr(link, name, value)
            elif name in changes.clear:
                setattr(link, name, None)
        if changes.disabled is not None:
            link.disabled = changes.disabled
        await link.save()
        await audit.record(actor, "updateReferralLink", link, before, snapshot(link))
    return link


# Reading ------------------------------------------------------------------------------------

# The link's enrollment is the partner's ({} is the partner's id).
_OWN_LINK = (
    'EXISTS (SELECT 1 FROM "enrollments" AS "e" '
    'WHERE "e"."id" = "referral_links"."enrollment_id" AND "e"."partner_id" = {})'
)


async def links_by_ids(ids: list[int], partner_id: int | None = None) -> list[ReferralLink | None]:
    """Links by id, in the order of `ids`; with a partner, only its own (others are None)."""
    if partner_id is None:
        return await by_ids(ReferralLink, ids)
    return await by_ids(ReferralLink, ids, _OWN_LINK, [partner_id])


async def links_by_enrollments(
    enrollment_ids: list[int], partner_id: int | None = None
) -> list[list[ReferralLink]]:
    """Each enrollment's links, newest first, in the order of `enrollment_ids`; with a
    partner, only its own enrollments' (others get [])."""
    unique = sorted(set(enrollment_ids))
    where = f'"enrollment_id" IN ({in_list(len(unique))})'
    params: list[int] = list(unique)
    if partner_id is not None:
        where += f" AND {_OWN_LINK}"
        params.append(partner_id)
    rows = await select_where(ReferralLink, where, params, order_by='"id" DESC')
    grouped: dict[int, list[ReferralLink]] = {i: [] for i in enrollment_ids}
    for row in rows:
        grouped[row.enrollment_id].append(row)
    return [grouped[i] for i in enrollment_ids]


async def click_counts(link_ids: list[int]) -> list[int]:
    """Counted clicks of each link (CLICK touchpoints not excluded), in the order of `link_ids`:
    one GROUP BY for a whole page of links."""
    unique = sorted(set(link_ids))
    if not unique:
        return []
    connection = connections.get("default")
    sqlite = connection.capabilities.dialect == "sqlite"
    params: list[Any] = [*unique, TouchpointKind.CLICK.value, False]
    marks = ["?" if sqlite else f"${n}" for n in range(1, len(params) + 1)]
    sql = (
        'SELECT "link_id", COUNT(*) AS "n" FROM "touchpoints" '
        f'WHERE "link_id" IN ({in_list(len(unique))}) AND "kind" = {{}} AND "excluded" = {{}} '
        'GROUP BY "link_id"'
    ).format(*marks)
    _, rows = await connection.execute_query(sql, params)
    counts = {int(row["link_id"]): int(row["n"]) for row in rows}
    return [counts.get(i, 0) for i in link_ids]


async def program_destinations(program_ids: list[int]) -> list[str]:
    """Each program's destination URL (a link without its own leads there)."""
    unique = sorted(set(program_ids))
    rows = await Program.filter(id__in=unique).values_list("id", "destination_url")
    found = {int(pk): str(url) for pk, url in rows}
    return [found.get(i, "") for i in program_ids]
