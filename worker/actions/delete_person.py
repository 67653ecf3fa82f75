"""Delete Person: a privacy request (Segment's user deletion) carried out in Intercom.

Runs through the person's lane like any delivery.  The person's deliveries accepted before
the request are dropped unsent as they reach the head of the lane (worker/delivery.py reads
the mark worker/store/deletions.py leaves), so nothing of them reaches Intercom; those
accepted after it are delivered as usual (a later identify makes the person again).  The request comes from
``intercom-relay delete-person``, never from the ingestion door.

Calls: the person's contact, found in the cache (by user id, email or anonymous id), else by
a search on external_id, else on email; the leads linked to them (cached, or sharing the
email); one ``DELETE /contacts/{id}`` each.  A contact Intercom no longer has (404, 410) is
done.  Their cached ids, links, lead notes, parked deliveries and dead letters (their held
attribute values among them) are purged, and the deletion's audit record
(worker/store/deletions.py) says when it was done and how many contacts went.

A deletion by user id covers the anonymous ids the cache links to the user: their lanes
were marked with the request (``Deletions.mark``), so what they held from before it is
dropped; here their parked deliveries and dead letters go too.  If the deletion's delivery
becomes a dead letter (a 4xx, the retry window over), worker/delivery.py marks the request
failed, with why.
"""

from __future__ import annotations

from typing import Any, cast

from marshmallow import ValidationError, fields, validates_schema

from worker.actions.action import Action, field
from worker.actions.common import ActionContext, FieldsSchema, StrId, find_contacts, search_contact
from worker.intercom.errors import NotFound
from worker.store.attributes import letter_id
from worker.store.deadletters import DeadLetters
from worker.store.deletions import DELETE_ACTION, Deletions
from worker.store.lanes import Lanes


class Fields(FieldsSchema):
    """The mapped fields of Delete Person."""

    deletion_id = field(fields.String, "the deletion's id, for its audit record", required=True, default="$.properties.deletion_id")
    user_id = field(StrId, "the person's user id (the contact's external_id)", default="$.properties.user_id")
    email = field(fields.String, "the person's email", default="$.properties.email")
    anonymous_id = field(StrId, "the person's anonymous id", default="$.properties.anonymous_id")

    @validates_schema
    def _someone(self, data: dict, **kwargs: Any) -> None:
        if not any(data.get(name) for name in ("user_id", "email", "anonymous_id")):
            raise ValidationError("a deletion names a user_id, an email or an anonymous_id", "user_id")


def build_body(fields: dict) -> dict:
    """DELETE /contacts/{id} has no body."""
    return {}


def perform(ctx: ActionContext, fields: dict) -> dict:
    """Delete the person's contact and linked leads; returns the ids deleted and the calls."""
    user_id, email, anonymous_id = fields.get("user_id"), fields.get("email"), fields.get("anonymous_id")
    deletions = Deletions(ctx.contacts.redis)
    # Read before the contacts are forgotten: the cache's links are what names these lanes.
    anonymous_ids = list(dict.fromkeys([*([anonymous_id] if anonymous_id else []), *deletions.linked_anonymous_ids(user_id)]))
    found = _contacts_of(ctx, user_id, email, anonymous_ids)
    deleted = [contact_id for contact_id in found if _delete(ctx, contact_id)]
    for anonymous in anonymous_ids:
        ctx.contacts.end_lead_create(anonymous)
    persons = [person for person in (user_id, *anonymous_ids) if person]
    purged = _purge_dead_letters(ctx, persons, found)
    lane = user_id or anonymous_id or f"deletion:{fields['deletion_id']}"  # the lane the request came through
    for person in dict.fromkeys([lane, *anonymous_ids]):
        deletions.drop_parked(person, fields["deletion_id"])  # only the lanes this deletion marked
    deletions.done(fields["deletion_id"], len(deleted))
    ctx.log.info("deletion %s done: %d contact(s) deleted, %d dead letter(s) purged", fields["deletion_id"], len(deleted), purged)
    return {"deletion_id": fields["deletion_id"], "deleted_contacts": deleted, "purged_dead_letters": purged, "calls": ctx.calls}


def _purge_dead_letters(ctx: ActionContext, persons: list[str], contacts: list[str]) -> int:
    """The person's dead letters hold their traits: they go too (they stay counted, as any purge).

    So do the attribute values held for their contacts, whichever lane held them.
    """
    # Listing and purging read only Redis: the lanes a replay would need are not.
    letters = DeadLetters(ctx.contacts.redis, cast(Lanes, None))
    purged = sum(letters.purge(list(letters.iter(person=person))) for person in persons)
    return purged + letters.purge(letters.get([letter_id("contact", contact_id) for contact_id in contacts]))


def _contacts_of(ctx: ActionContext, user_id: str | None, email: str | None, anonymous_ids: list[str]) -> list[str]:
    """The person's contact and linked leads, without repeats: cache first, else Intercom's search."""
    ids: list[str] = []
    for kind, value in (("external_id", user_id), ("email", email), *(("anonymous_id", a) for a in anonymous_ids)):
        cached = ctx.contacts.get(**{kind: value}) if value else None
        if cached is not None:
            ids.append(cached.id)
    by_anonymous_id: list[str | None] = list(anonymous_ids) or [None]  # without one, the email's leads still count
    for anonymous_id in by_anonymous_id:
        ids += ctx.contacts.leads_of(anonymous_id=anonymous_id, email=email)
    if not ids and user_id:
        found = search_contact(ctx, "external_id", user_id)
        ids += [found["id"]] if found else []
    if email:
        ids += [c["id"] for c in find_contacts(ctx, "email", email) if c.get("role") == "lead" or not ids]
    return list(dict.fromkeys(ids))


def _delete(ctx: ActionContext, contact_id: str) -> bool:
    """DELETE the contact and purge what the relay knows of it; False when Intercom had it no more."""
    try:
        ctx.call(ctx.client.delete_contact, contact_id)
        gone = True
    except NotFound:
        gone = False  # deleted or merged away already: nothing left to delete, and that is done
    ctx.contacts.forget(contact_id)
    return gone


#: Its default mapping takes the deletions ``intercom-relay delete-person`` requests: a "delete"
#: event naming the person in its properties (the ingestion door never accepts that type).
ACTION = Action(
    name=DELETE_ACTION,
    title="Delete Person",
    lane_code="X",
    fields=Fields,
    trigger='type = "delete"',
    build_body=build_body,
    perform=perform,
    deletes_person=True,
)
