"""Identify Company: upsert a company, then attach the person's contact to it.

Calls per event, against Segment's search + upsert + attach (3):

- contact cached (or contact_id given) and membership known: one upsert, or
  none when the company's body is what was last sent (SKIP_UNCHANGED);
- contact cached, membership new: upsert (unless unchanged) + attach;
- contact not cached: upsert + a search by external_id (then by email) + attach.

The attach names the company by its Intercom ``id`` from the upsert's answer,
not by our company_id.  A contact that can't be found raises ContactNotFound,
so the caller parks the event until the person's identify: a group is never
silently left unattached.
"""

from __future__ import annotations

from marshmallow import fields, validate

from worker.actions.action import Action, body_fields, field, pick_body
from worker.actions.attributes import refused_attribute, screen, settle
from worker.actions.common import (
    ActionContext,
    FieldsSchema,
    StrId,
    UnixSeconds,
    follow_gone,
    search_contact,
)
from worker.actions.unchanged import holds, record
from worker.intercom.errors import ContactNotFound, NotFound, PermanentError, RetryableError

#: Intercom stores monthly_spend as a 32-bit signed integer.
MAX_MONTHLY_SPEND = 2**31 - 1


class Fields(FieldsSchema):
    """The mapped fields of Identify Company: the company's own, then those that find its contact."""

    company_id = field(StrId, "the company's id outside Intercom (Segment's groupId)", required=True, default="$.groupId")
    name = field(fields.String, "the company's name", default="$.traits.name")
    # strict=False truncates 155.98 to 155, as Intercom itself would.
    monthly_spend = field(
        fields.Integer,
        "how much revenue the company generates for you, a whole number",
        default="$.traits.monthly_spend",
        strict=False,
        validate=validate.Range(max=MAX_MONTHLY_SPEND),
    )
    plan = field(fields.String, "the name of the company's plan", default="$.traits.plan")
    size = field(fields.Integer, "the number of employees", default="$.traits.employees", strict=False, validate=validate.Range(min=0))
    website = field(fields.String, "the company's website URL", default="$.traits.website")
    industry = field(fields.String, "the company's industry", default="$.traits.industry")
    remote_created_at = field(UnixSeconds, "when the company was created: ISO 8601 or Unix seconds", default="$.traits.createdAt")
    custom_attributes = field(
        fields.Dict,
        "the company's custom attributes, by name; those the workspace does not define are held (UNKNOWN_ATTRIBUTES)",
        keys=fields.String(),
    )
    external_id = field(StrId, "the external_id of the contact to attach", default="$.userId", in_body=False)
    email = field(fields.String, "the email of the contact to attach", default="$.traits.email", in_body=False)
    contact_id = field(StrId, "the Intercom id of the contact to attach", in_body=False)


#: The body's fields: the company's own.
COMPANY_FIELDS = body_fields(Fields)


def build_body(fields: dict) -> dict:
    """The body of POST /companies: the company's own fields only."""
    return pick_body(COMPANY_FIELDS, fields)


def perform(ctx: ActionContext, fields: dict) -> dict:
    """Upsert the company (unless it is unchanged) and attach the contact; returns both ids, what was done, calls."""
    try:
        body, held = screen(ctx, "company", build_body(fields))
        company_id = _upsert(ctx, fields["company_id"], body)
    except PermanentError as exc:
        if not refused_attribute(ctx, "company", exc):
            raise
        body, held = screen(ctx, "company", build_body(fields))  # the refused attribute is held this time
        company_id = _upsert(ctx, fields["company_id"], body)
    settle(ctx, "company", fields["company_id"], body, held)
    contact_id = _find_contact(ctx, fields)
    attached = not ctx.contacts.is_member(contact_id, company_id)
    if attached:
        _attach(ctx, contact_id, company_id, fields["company_id"])
    result = {"company_id": company_id, "contact_id": contact_id, "attached": attached, "calls": ctx.calls}
    return {**result, "held_attributes": sorted(held)} if held else result


def _upsert(ctx: ActionContext, company_id: str, body: dict) -> str:
    """The company's Intercom id, upserted unless what was last sent for it holds the body."""
    cached = ctx.companies.get(company_id) if ctx.companies is not None else None
    if cached is not None and holds(cached.sent, cached.id, body, ctx.mapping_version, ctx.skip):
        return cached.id
    company = ctx.call(ctx.client.upsert_company, body)
    if ctx.companies is not None:
        previous = cached.sent if cached is not None else None
        ctx.companies.remember(company_id, company["id"], record(previous, company["id"], body, ctx.mapping_version))
    return company["id"]


def _find_contact(ctx: ActionContext, fields: dict) -> str:
    """The contact to attach: given, else cached, else searched; ContactNotFound if none."""
    if "contact_id" in fields:
        return fields["contact_id"]
    external_id, email = fields.get("external_id"), fields.get("email")
    cached = ctx.contacts.get(external_id=external_id, email=email, anonymous_id=ctx.anonymous_id)
    if cached is not None:
        return cached.id
    for key, value in (("external_id", external_id), ("email", email)):
        found = search_contact(ctx, key, value) if value else None
        if found is not None:
            ctx.contacts.remember(found["id"], found.get("role") or "user", **{key: value})
            return found["id"]
    raise ContactNotFound(f"no Intercom contact for external_id={external_id!r}, email={email!r} yet")


def _attach(ctx: ActionContext, contact_id: str, company_intercom_id: str, company_id: str) -> None:
    """Attach the contact to the company and remember that it is.

    A contact an admin merged into a user (410 with its Link) is followed: the
    survivor is attached.
    """
    try:
        ctx.call(ctx.client.attach_company, contact_id, company_intercom_id)
    except NotFound as exc:
        if exc.code == "company_not_found":
            # Upserted a moment ago and Intercom has not caught up, or deleted
            # since it was cached: the retry upserts it again.
            if ctx.companies is not None:
                ctx.companies.forget(company_id)
            raise RetryableError(str(exc), exc.status, exc.body, exc.code) from exc
        survivor = follow_gone(ctx, contact_id, exc)
        if survivor is None:
            raise ContactNotFound(str(exc), exc.status, exc.body, exc.code) from exc
        if not ctx.contacts.is_member(survivor, company_intercom_id):
            _attach(ctx, survivor, company_intercom_id, company_id)
        return
    ctx.contacts.remember_membership(contact_id, company_intercom_id)


ACTION = Action(
    name="identify_company",
    title="Identify Company",
    lane_code="G",
    fields=Fields,
    trigger='type = "group"',
    build_body=build_body,
    perform=perform,
    needs_contact=True,
    parks_on_404=True,
)
