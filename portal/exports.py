"""CSV exports of the commission ledger: `GET /exports/commissions.csv?programId=` and
`GET /exports/payouts.csv?batchId=`.

Authenticated like `/graphql` (a bearer JWT or a `pgt_` API token, through the same
Authenticator). Admins, and APP tokens with `reports:read`; a token a partner made exports
only its partner's rows (never a program's referee rewards), as `Query.conversions` lists
only its partner's conversions. Without a credential or with a bad one: 401; a partner user or
an app without the scope: 403; a missing or malformed ID: 400; an object that does not exist
or is not the caller's: 404.

The header row names the GraphQL fields, IDs are the API's global IDs, amounts are decimals in
currency units, instants ISO 8601 in UTC. Rows are read in keyset pages by primary key and
streamed page by page: an export never holds a whole ledger in memory, nor a transaction open
while a client reads slowly. A text cell that a spreadsheet would run as a formula gets a
leading apostrophe (OWASP "CSV injection"); amounts are ours and stay numbers, negative ones too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from tortoise.queryset import QuerySet

from api.authn import AuthenticationFailed, Authenticator
from api.principal import Principal, PrincipalKind
from api.relay import from_global_id, to_global_id
from domain.commissions import services as commissions
from domain.commissions.models import Commission, CommissionKind, PayoutBatch, PayoutItem
from domain.money import to_decimal
from domain.programs import services as programs
from portal.http import BadRequest, error_response

PAGE = 1000
SCOPE = "reports:read"
# What Excel, LibreOffice and Google Sheets start a formula (or a DDE call) with.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The header names GraphQL fields; the fields are the columns read for them, in that order.
COMMISSION_HEADER = ("id", "enrollmentId", "conversionId", "kind", "amount", "currency",
                     "status", "availableAt", "createdAt", "ruleId", "ruleVersion",
                     "reason")  # fmt: skip
COMMISSION_FIELDS = ("id", "enrollment_id", "conversion_id", "kind", "amount_minor", "currency",
                     "status", "available_at", "created_at", "rule_id", "rule_version",
                     "reason")  # fmt: skip
PAYOUT_HEADER = ("enrollmentId", "partnerId", "partnerName", "partnerEmail", "amount",
                 "currency", "batchId", "reference")  # fmt: skip
PAYOUT_FIELDS = ("id", "enrollment_id", "enrollment__partner_id", "enrollment__partner__name",
                 "enrollment__partner__email", "amount_minor", "currency")  # fmt: skip


def defuse(cell: str) -> str:
    """A text cell as a spreadsheet shows it, never as a formula it runs."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def _text(value: object) -> str:
    return "" if value is None else defuse(str(value))


def _global(type_name: str, pk: int | None) -> str:
    return "" if pk is None else str(to_global_id(type_name, pk))


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _amount(amount_minor: int, currency: str) -> str:
    return str(to_decimal(amount_minor, currency))


def encode(rows: Iterable[Sequence[str]]) -> bytes:
    """CSV lines (RFC 4180: CRLF, quoted where needed) as UTF-8."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


def commission_cells(row: Sequence[Any]) -> list[str]:
    entry, enrollment, conversion, kind, amount, currency, status = row[:7]
    available_at, created_at, rule, rule_version, reason = row[7:]
    return [
        _global("Commission", entry),
        _global("Enrollment", enrollment),
        _global("Conversion", conversion),
        _text(kind),
        _amount(amount, currency),
        _text(currency),
        _text(status),
        _instant(available_at),
        _instant(created_at),
        _global("CommissionRule", rule),
        _text(rule_version),
        _text(reason),
    ]


def payout_cells(row: Sequence[Any], batch: PayoutBatch) -> list[str]:
    _, enrollment, partner, name, email, amount, currency = row
    return [
        _global("Enrollment", enrollment),
        _global("Partner", partner),
        _text(name),
        _text(email),
        _amount(amount, currency),
        _text(currency),
        _global("PayoutBatch", batch.pk),
        _text(batch.reference),
    ]


async def _pages(query: QuerySet[Any], fields: Sequence[str]) -> AsyncIterator[list[Any]]:
    """The rows' `fields` (the id first), a page of PAGE at a time by id: one short query per
    page, so no transaction stays open while a client reads slowly."""
    after = 0
    while True:
        page = await query.filter(id__gt=after).order_by("id").limit(PAGE).values_list(*fields)
        if page:
            yield page
        if len(page) < PAGE:
            return
        after = page[-1][0]


async def commission_pages(
    program_id: int, partner_id: int | None
) -> AsyncIterator[list[list[str]]]:
    """The program's ledger entries; with a partner, its own only (no referee rewards)."""
    query = Commission.filter(program_id=program_id)
    if partner_id is not None:
        query = query.filter(enrollment__partner_id=partner_id).exclude(
            kind=CommissionKind.REFEREE_REWARD
        )
    async for page in _pages(query, COMMISSION_FIELDS):
        yield [commission_cells(row) for row in page]


