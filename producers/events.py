"""The Segment event spec, checked at the door.

Every producer — the Python API, the HTTP server and replay — turns what it was
given into a normalised event with :func:`validate_event`, or refuses it with
:class:`InvalidEvent` naming the field (docs/design.md, guarantee 8).  A normalised
event is a plain JSON-ready dict:

* ``type`` is one of :data:`EVENT_TYPES`;
* ``userId`` / ``anonymousId`` are strings (numbers are turned into strings, as
  Segment does), and at least one of them is there;
* ``messageId`` is there (a uuid4 is made when the client sent none);
* ``timestamp`` and ``receivedAt`` are ISO 8601 strings in UTC ending in ``Z``;
  ``timestamp`` is corrected for the client's clock skew when it sent ``sentAt``;
* ``traits`` / ``properties`` / ``context`` / ``integrations`` are objects;
  a batch's shared ``context`` and ``integrations`` are merged in (the event's
  own keys win);
* ``writeKey`` is never kept: it is a secret and must not reach the queue.

Other keys the client sent (``channel``, ``version``, ``name``, …) are kept as
they were: the mappings may read them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from datetime import datetime, timezone
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate

#: The Segment spec's six calls.
EVENT_TYPES = ("identify", "track", "group", "page", "screen", "alias")

#: Segment's Tracking API refuses events over 32 KB; we keep the same limit so
#: that a pipeline that works here also works against Segment, and so that one
#: event can never be a large share of a Redis queue message.
MAX_EVENT_BYTES = 32 * 1024

#: How deep an event may nest objects and arrays; Segment's own traits and
#: properties rarely go past 4, and a worker must be able to decode it.
MAX_DEPTH = 32

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

#: The fields of the batch request applied to every event in it.
BATCH_SHARED = ("context", "integrations", "sentAt")

#: The ``field`` of an InvalidEvent about the event as a whole (its type or size),
#: distinct from a track's ``event`` field.
WHOLE_EVENT = "(event)"

#: Each type's required field besides the person (Segment's spec).
_REQUIRED_BY_TYPE = {"track": "event", "group": "groupId", "alias": "previousId"}


class InvalidEvent(ValueError):
    """An event breaks the Segment spec; ``field`` names what is wrong.

    ``str(exc)`` is the message, which always names the field too, so that it
    can go straight into an HTTP error body or a replay report.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Identifier(fields.Field):
    """A string id; numbers become strings, as Segment's libraries and API do."""

    default_error_messages = {"invalid": "must be a string or a number"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        # bool is an int subclass, but ``true`` is no one's id.
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error("invalid")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)


class _Timestamp(fields.Field):
    """An ISO 8601 date-time (a ``datetime`` from the Python API also does)."""

    default_error_messages = {
        "invalid": "must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z",
        "out_of_range": "is out of range: its time in UTC must fall in years 1 to 9999",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str):
            try:
                # Python 3.11 reads Z, +0530, any fraction length, date-only.
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.make_error("invalid") from None
        else:
            raise self.make_error("invalid")
        # Segment reads an offset-less time as UTC.
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
        try:
            moment.astimezone(timezone.utc)  # 9999-12-31T23:00-01:00 is past year 9999 in UTC
        except OverflowError:
            raise self.make_error("out_of_range") from None
        return moment


def _object(**kwargs: Any) -> fields.Dict:
    kwargs.setdefault("error_messages", {"invalid": "must be an object"})
    return fields.Dict(**kwargs)


def _string(**kwargs: Any) -> fields.String:
    kwargs.setdefault("error_messages", {"invalid": "must be a string"})
    return fields.String(**kwargs)


class EventSchema(Schema):
    """The shape of one Segment event; rules across fields live in validate_event."""

    class Meta:
        # Keep what we do not know: Segment events carry many optional fields.
        unknown = INCLUDE

    type = _string(
        required=True,
        validate=validate.OneOf(EVENT_TYPES, error="{input!r} is not one of " + ", ".join(EVENT_TYPES)),
        error_messages={"required": "is required (one of " + ", ".join(EVENT_TYPES) + ")", "invalid": "must be a string"},
    )
    userId = _Identifier(allow_none=True)
    anonymousId = _Identifier(allow_none=True)
    messageId = _Identifier(allow_none=True)
    previousId = _Identifier(allow_none=True)
    groupId = _Identifier(allow_none=True)
    event = _string(allow_none=True)
    name = _string(allow_none=True)
    category = _string(allow_none=True)
    timestamp = _Timestamp(allow_none=True)
    originalTimestamp = _Timestamp(allow_none=True)
    sentAt = _Timestamp(allow_none=True)
    traits = _object(allow_none=True)
    properties = _object(allow_none=True)
    context = _object(allow_none=True)
    integrations = _object(allow_none=True)


_SCHEMA = EventSchema()


