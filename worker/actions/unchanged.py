"""What was last sent for a contact or a company, and whether a new body changes anything.

Intercom keeps what it was last told, so a write that repeats every field it
carries changes nothing: SKIP_UNCHANGED skips it.  The relay keeps, next to a
cached contact's or company's id (worker/store/contacts.py, companies.py), a
*sent record* of what it last sent there, and an identify or a group whose
body that record already holds makes no call.

A record is JSON ``{"c": contact or company id, "m": mapping fingerprint,
"b": {field: value}}`` with the custom attributes flattened (``custom_attributes.plan``), so that a body that
carries fewer fields is compared on what it carries: a field left out
changes nothing in Intercom either.  ``last_seen_at`` alone moving by less
than LAST_SEEN_RESOLUTION_SECONDS counts as unchanged.

Stale knowledge is never trusted: a record names its contact, so a key
pointed at another contact since holds nothing for it; a call answering 404
or 410 forgets the contact and its records; a merge drops the records of the
contact it keeps; a change of the mapping gives a new fingerprint.  What the relay cannot see is an admin's
edit in Intercom: an identify that repeats the traits last sent does not
overwrite it (docs/mappings.md says so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The field compared with a resolution rather than exactly.
LAST_SEEN = "last_seen_at"


@dataclass(frozen=True)
class SkipPolicy:
    """SKIP_UNCHANGED and LAST_SEEN_RESOLUTION_SECONDS."""

    enabled: bool = False
    last_seen_resolution: float = 300.0


def holds(sent: str | None, target: str, body: dict, fingerprint: str, policy: SkipPolicy) -> bool:
    """Whether the record ``sent`` already holds everything ``body`` would write to ``target``."""
    if not policy.enabled or not sent:
        return False
    record = _load(sent)
    if record is None or record.get("c") != target or record.get("m") != fingerprint:
        return False
    known: dict[str, Any] = record.get("b") or {}
    for name, value in flatten(body).items():
        if name not in known:
            return False
        if name == LAST_SEEN and _numbers(value, known[name]):
            if abs(value - known[name]) >= policy.last_seen_resolution:
                return False
        elif known[name] != value:
            return False
    return True


def recorded(sent: str | None, target: str, name: str, value: Any) -> bool:
    """Whether the record says ``name`` was sent to ``target`` with this value (SKIP_UNCHANGED or not)."""
    loaded = _load(sent) if sent else None
    return loaded is not None and loaded.get("c") == target and (loaded.get("b") or {}).get(name) == value


def record(previous: str | None, target: str, body: dict, fingerprint: str) -> str:
    """The record after ``body`` was written to ``target``, over what ``previous`` says of it."""
    fields: dict[str, Any] = {}
    old = _load(previous) if previous else None
    if old is not None and old.get("c") == target and old.get("m") == fingerprint:
        fields.update(old.get("b") or {})
    fields.update(flatten(body))
    return json.dumps({"c": target, "m": fingerprint, "b": fields}, separators=(",", ":"), sort_keys=True)


def flatten(body: dict) -> dict[str, Any]:
    """The body's fields, each custom attribute a field of its own."""
    flat: dict[str, Any] = {}
    for name, value in body.items():
        if name == "custom_attributes" and isinstance(value, dict):
            flat.update({f"custom_attributes.{key}": item for key, item in value.items()})
        else:
            flat[name] = value
    return flat


def _load(raw: str) -> dict | None:
    try:
        loaded = json.loads(raw)
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
