"""The default mappings: those of Segment's "Intercom Cloud Mode (Actions)" destination.

Each action defines its own (``default_mappings`` of its definition), as plain
data in the same format as a mappings file (see docs/mappings.md), so that
what a user copies from the docs is what runs here, and so that a file can
``extends:`` one of them.
"""

from __future__ import annotations

from typing import Any

from worker.actions import ACTIONS
from worker.mappings.mapping import Mapping

#: The built-in mappings as plain data, one dict per mapping: each action's own.
DEFAULT_SPECS: tuple[dict[str, Any], ...] = tuple(
    {**spec, "action": name} for name, action in ACTIONS.items() for spec in action.default_mappings
)


def build_defaults() -> list[Mapping]:
    """Fresh Mapping objects for the built-in mappings."""
    return [Mapping.from_spec(**spec) for spec in DEFAULT_SPECS]


#: The mappings in force when no mappings file is given.  Treat as read-only;
#: ``load_mappings(None)`` hands out a copy of this list.
DEFAULT_MAPPINGS: list[Mapping] = build_defaults()
