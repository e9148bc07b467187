"""Declared permissions on fields; they ask the policy, which raises the coded error."""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from api import policy
from api.context import Info
from api.errors import unauthenticated


class IsAuthenticated(BasePermission):
    message = "authentication required"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if info.context.principal.is_anonymous:
            raise unauthenticated()
        return True


class IsAdmin(BasePermission):
    message = "admins only"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        policy.ensure_admin(info.context.principal)
        return True


class IsUser(BasePermission):
    message = "logged-in users only"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        policy.ensure_user(info.context.principal)
        return True


def can_read(type_name: str) -> type[BasePermission]:
    class CanRead(BasePermission):
        message = f"not allowed: reading {type_name} objects"

        def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            policy.ensure_read(info.context.principal, type_name)
            return True

    CanRead.__name__ = f"CanRead{type_name}"
    return CanRead


def can_write(scope: str) -> type[BasePermission]:
    class CanWrite(BasePermission):
        message = f"not allowed: needs {scope}"

        def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
            policy.ensure_write(info.context.principal, scope)
            return True

    CanWrite.__name__ = "CanWrite" + "".join(p.title() for p in scope.replace(":", "_").split("_"))
    return CanWrite
