"""Identify Contact: create or update a user or lead, and fold a lead into its user.

Calls per event, against Segment's search + write (2):

- user already cached: one PUT; a stale id (404/410) is forgotten, then as below;
- new user with an external_id: one POST (create first); if Intercom answers
  409 "already exists with id=X" (its search index lags), one more PUT to X;
- user with only an email: a search (every page) for the contacts with that email,
  then PUT to the user, or PUT making the oldest lead the user, or POST;
- lead: PUT when its anonymous id is cached (as a lead, or as the user it has
  become), else POST;
- plus one merge per lead of the same person when the identify is for a user:
  a lead cached under the event's anonymous id or under the user's email (the
  match Intercom itself calls a duplicate), or made for the anonymous id and
  not cached yet (worker/store/contacts.py, the lead note), and (MERGE_LEADS_BY_EMAIL)
  the leads in Intercom with the user's email, searched for once per user and email
  (the first identify with a cold cache, or a new email).  The lead's events and companies
  move to the user, and so do its cached ids and memberships;
- lead not cached, with an email: a search for a lead with that email (made before the
  relay, by Segment or the Messenger), then PUT to it, else POST.
"""

from __future__ import annotations

import time
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from worker.actions.action import Action, body_fields, field, pick_body
from worker.actions.attributes import refused_attribute, screen, settle
from worker.actions.common import (
    ActionContext,
    FieldsSchema,
    StrId,
    UnixSeconds,
    best_contact,
    find_contacts,
    follow_gone,
    search_contact,
)
from worker.actions.unchanged import holds, record, recorded
from worker.intercom.errors import (
    AwaitingSearch,
    Conflict,
    IntercomError,
    InvalidPayload,
    NotFound,
    PermanentError,
    RateLimited,
    SearchLagConflict,
    conflicting_contact_id,
)
from worker.store.contacts import LeadNote

#: How long a redelivered lead identify looks for the lead an unfinished
#: earlier attempt may have made before it makes one: Intercom's search may
#: take "a few minutes" to show a new contact (its API reference).
LEAD_SEARCH_WAIT_SECONDS = 180.0
#: How often it looks meanwhile.
LEAD_SEARCH_EVERY_SECONDS = 15.0

ROLES = ("user", "lead")

#: A merged contact's survivor may itself have been merged since: followed this many times.
MAX_MERGES_FOLLOWED = 3


def _trait(key: str) -> dict[str, Any]:
    """``$.traits.<key>``, falling back to ``$.context.traits.<key>``.

    Some real clients send traits only in ``context.traits``.
    """
    return {"@first": [f"$.traits.{key}", f"$.context.traits.{key}"]}


class Fields(FieldsSchema):
    """The mapped fields of Identify Contact, in Intercom's order of a contact's fields.

    Intercom's contact schema marks the nullable ones nullable: null clears the attribute.
    """

    role = field(
        fields.String,
        "user or lead; a known userId makes a user, without one the person is an anonymous lead",
        required=True,
        default={"@if": {"exists": "$.userId", "then": "user", "else": "lead"}},
        validate=validate.OneOf(ROLES),
    )
    external_id = field(
        StrId,
        "the contact's id outside Intercom (Segment's userId); a user needs it or an email, a lead never has one",
        default="$.userId",
    )
    email = field(fields.String, "the contact's email; a user needs it or an external_id", default=_trait("email"))
    phone = field(fields.String, "the contact's phone number", nullable=True, default=_trait("phone"))
    name = field(fields.String, "the contact's name", nullable=True, default=_trait("name"))
    avatar = field(fields.String, "an image URL of the contact's avatar", nullable=True, default=_trait("avatar"))
    signed_up_at = field(UnixSeconds, "when the contact signed up: ISO 8601 or Unix seconds", nullable=True, default=_trait("createdAt"))
    last_seen_at = field(UnixSeconds, "when the contact was last seen: ISO 8601 or Unix seconds", nullable=True, default="$.timestamp")
    # A string since 2.16; an integer id is accepted and converted.
    owner_id = field(StrId, "the id of the admin who owns the contact", nullable=True)
    unsubscribed_from_emails = field(fields.Boolean, "whether the contact unsubscribed from emails", nullable=True)
    custom_attributes = field(
        fields.Dict,
        "the contact's custom attributes, by name; those the workspace does not define are held (UNKNOWN_ATTRIBUTES)",
        nullable=True,
        keys=fields.String(),
    )

    @validates_schema
    def _identity(self, data: dict, **kwargs: Any) -> None:
        """A lead has no external_id; a user needs an external_id or an email."""
        if data.get("role") == "lead" and "external_id" in data:
            # The default mapping makes role "user" whenever userId exists, so an
            # external_id on a lead is a broken custom mapping: say so.
            raise ValidationError("a lead never carries an external_id (Intercom sets it on users only)", "external_id")
        if data.get("role") == "user" and "external_id" not in data and "email" not in data:
            raise ValidationError("a user needs an email when external_id is blank", "email")


