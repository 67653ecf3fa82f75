"""What the three actions share: the context they run in, field types, lookups.

Kept apart from ``worker/actions/__init__.py`` so that the action modules can
import it without importing each other through the ``ACTIONS`` table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, TypeVar

from marshmallow import Schema, ValidationError, fields, pre_load

from worker.actions.unchanged import SkipPolicy
from worker.intercom.errors import InvalidPayload
from worker.store.companies import CompanyCache
from worker.store.contacts import ContactCache
from worker.timestamps import InvalidTimestamp, to_unix_seconds

if TYPE_CHECKING:
    # For the annotation only: the client imports the failure policy, which
    # imports the mappings and so this package.
    from worker.intercom.client import IntercomClient

T = TypeVar("T")

#: A lookup needs the best match, not a page: the user if there is one.
SEARCH_PAGE = 10

#: A search that must see every match (all the leads with an email) reads pages this big,
#: Intercom's default, and at most this many of them: a workspace with more contacts
#: sharing one email than that has a problem no sync should paper over.
SEARCH_ALL_PAGE = 50
SEARCH_MAX_PAGES = 20


@dataclass(frozen=True)
class WorkspacePolicy:
    """How identify treats contacts the relay did not make itself (issue 11).

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
    "" from the event is treated the same, except for the fields listed in
    ``NULLABLE``, where Intercom takes null as "clear this attribute".
    """

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @pre_load
    def _drop_absent(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow itself reports "Invalid input type"
        return {key: value for key, value in data.items() if key in self.NULLABLE or not _blank(value)}


def load_fields(schema: type[Schema], raw: Mapping[str, Any]) -> dict:
    """Validate and convert mapped fields; InvalidPayload names the first bad field.

    Loading is idempotent (loaded fields load to themselves), so a caller may
    validate early and still pass the result to ``perform``.
    """
    try:
        return schema_instance(schema).load(raw)
    except ValidationError as exc:
        raise invalid_payload(exc.messages) from None


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


def _blank(value: Any) -> bool:
    """None, or a string of only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(problems: Any) -> str:
    """marshmallow's messages for one field as one sentence."""
    if isinstance(problems, list) and all(isinstance(p, str) for p in problems):
        return " ".join(problems)
    return str(problems)
