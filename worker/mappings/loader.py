"""Load mappings from a YAML or JSON file (``MAPPINGS_FILE``), checked at load.

The file is one object (JSON, or YAML, chosen by the extension: ``.json`` is read
as JSON, anything else as YAML)::

    include_defaults: false      # optional; true keeps the built-in mappings too
    mappings:
      - name: Order Completed    # unique; names the mapping in errors and logs
        action: track_event      # identify_contact | track_event | identify_company
        trigger: 'type = "track" and event = "Order Completed"'
        fields:                  # field of the action: source (worker/mappings/fields.py)
          event_name: $.event
          created_at: $.timestamp
          user_id: $.userId
      - name: Identify Contact
        extends: Identify Contact  # start from a built-in mapping ...
        fields:                    # ... and change only these fields (null removes one)
          custom_attributes:
            plan: $.traits.plan

Without ``include_defaults: true`` the file *replaces* the built-in mappings.  With
it, the file's mappings are added to them, and a mapping named like a built-in one
takes its place.  ``extends`` takes the action, trigger and fields of the built-in
mapping of that name; ``trigger`` and ``fields`` given beside it override them,
field by field.

Every mistake is a :class:`~worker.mappings.mapping.MappingError` naming the file,
the mapping and the field: an unknown action, a field the action does not have, a
required field left unmapped, a trigger that does not parse (with the position),
a malformed path or template.  docs/mappings.md has the user's guide.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import yaml

from worker.mappings.defaults import DEFAULT_MAPPINGS, DEFAULT_SPECS
from worker.mappings.mapping import Mapping, MappingError

_FILE_KEYS = frozenset({"include_defaults", "mappings"})
_MAPPING_KEYS = frozenset({"name", "action", "trigger", "fields", "extends"})


def load_mappings(path: str | os.PathLike[str] | None) -> list[Mapping]:
    """The mappings of the file at ``path``, or the defaults when ``path`` is None."""
    if path is None:
        return list(DEFAULT_MAPPINGS)
    source = os.fspath(path)
    document = _read(source)
    try:
        return build_mappings(document)
    except MappingError as error:
        raise MappingError(error.reason, mapping=error.mapping, field=error.field, source=source) from None


def build_mappings(document: Any) -> list[Mapping]:
    """Mappings from an already-parsed file document (see the module docstring)."""
    if not isinstance(document, dict):
        raise MappingError("the file must hold an object with a 'mappings' list")
    unknown = set(document) - _FILE_KEYS
    if unknown:
        raise MappingError(f"unknown top-level key {sorted(map(str, unknown))[0]!r}; expected {', '.join(sorted(_FILE_KEYS))}")
    include_defaults = document.get("include_defaults", False)
    if not isinstance(include_defaults, bool):
        raise MappingError(f"include_defaults must be true or false, got {include_defaults!r}")
    entries = document.get("mappings")
    if not isinstance(entries, list):
        raise MappingError("'mappings' must be a list of mappings")
    mappings = [_build_one(entry, number) for number, entry in enumerate(entries, start=1)]
    _check_unique(mappings)
    if include_defaults:
        mappings = _merge_with_defaults(mappings)
    if not mappings:
        # Every event would be filtered: surely a mistake, not a configuration.
        raise MappingError("the file defines no mappings (include_defaults: true keeps the built-in ones)")
    return mappings


def _read(source: str) -> Any:
    """Parse the file as JSON (``.json``) or YAML (anything else)."""
    try:
        with open(source, encoding="utf-8") as file:
            if source.lower().endswith(".json"):
                return json.load(file)
            return yaml.safe_load(file)
    except OSError as error:
        raise MappingError(f"can't read the mappings file: {error.strerror}", source=source) from None
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        # YAML's messages span lines (with a copy of the offending line); one line reads better in logs.
        raise MappingError(f"not valid {_format(source)}: {' '.join(str(error).split())}", source=source) from None


def _format(source: str) -> str:
    return "JSON" if source.lower().endswith(".json") else "YAML"


def _build_one(entry: Any, number: int) -> Mapping:
    """One mapping from one entry of the ``mappings`` list."""
    label = f"#{number}"
    if not isinstance(entry, dict):
        raise MappingError(f"a mapping is an object, got {entry!r}", mapping=label)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise MappingError("a mapping needs a non-empty 'name'", mapping=label, field="name")
    unknown = set(entry) - _MAPPING_KEYS
    if unknown:
        raise MappingError(
            f"unknown key; expected {', '.join(sorted(_MAPPING_KEYS))}", mapping=name, field=str(sorted(map(str, unknown))[0])
        )
    spec = _resolve_extends(entry) if "extends" in entry else entry
    for key in ("action", "trigger", "fields"):
        if key not in spec:
            raise MappingError(f"'{key}' is required (or 'extends' a built-in mapping)", mapping=name, field=key)
    return Mapping.from_spec(name=name, action=spec["action"], trigger=spec["trigger"], fields=spec["fields"])


def _resolve_extends(entry: dict[str, Any]) -> dict[str, Any]:
    """The built-in mapping ``entry`` extends, with the entry's trigger and fields laid over it."""
    name, base_name = entry["name"], entry["extends"]
    base = next((spec for spec in DEFAULT_SPECS if spec["name"] == base_name), None)
    if base is None:
        known = ", ".join(repr(spec["name"]) for spec in DEFAULT_SPECS)
        raise MappingError(f"there is no built-in mapping {base_name!r} to extend; there are {known}", mapping=name, field="extends")
    if "action" in entry and entry["action"] != base["action"]:
        raise MappingError(f"{base_name!r} is a {base['action']} mapping; 'action' can't change", mapping=name, field="action")
    fields = entry.get("fields", {})
    if not isinstance(fields, dict):
        raise MappingError("'fields' must be an object of field: source", mapping=name, field="fields")
    merged = copy.deepcopy(base)
    merged["fields"].update(copy.deepcopy(fields))  # a field set to null is dropped by Mapping.from_spec
    if "trigger" in entry:
        merged["trigger"] = entry["trigger"]
    return merged


def _check_unique(mappings: list[Mapping]) -> None:
    """Names identify mappings in logs, counters and dead letters: they must be unique."""
    seen: set[str] = set()
    for mapping in mappings:
        if mapping.name in seen:
            raise MappingError("another mapping has the same name", mapping=mapping.name, field="name")
        seen.add(mapping.name)


def _merge_with_defaults(mappings: list[Mapping]) -> list[Mapping]:
    """The built-in mappings, each replaced by the file's mapping of the same name, then the rest."""
    by_name = {mapping.name: mapping for mapping in mappings}
    merged = [by_name.pop(default.name, default) for default in DEFAULT_MAPPINGS]
    return merged + [mapping for mapping in mappings if mapping.name in by_name]
