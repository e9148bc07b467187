"""The enums of commissions, apart so that Enrollment.commissions can name one without
importing the commission types (which import Enrollment)."""

from __future__ import annotations

import strawberry

from domain.commissions import models

CommissionKind = models.CommissionKind
strawberry.enum(CommissionKind, description="What a ledger entry is for.")
CommissionStatus = models.CommissionStatus
strawberry.enum(
    CommissionStatus,
    description="Where a ledger entry stands: PENDING (in its hold), APPROVED, PAID, REVERSED "
    "(offset in full by a later entry) or REJECTED (by an admin, with a reason).",
)
PayoutStatus = models.PayoutStatus
strawberry.enum(PayoutStatus, description="Whether a payout batch was paid.")