def validate_event(raw: Any, *, received_at: datetime | None = None, batch_context: dict | None = None) -> dict:
    """Check one Segment event and return it normalised (see the module docstring).

    ``received_at`` is when the door got it (now by default).  ``batch_context``
    holds the shared fields of the batch request the event came in —
    ``context``, ``integrations`` and ``sentAt`` — merged into the event, whose
    own keys win.  Raises :class:`InvalidEvent` naming the first bad field.
    """
    if not isinstance(raw, dict):
        raise InvalidEvent(WHOLE_EVENT, f"the event must be a JSON object, not {_json_type(raw)}")
    merged = _merge_batch(raw, batch_context) if batch_context else raw
    check_values(merged)
    # The size that counts is the stored one: a batch's shared context is merged into each event.
    _check_size(merged)
    try:
        loaded = _SCHEMA.load(merged)
    except ValidationError as exc:
        raise _first_error(exc.normalized_messages()) from None
    try:
        return _normalise(loaded, received_at or datetime.now(timezone.utc))
    except OverflowError:  # a sentAt far from the timestamp moves it past year 9999
        raise InvalidEvent("timestamp", "timestamp: out of range once corrected by sentAt") from None


def check_values(value: Any, path: str = "", depth: int = 0) -> None:
    """Refuse what a worker could not read back or Intercom could not hold, naming the field.

    Everything accepted must be delivered or dead-lettered with a reason,
    never dropped: a worker cannot decode a message nested hundreds deep, a
    lone surrogate (half of a cut emoji, as JavaScript writes it) is not
    UTF-8, and an integer past 64 bits or a NaN is no JSON number Intercom
    takes.
    """
    where = path or WHOLE_EVENT
    if depth > MAX_DEPTH:
        raise InvalidEvent(where, f"{where}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            check_values(key, path, depth)  # a key is text too
            check_values(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, f"{path}[{index}]", depth + 1)
    elif isinstance(value, str):
        if _LONE_SURROGATE.search(value):
            raise InvalidEvent(where, f"{where}: holds a lone UTF-16 surrogate (a cut emoji?), which is not text")
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidEvent(where, f"{where}: the integer does not fit in 64 bits")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(where, f"{where}: NaN and infinities are not JSON numbers")


def _check_size(raw: dict) -> None:
    """Refuse an event whose JSON is over :data:`MAX_EVENT_BYTES`."""
    size = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(WHOLE_EVENT, f"the event is {size} bytes, over the limit of {MAX_EVENT_BYTES} bytes (32 KB)")


def _merge_batch(raw: dict, shared: dict) -> dict:
    """The event with the batch's context/integrations under its own, and its sentAt."""
    merged = dict(raw)
    for key in ("context", "integrations"):
        outer = shared.get(key)
        if outer is None:
            continue
        if not isinstance(outer, dict):
            raise InvalidEvent(key, f"{key}: the batch's {key} must be an object")
        inner = raw.get(key)
        merged[key] = {**outer, **inner} if isinstance(inner, dict) else (outer if inner is None else inner)
    if shared.get("sentAt") is not None and raw.get("sentAt") is None:
        merged["sentAt"] = shared["sentAt"]
    return merged


def _first_error(messages: dict) -> InvalidEvent:
    """The first marshmallow error as an InvalidEvent naming its field."""
    name, problem = next(iter(messages.items()))
    while isinstance(problem, dict):  # nested: {"context": {"traits": [...]}}
        key, problem = next(iter(problem.items()))
        name = f"{name}.{key}"
    text = problem[0] if isinstance(problem, list) else str(problem)
    if text == "Unknown field.":
        text = "is not allowed"
    return InvalidEvent(name, f"{name}: {text}")


def _normalise(event: dict, received_at: datetime) -> dict:
    """Apply the rules across fields to a schema-checked event."""
    event.pop("writeKey", None)
    for key in ("userId", "anonymousId", "messageId", "groupId", "previousId"):
        if event.get(key) in ("", None):
            event.pop(key, None)  # an empty id is no id
    _check_required(event)
    context = event.get("context")
    if context is not None and not isinstance(context.get("traits", {}), dict):
        raise InvalidEvent("context.traits", "context.traits: must be an object")
    if "messageId" not in event:
        event["messageId"] = str(uuid.uuid4())
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=timezone.utc)
    event["timestamp"] = _iso(_corrected_time(event, received_at))
    event["receivedAt"] = _iso(received_at)
    for key in ("originalTimestamp", "sentAt"):
        if isinstance(event.get(key), datetime):
            event[key] = _iso(event[key])
        else:
            event.pop(key, None)
    return event


def _check_required(event: dict) -> None:
    """The person, and each type's own required field."""
    if "userId" not in event and "anonymousId" not in event:
        raise InvalidEvent("userId", "userId: userId or anonymousId is required")
    needed = _REQUIRED_BY_TYPE.get(event["type"])
    if needed and not event.get(needed):
        what = "a non-empty string" if needed == "event" else "required"
        raise InvalidEvent(needed, f"{needed}: is required for a {event['type']} call ({what})")


def _corrected_time(event: dict, received_at: datetime) -> datetime:
    """When the event happened, on the server's clock.

    A device's clock may be off by hours.  When the client says when it sent
    the event (``sentAt``, its clock) we know how long the event waited on the
    client, and place it that long before ``receivedAt`` (our clock), as
    Segment does:  timestamp = receivedAt − (sentAt − originalTimestamp).
    ``originalTimestamp`` is the client's time of the event: the one sent under
    that name, else ``timestamp`` as sent.  With no client time at all the
    event happened "now": at ``receivedAt``.
    """
    original = event.get("originalTimestamp") or event.get("timestamp")
    if original is None:
        return received_at
    sent_at = event.get("sentAt")
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


@functools.lru_cache(maxsize=1024)
def _iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``, as Segment writes times.

    Cached: a batch's events share receivedAt and sentAt, and often timestamps.
    """
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def _json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
