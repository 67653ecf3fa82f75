"""Timestamps as Intercom wants them: integer Unix seconds.

Segment events carry ISO 8601 strings (``timestamp``, ``traits.createdAt``), but
traits set by hand are often Unix seconds, sometimes as a string, sometimes in
JavaScript's milliseconds.  :func:`to_unix_seconds` accepts all of these and
refuses everything else with a message that names the field, so a dead-lettered
event says exactly what was wrong with it.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone

#: Above this a number is taken to be milliseconds, not seconds.  1e11 seconds
#: is the year 5138, which no real event carries, while 1e11 milliseconds is
#: only March 1973: every millisecond timestamp of this century is far above it
#: (JavaScript's ``Date.now()`` is ~1.7e12), and every seconds timestamp below.
MILLISECONDS_THRESHOLD = 1e11

# A plain decimal number (what str(int) or str(float) of a Unix time looks like).
# Checked before ISO 8601 so that a digits-only string such as "20240102" is read
# as Unix seconds, the way Segment's libraries would send it, not as a basic date.
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class InvalidTimestamp(ValueError):
    """A value is neither an ISO 8601 date nor Unix seconds; the message names the field."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field}: {value!r} is not an ISO 8601 date or Unix seconds")
        self.field = field
        self.value = value


def to_unix_seconds(value: object, field: str) -> int:
    """Return ``value`` as integer Unix seconds, rounded down.

    Accepts ISO 8601 strings with any offset (``Z``, ``+02:00``, ``+0530``), with
    or without fractions, date-only (midnight UTC), or without an offset (read as
    UTC, as Segment does); and Unix seconds as int, float or numeric string.
    ``field`` names the value in the :class:`InvalidTimestamp` raised otherwise.
    """
    # bool is an int subclass: True must not become 1970-01-01T00:00:01.
    if isinstance(value, bool):
        raise InvalidTimestamp(field, value)
    if isinstance(value, (int, float)):
        return _from_number(value, field, value)
    if isinstance(value, datetime):
        return _from_datetime(value)
    if isinstance(value, date):
        return _from_datetime(datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        return _from_string(value, field)
    raise InvalidTimestamp(field, value)


def _from_string(text: str, field: str) -> int:
    """Parse a numeric string as Unix seconds, anything else as ISO 8601."""
    stripped = text.strip()
    if _NUMBER.fullmatch(stripped):
        return _from_number(float(stripped), field, text)
    try:
        # Python 3.11's fromisoformat reads all of ISO 8601's common forms:
        # Z, +0530, fractions of any length, date-only, week dates.
        parsed = datetime.fromisoformat(stripped)
    except ValueError:
        raise InvalidTimestamp(field, text) from None
    return _from_datetime(parsed)


def _from_number(number: float, field: str, original: object) -> int:
    """Floor a Unix time in seconds, or in milliseconds when it is clearly that."""
    if not math.isfinite(number):
        raise InvalidTimestamp(field, original)
    if abs(number) > MILLISECONDS_THRESHOLD:
        # Floor division keeps an int exact (no float rounding) and floors a float.
        number = number // 1000
    return math.floor(number)


def _from_datetime(moment: datetime) -> int:
    """Whole seconds since the epoch, floored; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # Integer division of timedeltas floors, and avoids float rounding of
    # timestamp() for instants before 1970.
    return (moment - _EPOCH) // timedelta(seconds=1)
