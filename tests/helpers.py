"""Helpers for tests that talk to the service over HTTP, as clients do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from api.relay import from_global_id
from domain.identity import services as identity
from domain.identity.models import UserKind

PASSWORD = "correct horse battery staple"


@dataclass
class Api:
    client: httpx.AsyncClient

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST a GraphQL operation; answers the decoded body (status must be 200)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """POST and insist there were no errors; answers `data`."""
        body = await self.post(query, variables, token)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def mutate(
        self, name: str, input_: dict[str, Any], selection: str, token: str
    ) -> dict[str, Any]:
        """Run `name(input:)` selecting `selection` and `userErrors`; answers the payload."""
        query = (
            f"mutation($input: {name[0].upper()}{name[1:]}Input!) {{ {name}(input: $input) "
            f"{{ {selection} userErrors {{ field message code }} }} }}"
        )
        data = await self.data(query, {"input": input_}, token)
        payload: dict[str, Any] = data[name]
        return payload

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.client.post(
            "/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def admin_token(self, email: str = "admin@example.com") -> str:
        await identity.create_user(email, PASSWORD, UserKind.ADMIN)
        return str((await self.login(email))["access_token"])

    async def partner(
        self, admin: str, name: str, email: str, program_id: str | None = None
    ) -> dict[str, Any]:
        """A partner with a user (password PASSWORD), enrolled in `program_id` if given.

        Answers {"id", "token", "enrollmentId"}.
        """
        payload = await self.mutate(
            "createPartner",
            {"name": name, "email": email, "password": PASSWORD},
            "partner { id }",
            admin,
        )
        assert payload["userErrors"] == [], payload
        result: dict[str, Any] = {"id": payload["partner"]["id"], "enrollmentId": None}
        if program_id is not None:
            enrolled = await self.mutate(
                "enrollPartner",
                {"programId": program_id, "partnerId": result["id"]},
                "enrollment { id }",
                admin,
            )
            assert enrolled["userErrors"] == [], enrolled
            result["enrollmentId"] = enrolled["enrollment"]["id"]
        result["token"] = (await self.login(email))["access_token"]
        return result

    async def program(self, admin: str, name: str = "Acme", currency: str = "EUR") -> str:
        payload = await self.mutate(
            "createProgram",
            {"name": name, "currency": currency, "destinationUrl": "https://acme.example/"},
            "program { id }",
            admin,
        )
        assert payload["userErrors"] == [], payload
        return str(payload["program"]["id"])


def pk(global_id: str) -> int:
    """The primary key inside a global ID (tests build rows with the ORM beside the API)."""
    parsed = from_global_id(global_id)
    assert parsed is not None
    return parsed[1]
