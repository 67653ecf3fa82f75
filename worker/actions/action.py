"""What an action is: one typed definition the rest of the relay derives from.

An action is one kind of call to Intercom that a mapping can trigger.  Its
definition says everything the relay needs to know about it: the task that
runs it, its letter in a lane, the fields a mapping may give it (its schema),
its default mappings, how it builds Intercom's request body and how it
performs the calls, and how the lane treats it:

* ``identifies``: delivering it makes the person known to Intercom; a lane
  sends it before a track or group of a person not yet known, and a delivered
  one releases the person's parked deliveries.
* ``needs_contact``: it can run only for a person Intercom knows.
* ``parks_on_404``: "no such contact" parks it until the person's next
  identify, instead of retrying it.
* ``deletes_person``: it is a privacy request; the person's deliveries accepted
  before it are dropped unsent, and it is not.

The mapping checks (``worker/mappings``), the default mappings, the lane
codes (those the Lua scripts use included) and the Celery task names are all
derived from these definitions, in ``worker/actions/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from marshmallow import Schema

from worker.actions.common import ActionContext, schema_instance

#: ``perform(ctx, fields) -> result``: validate the mapped fields, call Intercom
#: through ``ctx.client`` (raising worker/intercom/errors.py's errors), and
#: return what the task's result should show (a dict of JSON values).
Perform = Callable[[ActionContext, dict], dict]


@dataclass(frozen=True)
class Action:
    """One action's definition; see the module docstring."""

    #: The name mappings use (``action: track_event``) and the task's suffix.
    name: str
    #: One letter, the last of each delivery id of this action (worker/store/lanes.py).
    lane_code: str
    #: The marshmallow schema of the mapped fields: which exist, which are required.
    fields: type[Schema]
    #: The built-in mappings, in the mappings-file format without ``action``:
    #: ``{"name": ..., "trigger": ..., "fields": {...}}`` (docs/mappings.md).
    default_mappings: tuple[dict[str, Any], ...]
    #: Intercom's request body for loaded fields (pure; the tests and docs use it).
    build_body: Callable[[dict], dict]
    perform: Perform
    identifies: bool = False
    needs_contact: bool = False
    parks_on_404: bool = False
    #: It deletes the person: a deletion drops the person's deliveries accepted
    #: before it, but never itself.
    deletes_person: bool = False

    def __post_init__(self) -> None:
        if len(self.lane_code) != 1 or not self.lane_code.isalpha():
            raise ValueError(f"action {self.name!r}: a lane code is one letter, got {self.lane_code!r}")

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
        return frozenset(name for name, field in schema_instance(self.fields).fields.items() if field.required)