async def payout_pages(
    batch: PayoutBatch, partner_id: int | None
) -> AsyncIterator[list[list[str]]]:
    """The batch's payout items, one per enrollment paid; with a partner, its own only."""
    query = PayoutItem.filter(batch_id=batch.pk)
    if partner_id is not None:
        query = query.filter(enrollment__partner_id=partner_id)
    async for page in _pages(query, PAYOUT_FIELDS):
        yield [payout_cells(row, batch) for row in page]


async def _chunks(
    header: Sequence[str], pages: AsyncIterator[list[list[str]]]
) -> AsyncIterator[bytes]:
    yield encode([header])
    async for page in pages:
        yield encode(page)


def csv_response(
    filename: str, header: Sequence[str], pages: AsyncIterator[list[list[str]]]
) -> Response:
    """The header line, then one chunk per page, as an attachment."""
    return StreamingResponse(
        _chunks(header, pages),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def global_id_param(request: Request, name: str, type_name: str) -> int:
    """The primary key in the query parameter `name`, a global ID of `type_name`; else 400."""
    value = request.query_params.get(name, "")
    if not value:
        raise BadRequest(400, f"give {name}, a {type_name} ID")
    parsed = from_global_id(value)
    if parsed is None or parsed[0] != type_name:
        raise BadRequest(400, f"{name} is not a {type_name} ID")
    return parsed[1]


class ExportRoutes:
    """The export endpoints; the app passes the Authenticator `/graphql` uses."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def routes(self) -> list[Route]:
        return [
            Route("/exports/commissions.csv", self.commissions, methods=["GET"]),
            Route("/exports/payouts.csv", self.payouts, methods=["GET"]),
        ]

    async def reader(self, request: Request) -> Principal:
        """The caller, if it may export: an admin, or an APP token with reports:read."""
        try:
            principal = await self.authenticator.authenticate(request.headers.get("authorization"))
        except AuthenticationFailed as exc:
            challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            raise BadRequest(401, str(exc), challenge) from None
        if principal.is_anonymous:
            raise BadRequest(401, "authentication required", {"WWW-Authenticate": "Bearer"})
        if principal.is_admin or (
            principal.kind is PrincipalKind.APP and SCOPE in principal.scopes
        ):
            return principal
        raise BadRequest(403, f"exports are for admins and app tokens with {SCOPE}")

    async def commissions(self, request: Request) -> Response:
        """Every ledger entry of a program, one row each."""
        try:
            principal = await self.reader(request)
            program_id = global_id_param(request, "programId", "Program")
            found = await programs.programs_by_ids([program_id], principal.partner_id)
            if found[0] is None:
                raise BadRequest(404, "no program with this ID")
        except BadRequest as exc:
            return error_response(exc)
        pages = commission_pages(program_id, principal.partner_id)
        name = f"commissions-{to_global_id('Program', program_id)}.csv"
        return csv_response(name, COMMISSION_HEADER, pages)

    async def payouts(self, request: Request) -> Response:
        """What a payment provider needs to pay a batch: one row per enrollment paid."""
        try:
            principal = await self.reader(request)
            batch_id = global_id_param(request, "batchId", "PayoutBatch")
            batch = (await commissions.payout_batches_by_ids([batch_id]))[0]
            if batch is None or not await _batch_visible(batch, principal.partner_id):
                raise BadRequest(404, "no payout batch with this ID")
        except BadRequest as exc:
            return error_response(exc)
        pages = payout_pages(batch, principal.partner_id)
        name = f"payouts-{to_global_id('PayoutBatch', batch_id)}.csv"
        return csv_response(name, PAYOUT_HEADER, pages)


async def _batch_visible(batch: PayoutBatch, partner_id: int | None) -> bool:
    """Every batch for whoever sees every partner; for a partner, a batch that pays it."""
    if partner_id is None:
        return True
    return await PayoutItem.filter(batch_id=batch.pk, enrollment__partner_id=partner_id).exists()
