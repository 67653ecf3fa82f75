"""Track Event: submit a data event (POST /events) for a user or lead.

Calls per event:

- with user_id (the contact's external_id) or an Intercom id: one POST;
- with only an email: one POST when the email is cached, else a search by
  email first (a lead's events must be sent by Intercom id);
- with none of them: the person's anonymous id, cached by their lead's
  identify, gives the Intercom id; one POST.

Intercom keeps at most 10 metadata keys and no nested JSON; see
:func:`flatten_metadata` for what is kept.  A 404 means the contact does not
exist (yet): ContactNotFound, so the caller parks the event until an identify.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Iterator, Mapping

from marshmallow import fields, validate

from worker.actions.action import Action, field
from worker.actions.common import (
    ActionContext,
    FieldsSchema,
    StrId,
    UnixSeconds,
    follow_gone,
    search_contact,
)
from worker.intercom.errors import ContactNotFound, InvalidPayload, NotFound

#: Intercom ignores metadata keys beyond the first 10 of an event.
MAX_METADATA_KEYS = 10

#: Revenue without a currency is in US dollars, as in Segment's spec.
DEFAULT_CURRENCY = "USD"

#: Properties that become fields of their own, not metadata.
TAKEN_OUT = frozenset({"email", "revenue", "currency"})

IDENTITY_KEYS = ("user_id", "id", "email")


class Fields(FieldsSchema):
    """The mapped fields of Track Event: the event, then who did it (one of user_id, email, id)."""

    event_name = field(fields.String, "the event's name", required=True, default="$.event", validate=validate.Length(min=1))
    created_at = field(UnixSeconds, "when the event happened: ISO 8601 or Unix seconds", required=True, default="$.timestamp")
    user_id = field(StrId, "the external_id of the contact who did it", default="$.userId")
    email = field(fields.String, "the email of the contact who did it (searched for when not cached)", default="$.properties.email")
    id = field(StrId, "the Intercom id of the contact who did it")
    revenue = field(fields.Float, "the amount of money, sent as the metadata's price", default="$.properties.revenue", allow_nan=False)
    currency = field(fields.String, "the revenue's currency (default USD)", default="$.properties.currency")
    metadata = field(
        fields.Dict,
        "the event's properties but email, revenue and currency (fields of their own), flattened to 10 keys (flatten_metadata)",
        default="$.properties",
        keys=fields.String(),
    )


def build_body(fields: dict) -> dict:
    """The body of POST /events for loaded fields (identity as given in the fields)."""
    return _build(fields)[0]


def price_of(fields: dict) -> dict | None:
    """Intercom's money object for the revenue: integer cents, rounded half up."""
    if "revenue" not in fields:
        return None
    # Through str(): 19.99 is 19.989999… as a float, and must still be 1999 cents.
    cents = (Decimal(str(fields["revenue"])) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return {"amount": int(cents), "currency": fields.get("currency") or DEFAULT_CURRENCY}


def flatten_metadata(metadata: Mapping[str, Any], price: dict | None = None) -> tuple[dict, list[str]]:
    """Metadata Intercom accepts, and the names of what had to be left out.

    Kept, in this order, up to 10 keys: ``price`` (from revenue), then the
    event's keys in their own order.  Strings, finite numbers and booleans stay;
    rich links ``{url, value}`` and money objects ``{amount, currency}`` stay as
    objects.  Any other object is flattened one level, ``{"plan": {"name": "pro"}}``
    becoming ``plan_name: "pro"``, since a flat copy keeps the data searchable in
    Intercom where dropping it would lose it.  Nulls, lists and deeper objects are
    left out, as are keys past the tenth; their names (``plan.features``) are
    returned so that the caller can log them.
    """
    kept: dict[str, Any] = {"price": price} if price else {}
    dropped: list[str] = []
    for key, value in metadata.items():
        if key in TAKEN_OUT:
            continue
        for name, item, keep in _entries(str(key), value):
            if keep and name not in kept and len(kept) < MAX_METADATA_KEYS:
                kept[name] = item
            else:
                dropped.append(name)
    return kept, dropped


def perform(ctx: ActionContext, fields: dict) -> dict:
    """Send the event for the contact; returns the Intercom id used, dropped keys and calls."""
    body, dropped = _build(fields)
    if dropped:
        ctx.log.warning(
            "track_event %r: metadata keys left out (Intercom takes 10 flat keys): %s", fields["event_name"], ", ".join(dropped)
        )
    contact_id = _resolve(ctx, fields)
    if contact_id is not None:
        body = {**{k: v for k, v in body.items() if k not in IDENTITY_KEYS}, "id": contact_id}
    _send(ctx, body, fields, contact_id)
    return {"contact_id": contact_id, "user_id": fields.get("user_id"), "dropped_metadata": dropped, "calls": ctx.calls}


def _build(fields: dict) -> tuple[dict, list[str]]:
    """The request body and the metadata keys left out of it."""
    metadata, dropped = flatten_metadata(fields.get("metadata") or {}, price_of(fields))
    body: dict[str, Any] = {"event_name": fields["event_name"], "created_at": fields["created_at"]}
    identity = next((key for key in IDENTITY_KEYS if key in fields), None)
    if identity:
        body[identity] = fields[identity]
    if metadata:
        body["metadata"] = metadata
    return body, dropped


def _entries(key: str, value: Any) -> Iterator[tuple[str, Any, bool]]:
    """(name, value, keep) for one metadata item, flattening one level of objects."""
    if _is_scalar(value) or _is_intercom_object(value):
        yield key, value, True
    elif isinstance(value, Mapping) and value:
        for child, inner in value.items():
            keep = _is_scalar(inner)
            yield (f"{key}_{child}" if keep else f"{key}.{child}"), inner, keep
    else:
        yield key, value, False


def _is_scalar(value: Any) -> bool:
    """A string, boolean or finite number (NaN and infinities are not JSON)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int))


def _is_intercom_object(value: Any) -> bool:
    """A rich link {url, value} or a money object {amount, currency}."""
    if not isinstance(value, Mapping):
        return False
    if set(value) == {"url", "value"}:
        return all(isinstance(v, str) for v in value.values())
    return (
        set(value) == {"amount", "currency"}
        and isinstance(value["amount"], int)
        and not isinstance(value["amount"], bool)
        and isinstance(value["currency"], str)
    )


def _resolve(ctx: ActionContext, fields: dict) -> str | None:
    """The Intercom id to send the event by, or None when user_id is enough."""
    if "user_id" in fields:
        return None
    if "id" in fields:
        return fields["id"]
    if "email" in fields:
        return _by_email(ctx, fields["email"])
    if not ctx.anonymous_id:
        raise InvalidPayload("user_id", "one of user_id, email or id is required")
    cached = ctx.contacts.get(anonymous_id=ctx.anonymous_id)
    if cached is None:
        raise ContactNotFound(f"no contact is known for anonymous id {ctx.anonymous_id!r} yet")
    return cached.id


def _by_email(ctx: ActionContext, email: str) -> str:
    """The contact id for an email: cached, else searched (a user preferred over a lead)."""
    cached = ctx.contacts.get(email=email)
    if cached is not None:
        return cached.id
    found = search_contact(ctx, "email", email)
    if found is None:
        raise ContactNotFound(f"no Intercom contact has the email {email!r} yet")
    ctx.contacts.remember(found["id"], found.get("role") or "user", email=email)
    return found["id"]


def _send(ctx: ActionContext, body: dict, fields: dict, contact_id: str | None) -> None:
    """POST the event; a 404 means the contact is unknown: forget it, park the event.

    A contact an admin merged into a user is followed (POST /events answers
    404 for it; a lookup finds the 410 and its Link): the event goes to the survivor.
    """
    try:
        ctx.call(ctx.client.create_event, body)
    except NotFound as exc:
        stale = contact_id or _cached_id(ctx, fields.get("user_id"))
        # Only an event sent by Intercom id can name a merged lead: a user is never merged away.
        survivor = follow_gone(ctx, stale, exc, look_up=contact_id is not None) if stale else None
        if survivor is None:
            raise ContactNotFound(str(exc), exc.status, exc.body, exc.code) from exc
        _send(ctx, {**body, "id": survivor}, fields, survivor)


def _cached_id(ctx: ActionContext, external_id: str | None) -> str | None:
    """The contact id cached for an external_id, if any."""
    cached = ctx.contacts.get(external_id=external_id) if external_id else None
    return cached.id if cached else None


ACTION = Action(
    name="track_event",
    title="Track Event",
    lane_code="T",
    fields=Fields,
    trigger='type = "track"',
    build_body=build_body,
    perform=perform,
    needs_contact=True,
    parks_on_404=True,
)