#: The body's fields, in Intercom's order, for readable request logs.
BODY_FIELDS = body_fields(Fields)


def build_body(fields: dict) -> dict:
    """The body of POST /contacts or PUT /contacts/{id} for loaded fields."""
    return pick_body(BODY_FIELDS, fields)


def perform(ctx: ActionContext, fields: dict) -> dict:
    """Create or update the contact; returns its id, role, any merged lead and the calls made."""
    try:
        return _perform(ctx, fields)
    except PermanentError as exc:
        if not refused_attribute(ctx, "contact", exc):
            raise
        return _perform(ctx, fields)  # the refused attribute is held this time


def _perform(ctx: ActionContext, fields: dict) -> dict:
    """``perform`` for loaded fields, its custom attributes screened (worker/actions/attributes.py)."""
    body, held = screen(ctx, "contact", build_body(fields))
    found_leads: list[dict] | None = None  # the leads with the user's email, when a search found them already
    if fields["role"] == "lead":
        contact, role = _identify_lead(ctx, body)
    else:
        (contact, found_leads), role = _identify_user(ctx, body), "user"
    role = contact.get("role") or role
    merged = _merge_leads(ctx, contact["id"], fields.get("email"), found_leads) if role == "user" else []
    contact_id, role, late = _link_anonymous(ctx, contact["id"], role)
    ctx.contacts.remember(
        contact_id,
        role,
        external_id=fields.get("external_id"),
        email=fields.get("email") if contact_id == contact["id"] else None,
        sent=ctx.written,  # it names the contact written to: a key of another one holds nothing from it
    )
    if fields["role"] == "lead" and ctx.anonymous_id:
        ctx.contacts.end_lead_create(ctx.anonymous_id)
    settle(ctx, "contact", contact_id, body, held)
    result = {"contact_id": contact_id, "role": role, "merged_leads": merged + late, "calls": ctx.calls}
    return {**result, "held_attributes": sorted(held)} if held else result


def _link_anonymous(ctx: ActionContext, contact_id: str, role: str) -> tuple[str, str, list[str]]:
    """Tie the event's anonymous id to the contact, merging a lead the other lane just made.

    Returns the contact the person is now (a lead that lost the race to its
    own user identify becomes that user), its role, and any lead merged here.
    """
    if not ctx.anonymous_id:
        return contact_id, role, []
    previous = ctx.contacts.link_anonymous(ctx.anonymous_id, contact_id, role, sent=ctx.written)
    if previous is None:
        return contact_id, role, []
    if role == "lead" and previous.role == "user":
        _merge(ctx, contact_id, previous.id)  # the user identify ran meanwhile: this lead is that user
        return previous.id, "user", [contact_id]
    if role == "user" and previous.role == "lead":
        _merge(ctx, previous.id, contact_id)  # a lead identify ran meanwhile: fold it in
        return contact_id, role, [previous.id]
    return contact_id, role, []


