"""The one place the domain asks for the time (aware UTC datetimes only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = EPOCH.replace(tzinfo=None)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(at: datetime) -> int:
    """An instant as integer microseconds since the Unix epoch (exact); a naive datetime is
    taken as UTC. What bulk reads, the batch engine and `Touchpoint.occurred_us` compute with."""
    return (at - (_EPOCH_NAIVE if at.tzinfo is None else EPOCH)) // _MICROSECOND


def from_epoch_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)
