"""Times as the store reports them: ISO 8601 strings in UTC, the same on every backend."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_timestamp(epoch_seconds: int | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string (None stays None).

    >>> iso_timestamp(0)
    '1970-01-01T00:00:00+00:00'
    """
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(int(epoch_seconds), tz=UTC).isoformat()


def iso_datetime(value: datetime | str | None) -> str | None:
    """A stored datetime as ISO 8601 UTC; SQLite hands back naive UTC values, PostgreSQL aware ones.

    >>> iso_datetime(datetime(2024, 5, 1, 12, 0))
    '2024-05-01T12:00:00+00:00'
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