def _identify_user(ctx: ActionContext, body: dict) -> tuple[dict, list[dict] | None]:
    """Update the cached user, else create it (by external_id) or find it (by email).

    Returns the contact, and the leads with its email when finding it searched for them.
    """
    external_id, email = body.get("external_id"), body.get("email")
    cached = ctx.contacts.get(external_id=external_id) if external_id else ctx.contacts.get(email=email)
    if cached is not None and cached.role == "user":
        contact = _update_known(ctx, cached.id, body, cached.sent)
        if contact is not None:
            return contact, None
    if external_id:
        return _create(ctx, body), None
    if not email:  # the schema refuses a user with neither
        raise InvalidPayload("email", "a user needs an email when external_id is blank")
    return _identify_user_by_email(ctx, body, email)


def _identify_user_by_email(ctx: ActionContext, body: dict, email: str) -> tuple[dict, list[dict]]:
    """An email-only user: the user with that email, else the lead with it becomes the user, else a new user.

    Email-only users have no unique key for Intercom to 409 on, so one search (every
    page) comes first; it finds the leads with the email too, for the merge that follows.
    """
    matches = find_contacts(ctx, "email", email)
    users = [c for c in matches if c.get("role") == "user"]
    leads = [c for c in matches if c.get("role") == "lead"]
    found = best_contact(ctx, users, f"email={email!r}")
    if found is not None:
        return _wrote(ctx, ctx.call(ctx.client.update_contact, found["id"], body), body), leads
    lead = best_contact(ctx, leads, f"email={email!r}") if ctx.workspace.merge_leads_by_email else None
    if lead is None:
        return _create(ctx, body), leads
    # One contact, its history kept: the lead is made the user, the other leads are merged into it.
    ctx.log.info("no user has email %r; lead %s becomes the user", email, lead["id"])
    ctx.contacts.became_user(lead["id"])
    contact = _wrote(ctx, ctx.call(ctx.client.update_contact, lead["id"], body), body)
    return contact, [other for other in leads if other["id"] != lead["id"]]


def _identify_lead(ctx: ActionContext, body: dict) -> tuple[dict, str]:
    """Update the lead (or the user it became) cached by anonymous id, else create a lead."""
    anonymous_id = ctx.anonymous_id
    cached = ctx.contacts.get(anonymous_id=anonymous_id) if anonymous_id else None
    if anonymous_id and cached is not None:
        if cached.role == "user":
            _note_unfinished_lead(ctx, anonymous_id, body.get("email"))
        # A converted lead is a user now: keep its role, write only the traits.
        update = body if cached.role == "lead" else {k: v for k, v in body.items() if k not in ("role", "external_id")}
        contact = _update_known(ctx, cached.id, update, cached.sent)
        if contact is not None:
            return contact, cached.role
    return _create_lead(ctx, body), "lead"


def _create_lead(ctx: ActionContext, body: dict) -> dict:
    """POST a lead, unless an unfinished earlier attempt made it already.

    Nothing in Intercom stops a second lead with the same traits, so the
    attempt leaves a note in Redis until the lead is cached, naming the lead
    as soon as Intercom answers.  A redelivery whose note names a lead updates
    it; one whose note names none (the worker was killed, or the call timed
    out, with the lead perhaps made) looks for it by email, and while
    Intercom's search may still lag behind that attempt it waits (a retry)
    rather than make a duplicate.  A lead without an email cannot be looked
    up: after a crash in that window it may be made twice
    (docs/architecture.md).
    """
    if not ctx.anonymous_id:
        return _wrote(ctx, ctx.call(ctx.client.create_contact, body), body)
    note = ctx.contacts.begin_lead_create(ctx.anonymous_id, time.time())
    if note is not None and not note.may_have_made_a_lead:
        # The earlier attempt stopped before it asked Intercom for the lead (its worker
        # died during the search for an existing one): there is nothing to wait for.
        note = None
    if note is None and body.get("email") and ctx.workspace.find_leads_by_email:
        try:
            existing = _existing_lead(ctx, body)
        except IntercomError:
            # Nothing was made yet (the search or the update of a lead found
            # failed, a 429 most often): no later attempt must wait for
            # Intercom's search to show a lead this attempt never created.
            ctx.contacts.end_lead_create(ctx.anonymous_id)
            raise
        if existing is not None:
            return existing
    if note is not None and note.lead_id:
        made = _update_known(ctx, note.lead_id, body)
        if made is not None:
            return made
    elif note is not None and body.get("email"):
        found = _search_unfinished_lead(ctx, body["email"], note)
        if found is not None:
            return _wrote(ctx, ctx.call(ctx.client.update_contact, found["id"], body), body)
    ctx.contacts.lead_create_sent(ctx.anonymous_id, time.time())
    try:
        lead = _wrote(ctx, ctx.call(ctx.client.create_contact, body), body)
    except IntercomError as exc:
        # Intercom answered with an error, or the rate budget never let the call
        # go: nothing was made, so no later attempt must look for it.  A timeout
        # or a broken connection leaves the question open, and the note with it.
        if exc.status is not None or isinstance(exc, RateLimited):
            ctx.contacts.end_lead_create(ctx.anonymous_id)
        raise
    # The merge into its user may still fail (a 429, a timeout): its retry finds the lead here.
    ctx.contacts.lead_created(ctx.anonymous_id, lead["id"])
    return lead


