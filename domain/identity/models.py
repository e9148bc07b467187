from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from domain.partners.models import Partner


class UserKind(StrEnum):
    ADMIN = "ADMIN"
    PARTNER = "PARTNER"


class User(Model):
    """A person who logs in: an admin, or one of a partner organization's users."""

    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)  # stored lower-case
    password_hash = fields.CharField(max_length=255)
    kind = fields.CharEnumField(UserKind, max_length=16)
    partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "partnergraph.Partner", related_name="users", null=True, on_delete=fields.CASCADE
    )
    partner_id: int | None
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class RefreshToken(Model):
    """One refresh token of a session (a session is a family that rotates on every use)."""

    id = fields.IntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "partnergraph.User", related_name="refresh_tokens", on_delete=fields.CASCADE
    )
    user_id: int
    token_hash = fields.CharField(max_length=64, unique=True)
    family = fields.CharField(max_length=32, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_tokens"


class LoginFailure(Model):
    """A failed login, counted per account and per IP to throttle guessing across workers."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=128)
    at = fields.DatetimeField()

    class Meta:
        table = "login_failures"
        indexes = (("key", "at"),)


class ApiToken(Model):
    """A token for a third-party app. Only a SHA-256 of its secret is kept."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    token_hash = fields.CharField(max_length=64, unique=True)
    prefix = fields.CharField(max_length=16)
    last4 = fields.CharField(max_length=4)
    scopes = fields.JSONField[list[str]]()
    partner: fields.ForeignKeyNullableRelation[Partner] = fields.ForeignKeyField(
        "partnergraph.Partner", related_name="api_tokens", null=True, on_delete=fields.CASCADE
    )
    partner_id: int | None
    created_by: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "partnergraph.User", related_name="api_tokens", null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_tokens"
