"""Recording events in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from domain.clock import utcnow
from domain.events.models import Event


async def record(
    type_: str,
    data: dict[str, Any],
    *,
    program_id: int | None = None,
    partner_id: int | None = None,
    enrollment_id: int | None = None,
) -> Event:
    """Append one event; call it inside the transaction of the change. `data` is the object
    as the API shows it (camelCase; the API layer's ids are added when it is delivered)."""
    return await Event.create(
        type=type_,
        occurred_at=utcnow(),
        program_id=program_id,
        partner_id=partner_id,
        enrollment_id=enrollment_id,
        data=data,
    )
