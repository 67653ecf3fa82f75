"""The default mappings: those of Segment's "Intercom Cloud Mode (Actions)" destination.

They are written as plain data, in the same format as a mappings file (see
docs/mappings.md), so that what a user copies from the docs is what runs here,
and so that a file can ``extends:`` one of them.
"""

from __future__ import annotations

from typing import Any

from worker.mappings.mapping import Mapping


def _trait(key: str) -> dict[str, Any]:
    """``$.traits.<key>``, falling back to ``$.context.traits.<key>``.

    Some real clients send traits only in ``context.traits``.
    """
    return {"@first": [f"$.traits.{key}", f"$.context.traits.{key}"]}


#: The built-in mappings as plain data, one dict per mapping.
DEFAULT_SPECS: tuple[dict[str, Any], ...] = (
    {
        "name": "Identify Contact",
        "action": "identify_contact",
        "trigger": 'type = "identify"',
        "fields": {
            # A known userId makes a user; without one the person is an anonymous lead.
            "role": {"@if": {"exists": "$.userId", "then": "user", "else": "lead"}},
            # Only present when userId is, i.e. only for role user: a lead never has one.
            "external_id": "$.userId",
            "email": _trait("email"),
            "phone": _trait("phone"),
            "name": _trait("name"),
            "avatar": _trait("avatar"),
            "signed_up_at": _trait("createdAt"),
            "last_seen_at": "$.timestamp",
        },
    },
    {
        "name": "Track Event",
        "action": "track_event",
        "trigger": 'type = "track"',
        "fields": {
            "event_name": "$.event",
            "created_at": "$.timestamp",
            "user_id": "$.userId",
            "email": "$.properties.email",
            "revenue": "$.properties.revenue",
            "currency": "$.properties.currency",
            # All properties; the action takes email, revenue and currency out.
            "metadata": "$.properties",
        },
    },
    {
        "name": "Identify Company",
        "action": "identify_company",
        "trigger": 'type = "group"',
        "fields": {
            "company_id": "$.groupId",
            "name": "$.traits.name",
            "monthly_spend": "$.traits.monthly_spend",
            "plan": "$.traits.plan",
            "size": "$.traits.employees",
            "website": "$.traits.website",
            "industry": "$.traits.industry",
            "remote_created_at": "$.traits.createdAt",
            "external_id": "$.userId",
            "email": "$.traits.email",
        },
    },
)


def build_defaults() -> list[Mapping]:
    """Fresh Mapping objects for the built-in mappings."""
    return [Mapping.from_spec(**spec) for spec in DEFAULT_SPECS]


#: The mappings in force when no mappings file is given.  Treat as read-only;
#: ``load_mappings(None)`` hands out a copy of this list.
DEFAULT_MAPPINGS: list[Mapping] = build_defaults()
