from __future__ import annotations

from portal.demo import ADMIN_EMAIL, DEMO_PROGRAM, seed_demo
from tests.helpers import Api


async def test_demo_credentials_log_in_and_show_the_demo_program(api: Api) -> None:
    first = await seed_demo()
    second = await seed_demo()  # a restart: same data, new passwords
    assert first.admin_password != second.admin_password
    admin = (await api.login(ADMIN_EMAIL, second.admin_password))["access_token"]
    data = await api.data(
        "{ programs { totalCount edges { node { name tiers { name } "
        "enrollments { totalCount } } } } }",
        token=admin,
    )
    program = data["programs"]["edges"][0]["node"]
    assert data["programs"]["totalCount"] == 1
    assert program["name"] == DEMO_PROGRAM
    assert [t["name"] for t in program["tiers"]] == ["Bronze", "Silver", "Gold"]
    assert program["enrollments"]["totalCount"] == 3
    partner = (await api.login(second.partner_email, second.partner_password))["access_token"]
    mine = await api.data(
        "{ viewer { kind partner { enrollments { referralCode } } } }", token=partner
    )
    assert mine["viewer"] == {
        "kind": "PARTNER",
        "partner": {"enrollments": [{"referralCode": "NORTHWIND"}]},
    }
    stale = await api.client.post(
        "/auth/login", json={"email": ADMIN_EMAIL, "password": first.admin_password}
    )
    assert stale.status_code == 401


async def test_healthz_answers_when_the_database_answers(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
