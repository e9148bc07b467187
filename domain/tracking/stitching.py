"""Identity stitching: tie visitors and clicks to the merchant's customers, so a conversion of
the customer finds every touchpoint it made before it was known, on any device.

A visitor belongs to at most one customer of a program (`VisitorCustomer`), a click to at most
one customer (its touchpoint's `customer_id`): naming either with another customer is a
CONFLICT. Used in bulk (recordConversions: a few queries for a thousand items) and for one
item alike. Call the writers inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise import connections

from domain.errors import DomainError, ErrorCode, not_found
from domain.identity.models import User
from domain.pagination import by_ids, in_list
from domain.partners.models import Enrollment, Partner
from domain.tracking.models import Customer, Touchpoint, VisitorCustomer

CHUNK = 500
SELF_REFERRAL = "SELF_REFERRAL"


@dataclass(frozen=True, slots=True)
class Want:
    """One item's wish: customer `customer` (external id) used this visitor and/or click.
    `click_known`: an unknown click is NOT_FOUND (identifyCustomer) rather than ignored (a
    conversion keeps a click id the click route did not store, such as a bot-like browser's)."""

    customer: str
    visitor: str | None = None
    click: str | None = None
    click_known: bool = True


@dataclass
class Plan:
    """What the wishes add: new visitor links, visitors and clicks to stitch (by customer
    external id), and the items refused (index -> error)."""

    new_links: list[tuple[str, str]] = field(default_factory=list)
    visitors: list[tuple[str, str]] = field(default_factory=list)
    clicks: list[tuple[str, str]] = field(default_factory=list)
    refused: dict[int, DomainError] = field(default_factory=dict)


def _chunks(values: Iterable[str]) -> list[list[str]]:
    items = sorted(set(values))
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


async def _clicks(program_id: int, clicks: Iterable[str]) -> dict[str, tuple[str | None, Any]]:
    """click id -> (its customer's external id, its visitor id)."""
    found: dict[str, tuple[str | None, Any]] = {}
    for part in _chunks(clicks):
        rows = await Touchpoint.filter(program_id=program_id, click_id__in=part).values_list(
            "click_id", "customer__external_id", "visitor_id"
        )
        found.update({str(c): (owner, visitor) for c, owner, visitor in rows})
    return found


async def _owners(program_id: int, visitors: Iterable[str]) -> dict[str, str]:
    """visitor id -> the external id of the customer it is linked to."""
    owners: dict[str, str] = {}
    for part in _chunks(visitors):
        rows = await VisitorCustomer.filter(program_id=program_id, visitor_id__in=part).values_list(
            "visitor_id", "customer__external_id"
        )
        owners.update({str(v): str(c) for v, c in rows})
    return owners


async def plan(program_id: int, wants: Sequence[Want | None]) -> Plan:
    """Check the wishes in order against the stored links and each other (None: nothing)."""
    clicks = await _clicks(program_id, (w.click for w in wants if w and w.click))
    visitors = {w.visitor for w in wants if w and w.visitor}
    visitors |= {str(v) for _, v in clicks.values() if v}
    owners = await _owners(program_id, visitors)
    result = Plan()
    for index, want in enumerate(wants):
        if want is None:
            continue
        mine: list[str] = []  # visitors this item ties to its customer
        error = None
        if want.click is not None:
            click = clicks.get(want.click)
            if click is None and want.click_known:
                error = not_found(["clickId"], "click")
            elif click is not None and click[0] not in (None, want.customer):
                error = _conflict("clickId", "this click belongs to another customer")
            elif click is not None and click[1]:
                mine.append(str(click[1]))
        if want.visitor is not None:
            mine.append(want.visitor)
        for visitor in mine:
            if error is None and owners.get(visitor, want.customer) != want.customer:
                field_name = "visitorId" if visitor == want.visitor else "clickId"
                error = _conflict(field_name, "this visitor is another customer")
        if error is not None:
            result.refused[index] = error
            continue
        for visitor in dict.fromkeys(mine):
            if visitor not in owners:
                owners[visitor] = want.customer
                result.new_links.append((visitor, want.customer))
            result.visitors.append((visitor, want.customer))
        if want.click is not None and want.click in clicks:
            result.clicks.append((want.click, want.customer))
    return result


def _conflict(field_name: str, message: str) -> DomainError:
    return DomainError(ErrorCode.CONFLICT, [field_name], message)


async def customers(program_id: int, external_ids: Iterable[str]) -> dict[str, Customer]:
    """Find or create the customers (external id -> row); concurrent creators make one."""
    wanted = set(external_ids)
    found: dict[str, Customer] = {}
    for part in _chunks(wanted):
        for row in await Customer.filter(program_id=program_id, external_id__in=part):
            found[row.external_id] = row
    missing = [Customer(program_id=program_id, external_id=e) for e in wanted - found.keys()]
    if missing:
        await Customer.bulk_create(missing, batch_size=CHUNK, ignore_conflicts=True)
        for part in _chunks(e.external_id for e in missing):
            for row in await Customer.filter(program_id=program_id, external_id__in=part):
                found[row.external_id] = row
    return found


async def apply(program_id: int, planned: Plan, by_external: dict[str, Customer]) -> None:
    """Write a plan: the new visitor links, then the customer on every touchpoint of those
    visitors and clicks that has none yet."""
    if planned.new_links:
        await VisitorCustomer.bulk_create(
            [
                VisitorCustomer(program_id=program_id, visitor_id=v, customer_id=by_external[c].pk)
                for v, c in planned.new_links
            ],
            batch_size=CHUNK,
        )
    conn = connections.get("default")
    sqlite = conn.capabilities.dialect == "sqlite"
    marks = ("?", "?", "?") if sqlite else ("$1", "$2", "$3")
    for column, pairs in (("visitor_id", planned.visitors), ("click_id", planned.clicks)):
        if pairs:
            await conn.execute_many(
                f"UPDATE touchpoints SET customer_id = {marks[0]} WHERE program_id = {marks[1]} "
                f"AND {column} = {marks[2]} AND customer_id IS NULL",
                [[by_external[c].pk, program_id, key] for key, c in pairs],
            )


async def exclude_self_referrals(rows: Iterable[Customer]) -> None:
    """A customer who is the partner (its e-mail is the partner's or one of its users') earns
    that partner nothing: its touchpoints of that partner are kept, excluded (nor is that
    partner its first referrer)."""
    for customer in rows:
        if customer.email is None:
            continue
        partners = set(await Partner.filter(email=customer.email).values_list("id", flat=True))
        users = User.filter(email=customer.email, partner_id__not_isnull=True)
        partners |= {p for p in await users.values_list("partner_id", flat=True) if p}
        if not partners:
            continue
        ids = await Enrollment.filter(partner_id__in=partners).values_list("id", flat=True)
        own: list[int] = [int(str(e)) for e in ids]
        await Touchpoint.filter(
            customer_id=customer.pk, enrollment_id__in=own, excluded=False
        ).update(excluded=True, exclusion_reason=SELF_REFERRAL)
        if customer.first_enrollment_id in own:  # chosen again among the counted ones
            customer.first_enrollment_id = None
            await customer.save(update_fields=["first_enrollment_id"])


async def remember_first_referrers(customer_ids: Sequence[int]) -> None:
    """Customers with no first referrer yet get the enrollment of their earliest counted
    touchpoint (one statement per 500 customers)."""
    conn = connections.get("default")
    sqlite = conn.capabilities.dialect == "sqlite"
    for start in range(0, len(customer_ids), CHUNK):
        part = list(customer_ids[start : start + CHUNK])
        marks = in_list(len(part)).format(
            *("?" if sqlite else f"${n}" for n in range(1, len(part) + 1))
        )
        await conn.execute_query(
            "UPDATE customers SET first_enrollment_id = (SELECT t.enrollment_id FROM "
            "touchpoints t WHERE t.customer_id = customers.id AND NOT t.excluded "
            "ORDER BY t.occurred_us, t.id LIMIT 1) "
            f"WHERE first_enrollment_id IS NULL AND id IN ({marks})",
            part,
        )


async def customers_by_ids(ids: list[int]) -> list[Customer | None]:
    """Customers by id, in the order of `ids` (None where missing): for the API's loader."""
    return await by_ids(Customer, ids)
