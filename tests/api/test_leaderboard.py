"""`Query.leaderboard` through HTTP: rankings with ties and periods, `first`, what each
principal sees under each visibility (names, anonymized, own rank only), a partner's own entry
outside the top, `enrollment` only on a partner's own entry, foreign and unknown programs,
APP tokens by their scopes, and `leaderboardVisibility` on programs.

Points are written with the ORM at instants relative to now (the API ranks as of now):
RECENT is in this month and in the last 30 days, OLD in neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.actor import Actor
from domain.gamification.models import PointEntry, PointKind
from domain.tracking import ingest
from domain.tracking.ingest_rules import ConversionSpec, Identity
from domain.tracking.models import ConversionKind
from tests.helpers import Api, pk

NOW = datetime.now(UTC)
MONTH_START = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
RECENT = max(MONTH_START, NOW - timedelta(days=1))
OLD = NOW - timedelta(days=40)

BOARD = """
query($programId: ID!, $metric: LeaderboardMetric!, $period: LeaderboardPeriod, $first: Int) {
  leaderboard(programId: $programId, metric: $metric, period: $period, first: $first) {
    rank name value isViewer enrollment { id referralCode }
  }
}"""


@dataclass
class World:
    """Program "Acme" with Alpha 300 (recent), Beta 200 (recent), Gamma 200 (40 days ago),
    Delta 50 (recent) and Echo (no points); program "Other" with Zulu 999 points."""

    admin: str
    program: str
    other: str
    partners: dict[str, dict[str, Any]]

    def enrollment(self, name: str) -> str:
        return str(self.partners[name]["enrollmentId"])

    def token(self, name: str) -> str:
        return str(self.partners[name]["token"])


async def earn(enrollment_id: str, program_id: str, points: int, at: datetime) -> None:
    await PointEntry.create(
        program_id=pk(program_id),
        enrollment_id=pk(enrollment_id),
        kind=PointKind.CONVERSION,
        points=points,
        created_at=at,
    )


@pytest.fixture
async def world(api: Api) -> World:
    admin = await api.admin_token()
    program = await api.program(admin, "Acme")
    other = await api.program(admin, "Other")
    partners = {}
    for name in ("Alpha", "Beta", "Gamma", "Delta", "Echo"):
        partners[name] = await api.partner(admin, name, f"{name.lower()}@example.com", program)
    partners["Zulu"] = await api.partner(admin, "Zulu", "zulu@example.com", other)
    for name, points, at in (
        ("Alpha", 300, RECENT),
        ("Beta", 200, RECENT),
        ("Gamma", 200, OLD),
        ("Delta", 50, RECENT),
    ):
        await earn(partners[name]["enrollmentId"], program, points, at)
    await earn(partners["Zulu"]["enrollmentId"], other, 999, RECENT)
    return World(admin, program, other, partners)


async def board(
    api: Api, token: str | None, program: str, metric: str = "POINTS", **variables: Any
) -> list[dict[str, Any]]:
    data = await api.data(BOARD, {"programId": program, "metric": metric, **variables}, token)
    entries: list[dict[str, Any]] = data["leaderboard"]
    return entries


def summary(entries: list[dict[str, Any]]) -> list[tuple[int, str | None, str, bool]]:
    return [(e["rank"], e["name"], e["value"], e["isViewer"]) for e in entries]


async def set_visibility(api: Api, world: World, visibility: str) -> None:
    payload = await api.mutate(
        "updateProgram",
        {"id": world.program, "leaderboardVisibility": visibility},
        "program { leaderboardVisibility }",
        world.admin,
    )
    assert payload == {"program": {"leaderboardVisibility": visibility}, "userErrors": []}


async def errors(api: Api, token: str | None, **variables: Any) -> list[str]:
    body = await api.post(BOARD, {"metric": "POINTS", **variables}, token)
    assert body["data"] is None, body
    return [e["extensions"]["code"] for e in body["errors"]]


# --- rankings -------------------------------------------------------------------------------


async def test_admin_sees_the_all_time_ranking_with_ties_and_names(api: Api, world: World) -> None:
    entries = await board(api, world.admin, world.program)
    assert summary(entries) == [
        (1, "Alpha", "300", False),
        (2, "Beta", "200", False),  # Beta and Gamma tie: both 2nd, listed by enrollment
        (2, "Gamma", "200", False),
        (4, "Delta", "50", False),  # Echo has no points: not listed
    ]
    expected = [world.enrollment(n) for n in ("Alpha", "Beta", "Gamma", "Delta")]
    assert [e["enrollment"]["id"] for e in entries] == expected


@pytest.mark.parametrize("period", ["THIS_MONTH", "LAST_30_DAYS"])
async def test_recent_periods_leave_out_older_points(api: Api, world: World, period: str) -> None:
    entries = await board(api, world.admin, world.program, period=period)
    assert summary(entries) == [
        (1, "Alpha", "300", False),
        (2, "Beta", "200", False),
        (3, "Delta", "50", False),  # Gamma's points are 40 days old
    ]


async def test_period_null_is_all_time_and_first_cuts_the_list(api: Api, world: World) -> None:
    entries = await board(api, world.admin, world.program, period=None, first=2)
    assert summary(entries) == [(1, "Alpha", "300", False), (2, "Beta", "200", False)]
    everything = await board(api, world.admin, world.program, first=None)
    assert len(everything) == 4  # null: the default 10
    assert await board(api, world.admin, world.program, first=0) == []


@pytest.mark.parametrize("first", [-1, 101])
async def test_first_out_of_range_is_refused(api: Api, world: World, first: int) -> None:
    assert await errors(api, world.admin, programId=world.program, first=first) == [
        "BAD_USER_INPUT"
    ]


async def test_revenue_is_in_currency_units(api: Api, world: World) -> None:
    for name, external_id, amount in (("Beta", "s1", "80.00"), ("Alpha", "s2", "12.50")):
        code = (await api.data(
            "query($id: ID!) { node(id: $id) { ... on Enrollment { referralCode } } }",
            {"id": world.enrollment(name)}, world.admin,
        ))["node"]["referralCode"]  # fmt: skip
        spec = ConversionSpec(
            external_id, ConversionKind.SALE, Decimal(amount), "EUR", Identity(referral_code=code)
        )
        await ingest.record_conversion(Actor("admin:test"), pk(world.program), spec)
    entries = await board(api, world.admin, world.program, "REVENUE")
    assert summary(entries) == [(1, "Beta", "80.00", False), (2, "Alpha", "12.50", False)]
    counted = await board(api, world.admin, world.program, "CONVERSIONS", period="THIS_MONTH")
    assert summary(counted) == [(1, "Alpha", "1", False), (1, "Beta", "1", False)]


# --- partners -------------------------------------------------------------------------------


async def test_a_partner_sees_names_and_its_own_entry_after_the_top(api: Api, world: World) -> None:
    entries = await board(api, world.token("Delta"), world.program, first=2)
    assert summary(entries) == [
        (1, "Alpha", "300", False),
        (2, "Beta", "200", False),
        (4, "Delta", "50", True),  # appended: three are greater
    ]
    own = {
        "id": world.enrollment("Delta"),
        "referralCode": entries[2]["enrollment"]["referralCode"],
    }
    assert [e["enrollment"] for e in entries] == [None, None, own]  # others' are not its own


async def test_a_partner_without_points_ranks_after_everyone_listed(api: Api, world: World) -> None:
    entries = await board(api, world.token("Echo"), world.program, first=1)
    assert summary(entries) == [(1, "Alpha", "300", False), (5, "Echo", "0", True)]


async def test_a_partner_in_the_top_is_marked_once(api: Api, world: World) -> None:
    entries = await board(api, world.token("Gamma"), world.program)
    assert summary(entries) == [
        (1, "Alpha", "300", False),
        (2, "Beta", "200", False),
        (2, "Gamma", "200", True),
        (4, "Delta", "50", False),
    ]


async def test_anonymized_hides_other_partners_names(api: Api, world: World) -> None:
    await set_visibility(api, world, "ANONYMIZED")
    entries = await board(api, world.token("Delta"), world.program, first=2)
    assert summary(entries) == [
        (1, None, "300", False),
        (2, None, "200", False),
        (4, "Delta", "50", True),
    ]
    assert [e["enrollment"] is None for e in entries] == [True, True, False]
    admin_view = await board(api, world.admin, world.program, first=2)
    assert [e["name"] for e in admin_view] == ["Alpha", "Beta"]


async def test_own_rank_only_answers_the_partners_entry_alone(api: Api, world: World) -> None:
    await set_visibility(api, world, "OWN_RANK_ONLY")
    assert summary(await board(api, world.token("Gamma"), world.program)) == [
        (2, "Gamma", "200", True)
    ]
    assert summary(await board(api, world.token("Echo"), world.program)) == [(5, "Echo", "0", True)]
    admin_view = await board(api, world.admin, world.program)
    assert [e["name"] for e in admin_view] == ["Alpha", "Beta", "Gamma", "Delta"]


async def test_a_partner_sees_nothing_of_a_program_it_is_not_in(api: Api, world: World) -> None:
    assert await board(api, world.token("Zulu"), world.program) == []
    assert await board(api, world.token("Alpha"), world.other) == []
    own = await board(api, world.token("Zulu"), world.other)
    assert summary(own) == [(1, "Zulu", "999", True)]


async def test_a_suspended_enrollment_leaves_the_board(api: Api, world: World) -> None:
    payload = await api.mutate(
        "updateEnrollment",
        {"id": world.enrollment("Alpha"), "status": "SUSPENDED"},
        "enrollment { status }",
        world.admin,
    )
    assert payload["userErrors"] == []
    assert [e["name"] for e in await board(api, world.admin, world.program)] == [
        "Beta",
        "Gamma",
        "Delta",
    ]
    assert await board(api, world.token("Alpha"), world.program) == []


@pytest.mark.parametrize("program", ["UHJvZ3JhbTo5OTk5", "not-an-id", "VGllcjox"])
async def test_unknown_or_malformed_programs_have_no_entries(
    api: Api, world: World, program: str
) -> None:
    # Program:9999, garbage, and Tier:1
    assert await board(api, world.admin, program) == []


# --- tokens ---------------------------------------------------------------------------------


async def app_token(api: Api, user_token: str, scopes: list[str]) -> str:
    payload = await api.mutate(
        "createApiToken", {"name": "board", "scopes": scopes}, "token", user_token
    )
    assert payload["userErrors"] == [], payload
    return str(payload["token"])


async def test_an_admin_app_token_with_reports_read_sees_every_name(api: Api, world: World) -> None:
    await set_visibility(api, world, "OWN_RANK_ONLY")
    token = await app_token(api, world.admin, ["reports:read", "partners:read"])
    entries = await board(api, token, world.program)
    assert [(e["name"], e["isViewer"]) for e in entries] == [
        ("Alpha", False),
        ("Beta", False),
        ("Gamma", False),
        ("Delta", False),
    ]
    assert entries[0]["enrollment"]["id"] == world.enrollment("Alpha")


async def test_a_partners_app_token_sees_as_the_partner(api: Api, world: World) -> None:
    await set_visibility(api, world, "ANONYMIZED")
    token = await app_token(api, world.token("Delta"), ["reports:read"])
    body = await api.post(
        BOARD, {"programId": world.program, "metric": "POINTS", "first": 1}, token
    )
    entries = body["data"]["leaderboard"]
    assert summary(entries) == [(1, None, "300", False), (4, "Delta", "50", True)]
    # another partner's enrollment is null; its own needs partners:read, like every Enrollment
    assert [e["path"] for e in body["errors"]] == [["leaderboard", 1, "enrollment"]]
    assert entries[0]["enrollment"] is None
    reader = await app_token(api, world.token("Delta"), ["reports:read", "partners:read"])
    entries = await board(api, reader, world.program, first=1)
    assert [e["enrollment"] and e["enrollment"]["id"] for e in entries] == [
        None,
        world.enrollment("Delta"),
    ]


async def test_without_reports_read_or_a_credential_the_board_is_refused(
    api: Api, world: World
) -> None:
    token = await app_token(api, world.admin, ["programs:read", "partners:read"])
    assert await errors(api, token, programId=world.program) == ["FORBIDDEN"]
    assert await errors(api, None, programId=world.program) == ["UNAUTHENTICATED"]


# --- the program's setting ------------------------------------------------------------------


async def test_leaderboard_visibility_is_set_at_creation_and_kept_by_other_updates(
    api: Api, world: World
) -> None:
    created = await api.mutate(
        "createProgram",
        {
            "name": "Quiet",
            "currency": "EUR",
            "destinationUrl": "https://quiet.example/",
            "leaderboardVisibility": "OWN_RANK_ONLY",
        },
        "program { id leaderboardVisibility }",
        world.admin,
    )
    assert created["userErrors"] == []
    assert created["program"]["leaderboardVisibility"] == "OWN_RANK_ONLY"
    renamed = await api.mutate(
        "updateProgram",
        {"id": created["program"]["id"], "name": "Still quiet"},
        "program { leaderboardVisibility }",
        world.admin,
    )
    assert renamed["program"]["leaderboardVisibility"] == "OWN_RANK_ONLY"
    acme = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { leaderboardVisibility } } }",
        {"id": world.program},
        world.token("Alpha"),
    )
    assert acme["node"]["leaderboardVisibility"] == "NAMES"  # the default
