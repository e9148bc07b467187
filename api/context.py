"""The typed per-request context: the principal, the loaders and the request id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry

from api.loaders import Loaders
from api.principal import Principal


@dataclass
class Context:
    principal: Principal
    request_id: str
    # the service's public base URL (settings.public_url): links shown to clients start with it
    public_url: str = "http://localhost:8000"
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.principal)


Info: TypeAlias = strawberry.Info[Context, None]
