"""What the actions share: the context they run in, field types, lookups.

Kept apart from ``worker/actions/__init__.py`` so that the action modules can
import it without importing each other through the ``ACTIONS`` table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Callable, Mapping, TypeVar

from marshmallow import Schema, ValidationError, fields, pre_load

from worker.actions.unchanged import SkipPolicy
from worker.intercom.client import IntercomClient
from worker.intercom.errors import ContactMerged, InvalidPayload, NotFound
from worker.store.attributes import Attributes
from worker.store.companies import CompanyCache
from worker.store.contacts import ContactCache
from worker.store.dropped import DroppedFields
from worker.timestamps import InvalidTimestamp, to_unix_seconds

T = TypeVar("T")

#: A search that must see every match (all the leads with an email) reads pages this big,
#: Intercom's default, and at most this many of them: a workspace with more contacts
#: sharing one email than that has a problem no sync should paper over.
SEARCH_ALL_PAGE = 50
SEARCH_MAX_PAGES = 20


@dataclass(frozen=True)
class WorkspacePolicy:
    """How identify treats contacts the relay did not make itself (made before it, or by the Messenger).

    Both on in production; tests of the cache alone may turn them off.
    """

    #: A lead identify for an anonymous id not seen yet updates the lead that has its email.
    find_leads_by_email: bool = True
    #: MERGE_LEADS_BY_EMAIL: a user identify merges the leads that share its email, found in Intercom.
    merge_leads_by_email: bool = True


@dataclass
class ActionContext:
    """What an action needs besides its fields: Intercom, the caches, the event's person."""

    client: IntercomClient
    contacts: ContactCache
    user_id: str | None = None
    anonymous_id: str | None = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("worker.actions"))
    companies: CompanyCache | None = None
    #: Whether a write Intercom already holds is skipped (worker/actions/unchanged.py).
    skip: SkipPolicy = field(default_factory=SkipPolicy)
    #: The fingerprint of the mapping that made the fields: a new mapping is never skipped.
    mapping_version: str = ""
    workspace: WorkspacePolicy = field(default_factory=WorkspacePolicy)
    #: STRICT_FIELDS: a mapped value that can't be converted fails the whole event;
    #: otherwise only that field is dropped (see :func:`load_fields_dropping`).
    strict_fields: bool = False
    #: Where dropped fields are counted, for ``status`` (none in unit tests).
    drops: DroppedFields | None = None
    #: The workspace's custom attributes and held values (worker/actions/attributes.py);
    #: None: no screening, Intercom's 400 decides (as UNKNOWN_ATTRIBUTES=fail).
    attributes: Attributes | None = None
    #: UNKNOWN_ATTRIBUTES and MAX_CREATED_ATTRIBUTES.
    unknown_attributes: str = "hold"
    max_created_attributes: int = 50
    #: Attributes Intercom refused during this action: held, whatever the list says.
    refused_attributes: set[str] = field(default_factory=set, init=False)
    #: Intercom calls made by this action so far. The client's own counter is
    #: shared by every thread of the worker, so it can't tell one event's calls.
    calls: int = field(default=0, init=False)
    #: The record of what this action wrote to its contact (unchanged.record), for the cache.
    written: str | None = field(default=None, init=False)

    def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a client method, counting it as one of this action's calls."""
        self.calls += 1
        return method(*args, **kwargs)


class UnixSeconds(fields.Field):
    """An ISO 8601 date or Unix seconds, loaded as integer Unix seconds."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        name = attr or self.name or "timestamp"
        try:
            return to_unix_seconds(value, name)
        except InvalidTimestamp as exc:
            raise ValidationError(str(exc).removeprefix(f"{name}: ")) from None


class StrId(fields.String):
    """An identifier: a string, or an integer turned into one (userId 42 is "42")."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class FieldsSchema(Schema):
    """Base of the actions' field schemas: a null or blank value counts as absent.

    A mapping path that finds nothing leaves its field out; an explicit null or
    "" from the event is treated the same, except for the nullable fields
    (``allow_none``), where Intercom takes null as "clear this attribute".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Once per schema (instances are shared, see schema_instance), not per event.
        self.nullable = frozenset(name for name, declared in self.fields.items() if declared.allow_none)

    @pre_load
    def _drop_absent(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow itself reports "Invalid input type"
        return {key: value for key, value in data.items() if key in self.nullable or not _blank(value)}


def load_fields(schema: type[Schema], raw: Mapping[str, Any]) -> dict:
    """Validate and convert mapped fields; InvalidPayload names the first bad field.

    Loading is idempotent (loaded fields load to themselves), so a caller may
    validate early and still pass the result to ``perform``.
    """
    try:
        return schema_instance(schema).load(raw)
    except ValidationError as exc:
        raise invalid_payload(exc.messages) from None


def load_fields_dropping(ctx: ActionContext, action: str, schema: type[Schema], raw: Mapping[str, Any]) -> dict:
    """Validate and convert mapped fields, leaving out those whose value can't be converted.

    An unparseable ``signed_up_at`` or a ``size`` of "about 40" costs that field, with a
    log line and a count per ``action.field``, not the whole event.  A required field, a
    rule between fields, or any field under STRICT_FIELDS still fails it (InvalidPayload).
    """
    if ctx.strict_fields:
        return load_fields(schema, raw)
    instance = schema_instance(schema)
    fields = dict(raw)
    dropped: list[str] = []
    while True:
        try:
            loaded = instance.load(fields)
            break
        except ValidationError as exc:
            bad = _droppable(instance, exc.messages, fields)
            if bad is None:
                raise invalid_payload(exc.messages) from None
            for name, problem in bad.items():
                ctx.log.warning("%s: field %s dropped, its value can't be converted: %s", action, name, _text(problem))
                fields.pop(name, None)
                dropped.append(name)
    if dropped and ctx.drops is not None:
        ctx.drops.add(action, dropped)
    return loaded


def _droppable(schema: Schema, messages: Any, fields: Mapping[str, Any]) -> dict[str, Any] | None:
    """The failing fields, if every one is optional and fails on its own value; else None.

    A rule between fields (a user with neither external_id nor email, a lead with an
    external_id) names a field too, but its value converts: that is a broken mapping or
    event, and fails the whole event.
    """
    if not isinstance(messages, dict) or not messages:
        return None
    for name in messages:
        known = schema.fields.get(str(name))
        if known is None or known.required or name not in fields or _converts(known, fields[name]):
            return None
    return dict(messages)


def _converts(field_type: fields.Field, value: Any) -> bool:
    """Whether the field's own type and validators take the value."""
    try:
        field_type.deserialize(value)
    except ValidationError:
        return False
    return True


