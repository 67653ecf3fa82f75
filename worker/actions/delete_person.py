"""Delete Person: a privacy request (Segment's user deletion) carried out in Intercom.

Runs through the person's lane like any delivery.  The person's deliveries accepted before
the request are dropped unsent as they reach the head of the lane (worker/delivery.py reads
the mark worker/store/deletions.py leaves), so nothing of them reaches Intercom; those
accepted after it are delivered as usual (a later identify makes the person again).  The request comes from
``intercom-relay delete-person``, never from the ingestion door.

Calls: the person's contact, found in the cache (by user id, email or anonymous id), else by
a search on external_id, else on email; the leads linked to them (cached, or sharing the
email); one ``DELETE /contacts/{id}`` each.  A contact Intercom no longer has (404, 410) is
done.  Their cached ids, links, lead notes, parked deliveries and dead letters are purged, and the deletion's audit record
(worker/store/deletions.py) says when it was done and how many contacts went.
"""

from __future__ import annotations

from typing import Any, cast

from marshmallow import ValidationError, fields, validates_schema

from worker.actions.action import Action
from worker.actions.common import ActionContext, FieldsSchema, StrId, find_contacts, load_fields, search_contact
from worker.intercom.errors import NotFound
from worker.store.deadletters import DeadLetters
from worker.store.deletions import Deletions
from worker.store.lanes import Lanes


class Fields(FieldsSchema):
    """The mapped fields of Delete Person."""

    deletion_id = fields.String(required=True)
    user_id = StrId()
    email = fields.String()
    anonymous_id = StrId()

    @validates_schema
    def _someone(self, data: dict, **kwargs: Any) -> None:
        if not any(data.get(name) for name in ("user_id", "email", "anonymous_id")):
            raise ValidationError("a deletion names a user_id, an email or an anonymous_id", "user_id")


def build_body(fields: dict) -> dict:
    """DELETE /contacts/{id} has no body."""
    return {}


def perform(ctx: ActionContext, fields: dict) -> dict:
    """Delete the person's contact and linked leads; returns the ids deleted and the calls."""
    fields = load_fields(Fields, fields)  # never lenient: a deletion runs on what it was asked, or fails
    user_id, email, anonymous_id = fields.get("user_id"), fields.get("email"), fields.get("anonymous_id")
    deleted = [contact_id for contact_id in _contacts_of(ctx, user_id, email, anonymous_id) if _delete(ctx, contact_id)]
    if anonymous_id:
        ctx.contacts.end_lead_create(anonymous_id)
    purged = _purge_dead_letters(ctx, [person for person in (user_id, anonymous_id) if person])
    deletions = Deletions(ctx.contacts.redis)
    lane = user_id or anonymous_id or f"deletion:{fields['deletion_id']}"  # the lane the request came through
    deletions.drop_parked(lane, fields["deletion_id"])
    deletions.done(fields["deletion_id"], len(deleted))
    ctx.log.info("deletion %s done: %d contact(s) deleted, %d dead letter(s) purged", fields["deletion_id"], len(deleted), purged)
    return {"deletion_id": fields["deletion_id"], "deleted_contacts": deleted, "purged_dead_letters": purged, "calls": ctx.calls}


def _purge_dead_letters(ctx: ActionContext, persons: list[str]) -> int:
    """The person's dead letters hold their traits: they go too (they stay counted, as any purge)."""
    # Listing and purging read only Redis: the lanes a replay would need are not.
    letters = DeadLetters(ctx.contacts.redis, cast(Lanes, None))
    return sum(letters.purge(list(letters.iter(person=person))) for person in persons)


def _contacts_of(ctx: ActionContext, user_id: str | None, email: str | None, anonymous_id: str | None) -> list[str]:
    """The person's contact and linked leads, without repeats: cache first, else Intercom's search."""
    ids: list[str] = []
    for kind, value in (("external_id", user_id), ("email", email), ("anonymous_id", anonymous_id)):
        cached = ctx.contacts.get(**{kind: value}) if value else None
        if cached is not None:
            ids.append(cached.id)
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


#: The deletions ``intercom-relay delete-person`` accepts: a "delete" event naming the person in
#: its properties (the ingestion door never accepts that type).
DEFAULT_MAPPING = {
    "name": "Delete Person",
    "trigger": 'type = "delete"',
    "fields": {
        "deletion_id": "$.properties.deletion_id",
        "user_id": "$.properties.user_id",
        "email": "$.properties.email",
        "anonymous_id": "$.properties.anonymous_id",
    },
}

ACTION = Action(
    name="delete_person",
    lane_code="X",
    fields=Fields,
    default_mappings=(DEFAULT_MAPPING,),
    build_body=build_body,
    perform=perform,
    deletes_person=True,
)
