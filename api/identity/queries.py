"""The viewer: who is calling."""

from __future__ import annotations

import strawberry

from api.identity.types import Viewer


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The caller; the one field anonymous callers may ask.")
    def viewer(self) -> Viewer:
        return Viewer()
