"""`GET /px/conversion.gif`: the conversion pixel, for merchants without a backend.

Query parameters: `program` (the program's global ID, as the API shows it), `external_id`,
`kind` (LEAD, SIGNUP, SALE, RENEWAL; default SALE), `amount` (default 0, with at most the
currency's decimals), `currency` (default the program's; if given, it must be it), and
optionally `click_id`, `visitor_id` (else the `pg_vid` cookie, when the browser sends it: it
does only if the pixel is served from the same site as the click route), `referral_code`,
`customer_id`.

It always answers 200 with a 1x1 transparent GIF and `Cache-Control: no-store`, also for bad
input and for an unknown program (then nothing is stored): a pixel must never break a page,
and a 404 would only tell a prober which programs exist. `X-Pixel-Status` (`recorded`,
`duplicate`, `refused`) tells a merchant debugging an integration what happened.
"""

from __future__ import annotations

import base64
import logging

from starlette.requests import Request
from starlette.responses import Response

from api.relay import from_global_id
from domain.tracking.pixel import PixelHit, record_pixel

log = logging.getLogger("partnergraph.pixel")

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
VISITOR_COOKIE = "pg_vid"


def _program_id(value: str | None) -> int | None:
    parsed = from_global_id(value) if value else None
    return parsed[1] if parsed is not None and parsed[0] == "Program" else None


def hit_from(request: Request) -> PixelHit:
    params = request.query_params
    return PixelHit(
        program_id=_program_id(params.get("program")),
        external_id=params.get("external_id"),
        kind=params.get("kind"),
        amount=params.get("amount"),
        currency=params.get("currency"),
        click_id=params.get("click_id"),
        visitor_id=params.get("visitor_id") or request.cookies.get(VISITOR_COOKIE),
        referral_code=params.get("referral_code"),
        customer_id=params.get("customer_id"),
    )


async def conversion_pixel(request: Request) -> Response:
    try:
        status = str(await record_pixel(hit_from(request)))
    except Exception:  # the page must not break: log it, answer the GIF
        log.exception("conversion pixel failed")
        status = "error"
    return Response(
        GIF,
        media_type="image/gif",
        headers={"Cache-Control": "no-store", "X-Pixel-Status": status},
    )