def _existing_lead(ctx: ActionContext, body: dict) -> dict | None:
    """The lead that already has this email (made by Segment, the Messenger, an import), updated; else None.

    An anonymous id the relay has not seen, with an email, is most often a lead
    Intercom already holds: updating it keeps one contact where creating would make two.
    """
    found = search_contact(ctx, "email", body["email"], role="lead")
    if found is None:
        return None
    assert ctx.anonymous_id  # only called for an anonymous id's lead
    ctx.contacts.lead_created(ctx.anonymous_id, found["id"])  # a failed update's retry updates it too
    return _update_known(ctx, found["id"], body)


def _note_unfinished_lead(ctx: ActionContext, anonymous_id: str, email: str | None) -> None:
    """Before a converted person's lead identify updates the user: find the lead an earlier attempt made.

    An attempt stopped between Intercom's answer and the note's update (its
    worker killed) left a lead that no key names.  Found by email, it goes into
    the note, and the user's merge of its leads (``_merge_leads``) folds it in.
    """
    note = ctx.contacts.lead_note(anonymous_id)
    if note is None or note.lead_id or not note.may_have_made_a_lead or not email:
        return
    found = _search_unfinished_lead(ctx, email, note)
    if found is not None:
        ctx.contacts.lead_created(anonymous_id, found["id"])


def _search_unfinished_lead(ctx: ActionContext, email: str, note: LeadNote) -> dict | None:
    """The lead an unfinished earlier attempt may have made, by email; None once the search has had its time.

    While Intercom's search may still lag behind that attempt, waits (a retry)
    rather than answer that there is none.
    """
    found = search_contact(ctx, "email", email, role="lead")
    if found is not None:
        return found
    now, asked = time.time(), note.sent or note.began
    if now - asked < LEAD_SEARCH_WAIT_SECONDS:
        raise AwaitingSearch(
            "an earlier attempt to create this lead did not finish; waiting for Intercom's search to show whether it made the lead",
            retry_at=min(asked + LEAD_SEARCH_WAIT_SECONDS, now + LEAD_SEARCH_EVERY_SECONDS),
        )
    return None


def _update_known(ctx: ActionContext, contact_id: str, body: dict, sent: str | None = None) -> dict | None:
    """PUT to a contact we believe exists; None (and forgotten) if it is gone.

    No call at all when ``sent``, the record of what was last sent to it,
    already holds the body (SKIP_UNCHANGED): Intercom has it.  A contact an
    admin merged into a user (410) is followed: the survivor is written to,
    with the traits only (it is a user, whatever this identify's role).
    """
    if holds(sent, contact_id, body, ctx.mapping_version, ctx.skip):
        return {"id": contact_id}
    for _ in range(MAX_MERGES_FOLLOWED):
        try:
            return _wrote(ctx, ctx.call(ctx.client.update_contact, contact_id, body), body, sent)
        except NotFound as exc:
            survivor = follow_gone(ctx, contact_id, exc)
            if survivor is None:
                return None
            contact_id, sent = survivor, None
            body = {k: v for k, v in body.items() if k not in ("role", "external_id")} if body.get("role") == "lead" else body
    return None


