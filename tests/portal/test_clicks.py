"""The click path `GET /r/{code}` through real HTTP: redirects, cookies, what is stored (and
what is not), group commit and the shutdown flush, on the test database (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from domain.actor import Actor
from domain.clock import epoch_us
from domain.partners import services as partners
from domain.partners.models import Enrollment, EnrollmentStatus
from domain.programs import services as programs
from domain.programs.models import Program, ProgramStatus
from domain.settings import Settings
from domain.tracking.click_rules import ip_hash_key
from domain.tracking.clicks import ClickService, CodeResolver
from domain.tracking.models import (
    Customer,
    ReferralLink,
    Touchpoint,
    TouchpointKind,
    VisitorCustomer,
)
from portal.app import create_app

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
CLIENT_IP = "203.0.113.7"  # the `client` fixture's address


@dataclass
class Setup:
    program: Program
    enrollment: Enrollment
    link: ReferralLink


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client that never stores cookies: each request sends only the cookie it names, so a
    visitor is who the test says it is."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 4321))
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", cookies=jar
    ) as c:
        yield c


@pytest.fixture(autouse=True)
def fresh_click_state(app: Starlette) -> None:
    """The session-wide app keeps codes and recent clicks in memory: start each test clean."""
    service: ClickService = app.state.clicks.service
    service.resolver.clear()
    service.recent.clear()


async def make_setup(code: str = "Summer-Sale", destination: str | None = None) -> Setup:
    actor = Actor.system("test")
    program = await programs.create_program(
        actor,
        programs.ProgramSpec(
            name="Acme", currency="EUR", destination_url="https://acme.example/pricing?plan=pro"
        ),
    )
    partner = await partners.create_partner(actor, "Ana Ltd", f"ana-{code.lower()}@example.com")
    enrollment = await partners.enroll_partner(actor, program.id, partner.id, None, "ANA-CODE")
    link = await ReferralLink.create(
        program_id=program.id,
        enrollment_id=enrollment.id,
        code=code,
        code_key=code.lower(),
        destination_url=destination,
        utm_source="partner",
        utm_medium="referral",
        utm_campaign="summer",
    )
    return Setup(program, enrollment, link)


@pytest.fixture
async def setup() -> Setup:
    return await make_setup()


async def click(
    client: httpx.AsyncClient,
    path: str,
    ua: str = BROWSER,
    visitor: str | None = None,
    referrer: str | None = None,
) -> httpx.Response:
    headers = {"User-Agent": ua}
    if referrer:
        headers["Referer"] = referrer
    if visitor:
        headers["Cookie"] = f"pg_vid={visitor}"
    return await client.get(path, headers=headers)


def query_of(response: httpx.Response) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


async def test_click_redirects_to_the_destination_with_click_id_and_utm(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    response = await click(client, "/r/SUMMER-sale?utm_source=newsletter&utm_content=hero")
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "acme.example",
        "/pricing",
    )
    query = query_of(response)
    assert query.pop("pg_click") == (await Touchpoint.get()).click_id
    assert len(query_of(response)["pg_click"]) >= 22
    assert query == {
        "plan": "pro",  # the destination's own parameters stay
        "utm_source": "newsletter",  # the click's own UTM overrides the link's default
        "utm_medium": "referral",
        "utm_campaign": "summer",
        "utm_content": "hero",
    }
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


async def test_click_stores_a_click_touchpoint_with_its_facts(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    response = await click(
        client, "/r/summer-sale?utm_campaign=black-friday", referrer="https://blog.example/x" * 60
    )
    assert response.status_code == 302
    row = await Touchpoint.get()
    assert row.kind == TouchpointKind.CLICK
    assert (row.program_id, row.enrollment_id, row.link_id) == (
        setup.program.id,
        setup.enrollment.id,
        setup.link.id,
    )
    assert row.click_id == query_of(response)["pg_click"]
    assert row.visitor_id == response.cookies["pg_vid"]
    assert (row.utm_source, row.utm_medium, row.utm_campaign) == (
        "partner",
        "referral",
        "black-friday",
    )
    assert row.referrer == ("https://blog.example/x" * 60)[:512]
    assert row.ua_class == "DESKTOP"
    assert row.customer_id is None
    assert row.occurred_us == epoch_us(row.occurred_at)
    assert row.excluded is False


async def test_raw_ip_is_never_stored(
    client: httpx.AsyncClient, setup: Setup, settings: Settings
) -> None:
    await click(client, "/r/summer-sale")
    row = await Touchpoint.get()
    import hashlib
    import hmac

    expected = hmac.new(ip_hash_key(settings.signing_key), CLIENT_IP.encode(), hashlib.sha256)
    assert row.ip_hash == expected.hexdigest()
    values = await Touchpoint.all().values()
    assert all(CLIENT_IP not in str(value) for value in values[0].values())


async def test_visitor_cookie_attributes(client: httpx.AsyncClient, setup: Setup) -> None:
    response = await click(client, "/r/summer-sale")
    cookie = response.headers["set-cookie"]
    parts = [p.strip() for p in cookie.split(";")]
    name, _, value = parts[0].partition("=")
    assert name == "pg_vid"
    assert len(value) >= 22
    assert set(parts[1:]) == {"Max-Age=2592000", "Path=/", "HttpOnly", "SameSite=Lax"}


async def test_cookie_is_secure_when_the_public_url_is_https(settings: Settings) -> None:
    await make_setup()
    app = create_app(settings.model_copy(update={"public_url": "https://go.example"}),
                     manage_database=False)  # fmt: skip
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 1234))
    async with httpx.AsyncClient(transport=transport, base_url="https://go.example") as c:
        response = await c.get("/r/summer-sale", headers={"User-Agent": BROWSER})
    assert response.status_code == 302
    assert "; Secure" in response.headers["set-cookie"]


async def test_a_valid_visitor_cookie_is_kept_and_a_malformed_one_replaced(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    kept = await click(client, "/r/summer-sale", visitor="Visitor_id-0123456789abcdef")
    assert kept.cookies["pg_vid"] == "Visitor_id-0123456789abcdef"
    bad = await click(client, "/r/summer-sale", visitor="<script>")
    assert bad.cookies["pg_vid"] != "<script>"
    assert sorted(await Touchpoint.all().values_list("visitor_id", flat=True)) == sorted(
        ["Visitor_id-0123456789abcdef", bad.cookies["pg_vid"]]
    )


async def test_link_without_destination_and_lookback_follow_the_program(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    setup.program.lookback_days = 7
    await setup.program.save()
    response = await click(client, "/r/summer-sale")
    assert response.headers["location"].startswith("https://acme.example/pricing?plan=pro&")
    assert "Max-Age=604800" in response.headers["set-cookie"]


async def test_link_destination_keeps_its_query_and_fragment(client: httpx.AsyncClient) -> None:
    await make_setup("deep", destination="https://shop.acme.example/p/1?ref=x&utm_medium=old#buy")
    response = await click(client, "/r/deep")
    location = urlsplit(response.headers["location"])
    assert (location.netloc, location.path, location.fragment) == (
        "shop.acme.example",
        "/p/1",
        "buy",
    )
    assert [k for k, _ in parse_qsl(location.query)] == [
        "ref", "utm_source", "utm_medium", "utm_campaign", "pg_click"
    ]  # fmt: skip
    assert query_of(response)["utm_medium"] == "referral"


async def test_enrollment_referral_code_leads_to_the_program(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    response = await click(client, "/r/ana-code")
    assert response.status_code == 302
    assert query_of(response).keys() == {"plan", "pg_click"}
    row = await Touchpoint.get()
    assert (row.enrollment_id, row.link_id) == (setup.enrollment.id, None)


@pytest.mark.parametrize("code", ["nope", "x" * 65, "summer-sale-2"])
async def test_unknown_code_is_404_without_redirect_or_row(
    client: httpx.AsyncClient, setup: Setup, code: str
) -> None:
    response = await click(client, f"/r/{code}")
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert response.text == "unknown referral link\n"
    assert await Touchpoint.all().count() == 0


async def test_disabled_link_or_inactive_enrollment_or_program_is_404(
    client: httpx.AsyncClient, app: Starlette, setup: Setup
) -> None:
    resolver: CodeResolver = app.state.clicks.service.resolver
    setup.link.disabled = True
    await setup.link.save()
    assert (await click(client, "/r/summer-sale")).status_code == 404
    setup.link.disabled = False
    await setup.link.save()
    setup.enrollment.status = EnrollmentStatus.SUSPENDED
    await setup.enrollment.save()
    resolver.clear()
    assert (await click(client, "/r/summer-sale")).status_code == 404
    assert (await click(client, "/r/ana-code")).status_code == 404
    setup.enrollment.status = EnrollmentStatus.ACTIVE
    await setup.enrollment.save()
    setup.program.status = ProgramStatus.PAUSED
    await setup.program.save()
    resolver.clear()
    assert (await click(client, "/r/summer-sale")).status_code == 404
    assert await Touchpoint.all().count() == 0


async def test_a_disabled_link_stops_within_the_cache_time(setup: Setup) -> None:
    resolver = CodeResolver(ttl=0.05)
    assert await resolver.resolve("SUMMER-SALE") is not None
    setup.link.disabled = True
    await setup.link.save()
    await asyncio.sleep(0.06)
    assert await resolver.resolve("summer-sale") is None


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "WhatsApp/2.23.20.0",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
        "",
    ],
)
async def test_bots_are_redirected_but_not_counted(
    client: httpx.AsyncClient, setup: Setup, ua: str
) -> None:
    response = await click(client, "/r/summer-sale", ua=ua)
    assert response.status_code == 302
    assert "pg_click" in query_of(response)
    assert await Touchpoint.all().count() == 0


@pytest.mark.parametrize(
    ("ua", "expected"),
    [(BROWSER, "DESKTOP"), (IPHONE, "MOBILE"), (IPAD, "TABLET"), ("SmartTV-Browser/1", "OTHER")],
)
async def test_user_agent_class_is_stored(
    client: httpx.AsyncClient, setup: Setup, ua: str, expected: str
) -> None:
    await click(client, "/r/summer-sale", ua=ua)
    assert (await Touchpoint.get()).ua_class == expected


async def test_repeated_clicks_within_the_window_count_once(
    client: httpx.AsyncClient, app: Starlette, setup: Setup
) -> None:
    visitor = "Repeat-visitor-0123456789"
    first = await click(client, "/r/summer-sale", visitor=visitor)
    second = await click(client, "/r/Summer-Sale?utm_source=x", visitor=visitor)
    assert second.status_code == 302
    assert query_of(second)["pg_click"] == query_of(first)["pg_click"]
    other_link = await click(client, "/r/ana-code", visitor=visitor)  # another target counts
    other_visitor = await click(client, "/r/summer-sale", visitor="Another-visitor-012345")
    assert await Touchpoint.all().count() == 3
    assert query_of(other_link)["pg_click"] != query_of(first)["pg_click"]
    assert query_of(other_visitor)["pg_click"] != query_of(first)["pg_click"]
    # after the window the same visitor counts again
    recent = app.state.clicks.service.recent
    recent.clock = lambda: 10**9
    try:
        again = await click(client, "/r/summer-sale", visitor=visitor)
    finally:
        import time

        recent.clock = time.monotonic
    assert query_of(again)["pg_click"] != query_of(first)["pg_click"]
    assert await Touchpoint.all().count() == 4


async def test_a_visitor_stitched_to_a_customer_gets_its_customer(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    customer = await Customer.create(program_id=setup.program.id, external_id="cus_1")
    visitor = "Stitched-visitor-0123456789"
    await VisitorCustomer.create(program_id=setup.program.id, visitor_id=visitor, customer=customer)
    await click(client, "/r/summer-sale", visitor=visitor)
    await click(client, "/r/ana-code", visitor="Unknown-visitor-0123456789")
    rows = {r.visitor_id: r.customer_id for r in await Touchpoint.all()}
    assert rows == {visitor: customer.id, "Unknown-visitor-0123456789": None}


async def test_concurrent_clicks_are_all_stored_with_fewer_commits(
    client: httpx.AsyncClient, app: Starlette, setup: Setup
) -> None:
    writer = app.state.clicks.service.writer
    commits = writer.commits
    responses = await asyncio.gather(
        *(client.get("/r/summer-sale", headers={"User-Agent": BROWSER}) for _ in range(200))
    )
    assert [r.status_code for r in responses] == [302] * 200
    stored = set(await Touchpoint.all().values_list("click_id", flat=True))
    assert stored == {query_of(r)["pg_click"] for r in responses}
    assert len(stored) == 200
    assert writer.commits - commits < 200


async def test_a_redirect_implies_the_row_exists(client: httpx.AsyncClient, setup: Setup) -> None:
    async def one() -> None:
        response = await client.get("/r/summer-sale", headers={"User-Agent": BROWSER})
        assert response.status_code == 302
        assert await Touchpoint.exists(click_id=query_of(response)["pg_click"])

    await asyncio.gather(*(one() for _ in range(50)))


async def test_a_failed_commit_answers_503_for_every_click_of_the_batch(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    assert (await click(client, "/r/summer-sale")).status_code == 302  # the code is cached
    # the cached link's enrollment no longer exists: the insert breaks a foreign key
    await Enrollment.filter(id=setup.enrollment.id).delete()
    assert await Touchpoint.all().count() == 0
    responses = await asyncio.gather(
        *(client.get("/r/summer-sale", headers={"User-Agent": BROWSER}) for _ in range(20))
    )
    assert [r.status_code for r in responses] == [503] * 20
    assert all("location" not in r.headers for r in responses)
    assert await Touchpoint.all().count() == 0


async def test_shutdown_flushes_queued_clicks(settings: Settings, setup: Setup) -> None:
    app = create_app(settings, manage_database=False)
    service: ClickService = app.state.clicks.service
    target = await service.resolver.resolve("summer-sale")
    assert target is not None
    async with app.router.lifespan_context(app):
        from domain.tracking.clicks import ClickRequest

        request = ClickRequest("summer-sale", [], None, BROWSER, None, CLIENT_IP)
        futures = [
            service.writer.submit(service._row(target, request, f"Visitor-{i:020d}", f"c{i}", {}))
            for i in range(30)
        ]
        assert not any(f.done() for f in futures)  # nothing committed yet: the loop never ran
    assert all(f.done() and f.exception() is None for f in futures)
    assert await Touchpoint.all().count() == 30


async def test_other_methods_and_head_go_through_the_route(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    """The fast path serves GET only: POST is refused with 405; HEAD (link checkers, previews)
    gets the redirect but is never counted."""
    posted = await client.post("/r/summer-sale", headers={"User-Agent": BROWSER})
    assert posted.status_code == 405
    head = await client.head("/r/summer-sale", headers={"User-Agent": BROWSER})
    assert head.status_code == 302
    assert head.headers["location"].startswith("https://acme.example/")
    assert await Touchpoint.filter(kind=TouchpointKind.CLICK).count() == 0


async def test_a_quoted_visitor_cookie_is_read_or_replaced(
    client: httpx.AsyncClient, setup: Setup
) -> None:
    visitor = "v" * 20
    response = await client.get(
        "/r/summer-sale", headers={"User-Agent": BROWSER, "Cookie": f'pg_vid="{visitor}"'}
    )
    assert response.status_code == 302
    stored = await Touchpoint.get(kind=TouchpointKind.CLICK)
    assert stored.visitor_id is not None
    assert '"' not in stored.visitor_id