@cache
def schema_instance(schema: type[Schema]) -> Schema:
    """One instance per schema: building one per event was a measurable share of a worker's CPU.

    A marshmallow schema keeps no state between loads, so threads may share it.
    """
    return schema()


def invalid_payload(messages: Any) -> InvalidPayload:
    """An InvalidPayload from marshmallow's error messages."""
    if not isinstance(messages, dict) or not messages:
        return InvalidPayload("_schema", _text(messages))
    name, problems = next(iter(messages.items()))
    reason = _text(problems)
    others = [str(key) for key in messages if key != name]
    if others:
        reason += f" (also invalid: {', '.join(others)})"
    return InvalidPayload(str(name), reason)


def search_contact(ctx: ActionContext, field_name: str, value: str, *, role: str | None = None) -> dict | None:
    """The best contact with ``field = value`` (see :func:`best_contact`), every page read."""
    return best_contact(ctx, find_contacts(ctx, field_name, value, role=role), f"{field_name}={value!r}")


def find_contacts(ctx: ActionContext, field_name: str, value: str, *, role: str | None = None) -> list[dict]:
    """Every contact with ``field = value`` (and the role), following Intercom's pages.

    One call when the first page holds them all, as it nearly always does.
    """
    query: dict[str, Any] = {"field": field_name, "operator": "=", "value": value}
    if role:
        query = {"operator": "AND", "value": [query, {"field": "role", "operator": "=", "value": role}]}
    contacts: list[dict] = []
    cursor: str | None = None
    for _ in range(SEARCH_MAX_PAGES):
        page = ctx.call(ctx.client.search_contacts, query, per_page=SEARCH_ALL_PAGE, starting_after=cursor)
        contacts += [c for c in page.get("data") or [] if isinstance(c, dict) and c.get("id")]
        cursor = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
        if not cursor:
            return contacts
    ctx.log.warning("more than %d contacts have %s; only the first ones were read", len(contacts), field_name)
    return contacts


def best_contact(ctx: ActionContext, contacts: list[dict], what: str) -> dict | None:
    """The documented rule when several contacts match: a user before a lead, then the oldest.

    The oldest (``created_at``, then id) is the one Segment's destination or the Messenger
    made first, which earlier events and conversations are attached to.  A log line says
    which was chosen among how many.
    """
    if not contacts:
        return None
    ranked = sorted(contacts, key=lambda c: (c.get("role") != "user", c.get("created_at") or 0, str(c["id"])))
    if len(ranked) > 1:
        ctx.log.info(
            "%d contacts match %s; using %s (%s): a user before a lead, then the oldest",
            len(ranked),
            what,
            ranked[0]["id"],
            ranked[0].get("role"),
        )
    return ranked[0]


def follow_gone(ctx: ActionContext, contact_id: str, exc: NotFound, *, look_up: bool = False) -> str | None:
    """Where a contact Intercom answered 404 or 410 for went: the survivor of a merge, else None.

    An admin merged it (410, its Link names the survivor): the cached keys and memberships
    move to the survivor, which the caller writes to instead.  With ``look_up`` a 404 is
    looked up (GET /contacts/{id}): POST /events answers 404 for a merged contact too,
    where the contact endpoints answer 410.  Deleted, or merged with no Link to follow: it is forgotten, and the caller
    looks the person up again (an identify) or waits for the person's next identify (a
    track or group), as for an unknown person.
    """
    if look_up and not isinstance(exc, ContactMerged):
        exc = _looked_up(ctx, contact_id) or exc
    if isinstance(exc, ContactMerged) and exc.into and exc.into != contact_id:
        ctx.log.info("contact %s was merged into %s in Intercom; following it", contact_id, exc.into)
        ctx.contacts.move(contact_id, exc.into, "user")  # only a lead merges, and only into a user
        return exc.into
    ctx.log.info("contact %s is gone from Intercom; forgetting it", contact_id)
    ctx.contacts.forget(contact_id)
    return None


def _looked_up(ctx: ActionContext, contact_id: str) -> ContactMerged | None:
    """The 410 a lookup of the contact answers, if it was merged; None otherwise."""
    try:
        ctx.call(ctx.client.get_contact, contact_id)
    except ContactMerged as merged:
        return merged
    except NotFound:
        return None
    return None


def _blank(value: Any) -> bool:
    """None, or a string of only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(problems: Any) -> str:
    """marshmallow's messages for one field as one sentence."""
    if isinstance(problems, list) and all(isinstance(p, str) for p in problems):
        return " ".join(problems)
    return str(problems)