def _wrote(ctx: ActionContext, contact: dict, body: dict, previous: str | None = None) -> dict:
    """Note what was written to the contact Intercom answered with; returns that contact."""
    ctx.written = record(previous, contact["id"], body, ctx.mapping_version)
    return contact


def _create(ctx: ActionContext, body: dict) -> dict:
    """POST a user; on 409 "already exists with id=X", update X instead."""
    try:
        return _wrote(ctx, ctx.call(ctx.client.create_contact, body), body)
    except Conflict as exc:
        existing = conflicting_contact_id(exc)
        contact = _update_known(ctx, existing, body) if existing else None
        if contact is None:
            raise SearchLagConflict(str(exc), exc.status, exc.body, exc.code) from exc
        return contact


def _merge_leads(ctx: ActionContext, user_id: str, email: str | None, found: list[dict] | None = None) -> list[str]:
    """Merge the person's leads into the user; the ids of the leads merged.

    Those cached under the anonymous id or the email, the one a lead identify
    of the same anonymous id made and has not cached yet, and (MERGE_LEADS_BY_EMAIL)
    the leads in Intercom with the user's email: ``found`` when a search already
    listed them, else a search, made only while the relay has not yet sent this
    email to this user (a cold cache, a new user, a changed email), so that a
    known user's identify costs no search.
    """
    leads = ctx.contacts.leads_of(anonymous_id=ctx.anonymous_id, email=email)
    if email and ctx.workspace.merge_leads_by_email:
        if found is None and not _email_settled(ctx, user_id, email):
            found = find_contacts(ctx, "email", email, role="lead")
        leads += [lead["id"] for lead in found or [] if lead["id"] not in leads]
    merged = [lead_id for lead_id in leads if lead_id != user_id]
    for lead_id in merged:
        _merge(ctx, lead_id, user_id)
    return merged


def _email_settled(ctx: ActionContext, user_id: str, email: str) -> bool:
    """Whether the relay's record says it already sent this email to this user (leads then merged)."""
    cached = ctx.contacts.get(email=email)
    return cached is not None and cached.id == user_id and recorded(cached.sent, user_id, "email", email)


def _merge(ctx: ActionContext, lead_id: str, user_id: str) -> None:
    """POST /contacts/merge the lead into the user; the lead's cached ids now name the user.

    What was written to the user before is not recorded: after a merge the
    next identify writes for certain (worker/actions/unchanged.py).
    """
    ctx.written = None
    try:
        # Same anonymous id (or email): the same person. Without the flag 2.16 demands a shared email or phone.
        ctx.call(ctx.client.merge_contacts, lead_id, user_id, skip_duplicate_validation=True)
    except NotFound:
        # Already merged by an earlier delivery of this event (or deleted): nothing left to fold in.
        ctx.log.info("lead %s is already gone; nothing to merge into %s", lead_id, user_id)
    # Its anonymous ids, email and companies are the user's now (Intercom moved them too).
    ctx.contacts.move(lead_id, user_id, "user")


#: Segment's alias (previousId -> userId) says the two ids are one person: an
#: identify naming both, so the lead made from the previous id becomes the user
#: (the delivery takes an alias's previousId as its anonymous id).
ALIAS_MAPPING = {
    "name": "Alias",
    "trigger": 'type = "alias"',
    "fields": {"role": "user", "external_id": "$.userId"},
}

ACTION = Action(
    name="identify_contact",
    title="Identify Contact",
    lane_code="I",
    fields=Fields,
    trigger='type = "identify"',
    build_body=build_body,
    perform=perform,
    more_mappings=(ALIAS_MAPPING,),
    identifies=True,
)
