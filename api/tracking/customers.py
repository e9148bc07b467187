"""The Customer type: the merchant's customer as identifyCustomer knows it.

Customers are the merchant's data: admins and admin-made APP tokens (reports:read to read one
by `node`) see them; partners never do, nor tokens a partner made (a partner learns which of
its touchpoints counted, never who its customers are).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from api import policy
from api.context import Context, Info
from api.partners.types import Enrollment
from api.principal import Principal
from api.relay import Node, to_global_id
from domain.tracking import models, stitching


def can_see_customers(principal: Principal) -> bool:
    return policy.can_read(principal, "Customer") and policy.partner_scope(principal) is None


@strawberry.type(description="The merchant's customer, by the merchant's own ID.")
class Customer(Node):
    external_id: str = strawberry.field(description="The merchant's ID, unique in the program.")
    email: str | None = strawberry.field(description="Lower-case, if the merchant gave one.")
    created_at: datetime
    first_enrollment_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, row: models.Customer) -> Customer:
        return cls(
            id=to_global_id("Customer", row.pk),
            external_id=row.external_id,
            email=row.email,
            created_at=row.created_at,
            first_enrollment_pk=row.first_enrollment_id,
        )

    @strawberry.field(
        description="The enrollment of its earliest counted touchpoint: who referred it first."
    )
    async def first_enrollment(self, info: Info) -> Enrollment | None:
        if self.first_enrollment_pk is None:
            return None
        row = await info.context.loaders.enrollment_by_id.load(self.first_enrollment_pk)
        return None if row is None else Enrollment.from_model(row)


async def fetch_customer(context: Context, pk: int) -> Node | None:
    """`node(id:)` for a Customer: not found for whoever may not see customers."""
    if not can_see_customers(context.principal):
        return None
    row = (await stitching.customers_by_ids([pk]))[0]
    return None if row is None else Customer.from_model(row)
