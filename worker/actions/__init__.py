"""The three actions, one module each, in one explicit table.

Each module has ``NAME``, ``TASK_NAME`` (``intercom.<name>``), ``NEEDS_CONTACT``,
``Fields`` (the marshmallow schema of its mapped fields), ``build_body(fields)``
(the Intercom request body; pure) and ``perform(ctx, fields) -> dict``, which
validates the fields, calls Intercom through ``ctx.client`` and reads and
fills ``ctx.contacts``.  Errors are those of :mod:`worker.intercom.errors`.
"""

from __future__ import annotations

from types import ModuleType

from worker.actions import identify_company, identify_contact, track_event
from worker.actions.common import ActionContext

ACTIONS: dict[str, ModuleType] = {
    "identify_contact": identify_contact,
    "track_event": track_event,
    "identify_company": identify_company,
}

__all__ = ["ACTIONS", "ActionContext"]
