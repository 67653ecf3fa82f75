"""What mappings would do with events, without sending anything: ``mappings try`` and ``mappings test``.

For an event: which mappings match, the fields each renders (before the action checks
them), and the request body the action would send to Intercom, or why it would refuse
the event.  No Redis, no network.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from worker.actions import ACTIONS
from worker.actions.common import schema_instance
from worker.mappings.mapping import Mapping, MappingError


def body_of(mapping: Mapping, fields: dict[str, Any]) -> tuple[dict | None, str | None]:
    """The body the action would send for ``fields``, or why it would refuse them."""
    action = ACTIONS[mapping.action]
    try:
        loaded = schema_instance(action.fields).load(fields)
        return action.build_body(loaded), None
    except ValidationError as error:
        return None, f"the action refuses the event: {error.messages}"


def try_event(mappings: list[Mapping], event: Any) -> dict[str, Any]:
    """``{"matched": [{"mapping", "action", "fields", "body", "error"}], "filtered": bool}`` for one event."""
    matched = []
    for mapping in mappings:
        if not isinstance(event, dict) or not mapping.matches(event):
            continue
        entry: dict[str, Any] = {"mapping": mapping.name, "action": mapping.action, "fields": None, "body": None, "error": None}
        try:
            entry["fields"] = mapping.apply(event)
        except MappingError as error:
            entry["error"] = str(error)
        else:
            entry["body"], entry["error"] = body_of(mapping, entry["fields"])
        matched.append(entry)
    return {"matched": matched, "filtered": not matched}
