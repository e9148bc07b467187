"""GraphQL types of identity: the viewer and API tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.partners.types import Partner
from api.principal import PrincipalKind as PrincipalKindEnum
from api.relay import Connection, Node, connection, page_request, to_global_id
from domain.identity import models
from domain.identity import services as identity
from domain.pagination import Page

PrincipalKind = PrincipalKindEnum
strawberry.enum(PrincipalKind, description="What kind of caller this is.")


@strawberry.type(description="A token for a third-party app. Its secret is shown only once.")
class ApiToken(Node):
    name: str
    scopes: list[str]
    prefix: str = strawberry.field(description="The token's first characters, to recognise it.")
    last4: str = strawberry.field(description="The token's last four characters.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = strawberry.field(
        description="When it last authenticated, to the minute."
    )
    revoked_at: datetime | None
    partner_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.ApiToken) -> ApiToken:
        return cls(
            id=to_global_id("ApiToken", row.pk),
            name=row.name,
            scopes=list(row.scopes),
            prefix=row.prefix,
            last4=row.last4,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
            partner_pk=row.partner_id,
        )

    @strawberry.field(description="The partner it acts for; null for an admin's token.")
    async def partner(self, info: Info) -> Partner | None:
        if self.partner_pk is None:
            return None
        row = await info.context.loaders.partner_by_id.load(self.partner_pk)
        return Partner.from_model(row) if row is not None else None


@strawberry.type(description="The caller: who it is and what it may do.")
class Viewer:
    @strawberry.field
    def kind(self, info: Info) -> PrincipalKind:
        return info.context.principal.kind

    @strawberry.field(description="What the caller may do (an admin has every scope).")
    def scopes(self, info: Info) -> list[str]:
        return info.context.principal.granted_scopes()

    @strawberry.field
    def email(self, info: Info) -> str | None:
        return info.context.principal.email

    @strawberry.field(description="The partner the caller acts for, if any.")
    async def partner(self, info: Info) -> Partner | None:
        partner_id = info.context.principal.partner_id
        if partner_id is None:
            return None
        row = await info.context.loaders.partner_by_id.load(partner_id)
        return Partner.from_model(row) if row is not None else None

    @strawberry.field(description="The caller's API tokens (an admin: the admins' tokens).")
    async def api_tokens(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[ApiToken]:
        principal = info.context.principal
        if principal.kind not in (PrincipalKindEnum.ADMIN, PrincipalKindEnum.PARTNER):
            return connection(_EMPTY, ApiToken.from_model, False)
        page = await identity.list_api_tokens(principal.partner_id, page_request(first, after))
        return connection(page, ApiToken.from_model, after is not None)


async def _zero() -> int:
    return 0


_EMPTY: Page[models.ApiToken] = Page(items=[], has_next=False, count=_zero)
