from __future__ import annotations

from tests.helpers import Api


async def test_admin_creates_program_and_reads_it_back(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin, name="Acme Cloud")
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Program { name currency } } }",
        {"id": program_id},
        admin,
    )
    assert data["node"] == {"name": "Acme Cloud", "currency": "EUR"}


async def test_anonymous_viewer_is_anonymous(api: Api) -> None:
    data = await api.data("{ viewer { kind email partner { id } } }")
    assert data["viewer"] == {"kind": "ANONYMOUS", "email": None, "partner": None}
