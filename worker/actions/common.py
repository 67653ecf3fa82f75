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
    """One search call for ``field = value``; the first user found, else the first lead."""
    query: dict[str, Any] = {"field": field_name, "operator": "=", "value": value}
    if role:
        query = {"operator": "AND", "value": [query, {"field": "role", "operator": "=", "value": role}]}
    found = ctx.call(ctx.client.search_contacts, query, per_page=SEARCH_PAGE)
    contacts = [c for c in found.get("data") or [] if isinstance(c, dict) and c.get("id")]
    users = [c for c in contacts if c.get("role") == "user"]
    best = users or contacts
    return best[0] if best else None


def _blank(value: Any) -> bool:
    """None, or a string of only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


def _text(problems: Any) -> str:
    """marshmallow's messages for one field as one sentence."""
    if isinstance(problems, list) and all(isinstance(p, str) for p in problems):
        return " ".join(problems)
    return str(problems)
