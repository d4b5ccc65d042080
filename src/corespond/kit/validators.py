"""Field types and validators every API shares (any domain's schemas may use them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, StringConstraints

# An EIDO incident id is a URN, often longer than a CAD's own number.
INCIDENT_NUMBER_MAX = 255
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it here with a field name, not later.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


def within_service_range(value: datetime) -> datetime:
    """A time between 1970 and 2200, in UTC (else a ``ValueError`` naming the range)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("date-time is out of range") from exc
    if not EARLIEST <= utc < LATEST:
        raise ValueError("date-time must be between 1970 and 2200")
    return utc


NoNul = AfterValidator(_no_nul)

# A time in a query string: with an offset, within 1970-2200, normalised to UTC.
QueryTimestamp = Annotated[AwareDatetime, AfterValidator(within_service_range)]

# Why a person did something (a supervisor's reason, an acknowledgement's note): kept with
# the change and on the audit log.
ReasonText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300), NoNul
]
