"""The actions, in one explicit table; everything else about them is derived here.

Each action is one module that ends with its ``ACTION`` definition
(:class:`worker.actions.action.Action`): its fields schema (each field's type,
default source and meaning declared once), ``build_body`` and ``perform``.
Adding an action is one module and one line in ``ACTIONS``, with its tests and
docs (docs/architecture.md, "Adding an action").
"""

from __future__ import annotations

from worker.actions import delete_person, identify_company, identify_contact, track_event
from worker.actions.action import Action
from worker.actions.common import ActionContext
from worker.store.lanes import lane_code_of

#: Every action, by name, in the order the default mappings are listed.
ACTIONS: dict[str, Action] = {
    action.name: action
    for action in (
        identify_contact.ACTION,
        track_event.ACTION,
        identify_company.ACTION,
        delete_person.ACTION,
    )
}

#: Each action's letter in a delivery id.
LANE_CODES: dict[str, str] = {action.name: action.lane_code for action in ACTIONS.values()}

_BY_CODE: dict[str, Action] = {action.lane_code: action for action in ACTIONS.values()}
if len(_BY_CODE) != len(ACTIONS):
    raise RuntimeError(f"two actions share a lane code: {LANE_CODES}")

_IDENTIFYING = [action for action in ACTIONS.values() if action.identifies]
if len(_IDENTIFYING) != 1:
    raise RuntimeError(f"exactly one action identifies a person; found {[a.name for a in _IDENTIFYING]}")
#: The action that makes a person known to Intercom, which a lane sends first.
IDENTIFY: Action = _IDENTIFYING[0]


def action_of(delivery: str) -> Action:
    """The action of a delivery, from the lane code its id ends with."""
    return _BY_CODE[lane_code_of(delivery)]


__all__ = ["ACTIONS", "IDENTIFY", "LANE_CODES", "Action", "ActionContext", "action_of"]
