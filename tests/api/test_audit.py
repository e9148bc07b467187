"""Every admin mutation is in the audit log: who, what, when, before and after."""

from __future__ import annotations

from tests.helpers import Api

AUDIT = """query($entityId: ID, $first: Int) { auditLog(entityId: $entityId, first: $first) {
  totalCount edges { node { id at actor action entityId reason before after } } } }"""


async def test_admin_changes_are_recorded_with_before_and_after(api: Api) -> None:
    admin = await api.admin_token("boss@example.com")
    program_id = await api.program(admin, name="Old name")
    await api.mutate(
        "updateProgram", {"id": program_id, "name": "New name"}, "program { id }", admin
    )
    log = (await api.data(AUDIT, {"entityId": program_id}, admin))["auditLog"]
    assert log["totalCount"] == 2
    update, create = (e["node"] for e in log["edges"])  # newest first
    assert update["action"] == "updateProgram"
    assert update["actor"] == "admin:boss@example.com"
    assert update["entityId"] == program_id
    assert update["before"]["name"] == "Old name"
    assert update["after"]["name"] == "New name"
    assert create["action"] == "createProgram"
    assert create["before"] is None
    assert create["after"]["currency"] == "EUR"


async def test_every_foundation_mutation_is_audited(api: Api) -> None:
    admin = await api.admin_token()
    program_id = await api.program(admin)
    await api.mutate(
        "createTier", {"programId": program_id, "name": "G", "rank": 1}, "tier { id }", admin
    )
    partner = await api.partner(admin, "P", "p@example.com", program_id)
    created = await api.mutate(
        "createApiToken", {"name": "ci", "scopes": ["reports:read"]}, "token apiToken { id }", admin
    )
    await api.mutate("revokeApiToken", {"id": created["apiToken"]["id"]}, "apiToken { id }", admin)
    await api.mutate("updatePartner", {"id": partner["id"], "name": "Q"}, "partner { id }", admin)
    log = (await api.data(AUDIT, {"first": 100}, admin))["auditLog"]
    actions = sorted(e["node"]["action"] for e in log["edges"])
    assert actions == sorted(
        [
            "createProgram",
            "createTier",
            "createPartner",
            "enrollPartner",
            "createApiToken",
            "revokeApiToken",
            "updatePartner",
        ]
    )
    assert created["token"].startswith("pgt_")
    assert created["token"] not in str(log)  # the secret is never written down


async def test_refused_mutations_leave_no_audit_entry(api: Api) -> None:
    admin = await api.admin_token()
    await api.mutate(
        "createProgram",
        {"name": "X", "currency": "NOPE", "destinationUrl": "https://a.example/"},
        "program { id }",
        admin,
    )
    log = (await api.data(AUDIT, {}, admin))["auditLog"]
    assert log["totalCount"] == 0


async def test_audit_entries_are_nodes(api: Api) -> None:
    admin = await api.admin_token()
    await api.program(admin)
    log = (await api.data(AUDIT, {}, admin))["auditLog"]
    entry_id = log["edges"][0]["node"]["id"]
    data = await api.data(
        "query($id: ID!) { node(id: $id) { ... on AuditEntry { action } } }",
        {"id": entry_id},
        admin,
    )
    assert data["node"] == {"action": "createProgram"}
