"""What an action is: one typed definition the rest of the relay derives from.

An action is one kind of call to Intercom that a mapping can trigger.  Its
definition says everything the relay needs to know about it: the task that
runs it, its letter in a lane, the fields a mapping may give it (its schema),
its default mapping, how it builds Intercom's request body and how it
performs the calls, and how the lane treats it:

* ``identifies``: delivering it makes the person known to Intercom; a lane
  sends it before a track or group of a person not yet known, and a delivered
  one releases the person's parked deliveries.
* ``needs_contact``: it can run only for a person Intercom knows.
* ``parks_on_404``: "no such contact" parks it until the person's next
  identify, instead of retrying it.
* ``deletes_person``: it is a privacy request; the person's deliveries accepted
  before it are dropped unsent, and it is not.

Each field is declared once, with :func:`field`, in the action's schema: its
name, type, whether it is required or nullable, its source in the default
mapping and what it means (as Segment's destinations declare theirs).  The
body order, the nullable set, the default mapping, the mapping checks, the
lane codes (those the Lua scripts use included) and the Celery task names are
all derived: here, in ``worker/actions/common.py`` and in
``worker/actions/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from marshmallow import Schema, fields

from worker.actions.common import ActionContext, load_fields, load_fields_dropping, schema_instance

#: ``perform(ctx, fields) -> result``: given the fields loaded by the action's
#: schema, call Intercom through ``ctx.client`` (raising
#: worker/intercom/errors.py's errors), and return what the task's result
#: should show (a dict of JSON values).
Perform = Callable[[ActionContext, dict], dict]


def field(
    kind: Callable[..., fields.Field],
    doc: str,
    *,
    default: Any = None,
    required: bool = False,
    nullable: bool = False,
    in_body: bool = True,
    **options: Any,
) -> fields.Field:
    """One mapped field of an action, declared once: the marshmallow field of type ``kind``.

    ``doc`` says what the field means; ``default`` is its source in the action's
    default mapping (docs/mappings.md; None: the default mapping leaves it out);
    ``nullable``: an explicit null is sent (Intercom clears the attribute) instead
    of counting as absent; ``in_body``: the field goes into Intercom's request body
    as it is (:func:`body_fields`).  ``options`` go to the marshmallow field
    (``validate=``, ``strict=``, ``keys=``).
    """
    metadata = {"doc": doc, "default": default, "in_body": in_body}
    return kind(required=required, allow_none=nullable, metadata=metadata, **options)


def body_fields(schema: type[Schema]) -> tuple[str, ...]:
    """The fields that go into Intercom's request body as they are, in the schema's order."""
    return tuple(name for name, declared in schema_instance(schema).fields.items() if declared.metadata.get("in_body", True))


def pick_body(names: tuple[str, ...], loaded: Mapping[str, Any]) -> dict:
    """The request body: the loaded fields among ``names``, in that order."""
    return {name: loaded[name] for name in names if name in loaded}


@dataclass(frozen=True)
class Action:
    """One action's definition; see the module docstring."""

    #: The name mappings use (``action: track_event``) and the task's suffix.
    name: str
    #: The name of its default mapping ("Identify Contact", as in Segment).
    title: str
    #: One letter, the last of each delivery id of this action (worker/store/lanes.py).
    lane_code: str
    #: The marshmallow schema of the mapped fields, each declared with :func:`field`.
    fields: type[Schema]
    #: The trigger of its default mapping (Segment's "default subscription").
    trigger: str
    #: Intercom's request body for loaded fields (pure; the tests and docs use it).
    build_body: Callable[[dict], dict]
    perform: Perform
    #: Built-in mappings besides the default one, in the mappings-file format without
    #: ``action``: ``{"name": ..., "trigger": ..., "fields": {...}}`` (docs/mappings.md).
    more_mappings: tuple[dict[str, Any], ...] = ()
    identifies: bool = False
    needs_contact: bool = False
    parks_on_404: bool = False
    #: It deletes the person: a deletion drops the person's deliveries accepted
    #: before it, but never itself.  It is never lenient with its fields: it runs
    #: on what it was asked, or fails.
    deletes_person: bool = False

    def __post_init__(self) -> None:
        if len(self.lane_code) != 1 or not self.lane_code.isalpha():
            raise ValueError(f"action {self.name!r}: a lane code is one letter, got {self.lane_code!r}")

    def run(self, ctx: ActionContext, raw: Mapping[str, Any]) -> dict:
        """Load the mapped fields with the action's schema, then ``perform`` on them.

        A value that can't be converted costs its field, counted under this
        action's name, unless STRICT_FIELDS or a deletion (see ``load_fields_dropping``).
        """
        if self.deletes_person:
            return self.perform(ctx, load_fields(self.fields, raw))
        return self.perform(ctx, load_fields_dropping(ctx, self.name, self.fields, raw))

    @property
    def task_name(self) -> str:
        """The Celery task that runs this action's deliveries."""
        return f"intercom.{self.name}"

    @property
    def field_names(self) -> frozenset[str]:
        """The fields a mapping may give this action."""
        return frozenset(schema_instance(self.fields).fields)

    @property
    def required_fields(self) -> frozenset[str]:
        """The fields without which the action cannot run: a mapping must map them."""
        return frozenset(name for name, declared in schema_instance(self.fields).fields.items() if declared.required)

    @property
    def default_mappings(self) -> tuple[dict[str, Any], ...]:
        """The built-in mappings: the default one (each field's ``default``), then ``more_mappings``."""
        declared = schema_instance(self.fields).fields.items()
        sources = {name: spec.metadata["default"] for name, spec in declared if spec.metadata.get("default") is not None}
        return ({"name": self.title, "trigger": self.trigger, "fields": sources}, *self.more_mappings)
