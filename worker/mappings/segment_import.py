"""Import a Segment destination's subscriptions as our mappings file: ``intercom-relay mappings import``.

Reads what Segment's Public API returns for a destination's subscriptions,
``{"data": {"subscriptions": [{"id", "name", "actionId", "actionSlug", "destinationId",
"enabled", "trigger", "settings"}]}}`` (or the bare list), for the Intercom actions.
Each enabled subscription becomes one mapping: its trigger translated into our
language with Segment's meaning and explicit parentheses, its fields carried over
with Segment's meaning (a plain value stays as it is unless we would read it as a
path or template, then it becomes ``@literal``; anything else is kept in Segment's
format under ``@segment``).  Disabled subscriptions are left out and listed in the
file's comments.  What can't be carried over is refused, naming the subscription.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from worker.mappings.loader import build_mappings
from worker.mappings.mapping import MappingError
from worker.mappings.segment_triggers import SegmentTriggerError, parse, readings, translate

#: Segment's action slugs of the "Intercom Cloud Mode (Actions)" destination, and ours.
ACTION_SLUGS = {"identifyContact": "identify_contact", "trackEvent": "track_event", "groupIdentifyContact": "identify_company"}


class ImportRefused(ValueError):
    """The export can't be carried over; the message names the subscription and the field."""


@dataclass
class Imported:
    """The mappings file's text, and what the user should know about it."""

    text: str
    notes: list[str] = field(default_factory=list)


def subscriptions_of(document: Any) -> list[dict]:
    """The subscription list of a Public API answer, or of a bare list."""
    if isinstance(document, dict):
        data = document.get("data")
        subscriptions = data.get("subscriptions") if isinstance(data, dict) else None
    else:
        subscriptions = document
    if not isinstance(subscriptions, list):
        raise ImportRefused('expected {"data": {"subscriptions": [...]}} (as Segment\'s Public API returns it) or a list of subscriptions')
    for number, subscription in enumerate(subscriptions, start=1):
        if not isinstance(subscription, dict):
            raise ImportRefused(f"subscription #{number} is not an object")
    return subscriptions


def import_subscriptions(document: Any) -> Imported:
    """Our mappings file (YAML text with comments) for a Segment export; raise :class:`ImportRefused`."""
    notes: list[str] = []
    blocks: list[str] = []
    specs: list[dict] = []
    names: set[str] = set()
    for number, subscription in enumerate(subscriptions_of(document), start=1):
        label = _label(subscription, number)
        if subscription.get("enabled") is False:
            notes.append(f"{label} is disabled in Segment: left out")
            blocks.append(f"  # Left out, disabled in Segment: {label}\n")
            continue
        spec, comments = _mapping(subscription, label, names)
        notes.extend(f"{label}: {comment}" for comment in comments)
        specs.append(spec)
        blocks.append(_block(spec, label, subscription, comments))
    if not specs:
        raise ImportRefused("no enabled subscription to import")
    try:
        build_mappings({"mappings": specs})
    except MappingError as error:
        raise ImportRefused(f"subscription {error.mapping!r}, field {error.field!r}: {error.reason}") from None
    header = (
        "# Imported from Segment's subscriptions by `intercom-relay mappings import`.\n"
        '# Triggers mean what Segment meant: see docs/mappings.md, "Coming from Segment".\n'
        "mappings:\n"
    )
    return Imported(header + "".join(blocks), notes)


def _label(subscription: dict, number: int) -> str:
    name = subscription.get("name")
    ident = subscription.get("id")
    text = f"subscription {name!r}" if isinstance(name, str) and name else f"subscription #{number}"
    return f"{text} (id {ident})" if ident else text


def _mapping(subscription: dict, label: str, names: set[str]) -> tuple[dict, list[str]]:
    slug = subscription.get("actionSlug")
    if slug not in ACTION_SLUGS:
        raise ImportRefused(f"{label}, field 'actionSlug': unknown action {slug!r}; expected one of {', '.join(ACTION_SLUGS)}")
    text = subscription.get("trigger")
    if not isinstance(text, str):
        raise ImportRefused(f"{label}, field 'trigger': a trigger is a string, got {text!r}")
    try:
        parsed = parse(text)
        trigger = translate(parsed)
    except SegmentTriggerError as error:
        raise ImportRefused(f"{label}, field 'trigger': {error}") from None
    settings = subscription.get("settings", {})
    if not isinstance(settings, dict):
        raise ImportRefused(f"{label}, field 'settings': expected an object of field: value, got {settings!r}")
    name = _unique(subscription.get("name") or slug, names)
    fields = {key: carry_over(value) for key, value in settings.items()}
    return {"name": name, "action": ACTION_SLUGS[slug], "trigger": trigger, "fields": fields}, readings(parsed)


def _unique(name: str, names: set[str]) -> str:
    candidate, count = name, 1
    while candidate in names:
        count += 1
        candidate = f"{name} ({count})"
    names.add(candidate)
    return candidate


def carry_over(value: Any) -> Any:
    """A field's value in Segment's format, written so that our file means the same."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        # We read "$..." as a path and "{{...}}" as a template; Segment reads both as text.
        return {"@literal": value} if value.startswith("$") or "{{" in value or "}}" in value else value
    return {"@segment": value}


def _block(spec: dict, label: str, subscription: dict, comments: list[str]) -> str:
    lines = [f"  # From Segment's {label}", f"  # Segment's trigger: {subscription['trigger']}"]
    lines += [f"  # Note: {comment}" for comment in comments]
    dumped = yaml.safe_dump([spec], sort_keys=False, allow_unicode=True, width=1000)
    return "\n".join(lines) + "\n" + "".join(f"  {line}\n" for line in dumped.splitlines())


def read_export(path: str) -> Any:
    """The JSON of an export file; raise :class:`ImportRefused` when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except OSError as error:
        raise ImportRefused(f"{path}: can't read it: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise ImportRefused(f"{path}: not valid JSON: {error}") from None
