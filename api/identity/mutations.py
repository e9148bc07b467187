"""Mutations of API tokens: a logged-in admin or partner user manages its tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.errors import UserError, attempt
from api.identity.types import ApiToken
from api.permissions import IsUser
from api.relay import parse_id
from domain.identity import models, services


@strawberry.input
class CreateApiTokenInput:
    name: str
    scopes: list[str] = strawberry.field(
        description="programs:read programs:write partners:read partners:write tracking:write "
        "reports:read; a partner's token may have only the read scopes."
    )
    expires_at: datetime | None = None


@strawberry.input
class RevokeApiTokenInput:
    id: strawberry.ID


@strawberry.type
class CreateApiTokenPayload:
    token: str | None = strawberry.field(description="The secret: shown this once, never again.")
    api_token: ApiToken | None
    user_errors: list[UserError]


@strawberry.type
class ApiTokenPayload:
    api_token: ApiToken | None
    user_errors: list[UserError]


async def _revoke(info: Info, data: RevokeApiTokenInput) -> models.ApiToken:
    token_id = parse_id(data.id, "ApiToken", ["id"])
    return await services.revoke_api_token(info.context.principal.actor(), token_id)


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(
        permission_classes=[IsUser],
        description="A token for an app; made by a partner user, it acts for that partner.",
    )
    async def create_api_token(
        self, info: Info, input: CreateApiTokenInput
    ) -> CreateApiTokenPayload:
        created, errors = await attempt(
            services.create_api_token(
                info.context.principal.actor(), input.name, input.scopes, input.expires_at
            )
        )
        if created is None:
            return CreateApiTokenPayload(token=None, api_token=None, user_errors=errors)
        return CreateApiTokenPayload(
            token=created.secret, api_token=ApiToken.from_model(created.token), user_errors=[]
        )

    @strawberry.mutation(permission_classes=[IsUser], description="Revoke a token at once.")
    async def revoke_api_token(self, info: Info, input: RevokeApiTokenInput) -> ApiTokenPayload:
        row, errors = await attempt(_revoke(info, input))
        return ApiTokenPayload(
            api_token=ApiToken.from_model(row) if row else None, user_errors=errors
        )
