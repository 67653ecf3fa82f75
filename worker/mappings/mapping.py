"""A mapping: a trigger, an action, and a source for each of the action's fields.

``Mapping.from_spec`` builds one from plain data (a dict from a YAML/JSON file or
from :mod:`worker.mappings.defaults`) and checks it completely, so that every
mistake surfaces at load as a :class:`MappingError` naming the mapping and field.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Iterable

from worker.actions import ACTIONS
from worker.mappings.fields import MISSING, Source, SourceError, parse_source
from worker.mappings.triggers import Trigger, TriggerSyntaxError

#: The fields each action takes, and those a mapping must map (from the actions' schemas).
ACTION_FIELDS: dict[str, frozenset[str]] = {name: action.field_names for name, action in ACTIONS.items()}
REQUIRED_FIELDS: dict[str, frozenset[str]] = {name: action.required_fields for name, action in ACTIONS.items()}


class MappingError(ValueError):
    """A mapping is invalid; ``mapping`` and ``field`` name where (either may be None).

    ``source`` is the file it came from, when it came from one.
    """

    def __init__(self, message: str, *, mapping: str | None = None, field: str | None = None, source: str | None = None) -> None:
        where = [f"in {source}"] if source is not None else []
        if mapping is not None:
            where.append(f"mapping {mapping!r}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.mapping = mapping
        self.field = field
        self.source = source
        self.reason = message


@dataclass(frozen=True)
class Mapping:
    """Which events (``trigger``) go to which ``action``, with which ``fields``."""

    name: str
    action: str
    trigger: Trigger
    sources: tuple[tuple[str, Source], ...]
    #: A digest of the spec: what was sent under another version of a mapping is not trusted.
    fingerprint: str = ""

    @classmethod
    def from_spec(cls, name: str, action: str, trigger: str, fields: dict[str, Any]) -> "Mapping":
        """Build and check a mapping from plain data; raise :class:`MappingError`."""
        if not isinstance(name, str) or not name.strip():
            raise MappingError(f"a mapping needs a non-empty name, got {name!r}", field="name")
        if action not in ACTION_FIELDS:
            raise MappingError(f"unknown action {action!r}; expected one of {', '.join(ACTION_FIELDS)}", mapping=name, field="action")
        try:
            parsed_trigger = Trigger.parse(trigger)
        except TriggerSyntaxError as error:
            raise MappingError(str(error), mapping=name, field="trigger") from None
        spec = json.dumps({"action": action, "trigger": trigger, "fields": fields}, sort_keys=True, default=str)
        fingerprint = hashlib.sha256(spec.encode()).hexdigest()[:12]
        return cls(name, action, parsed_trigger, _parse_fields(name, action, fields), fingerprint)

    def matches(self, event: dict) -> bool:
        """Whether this mapping's trigger selects ``event``."""
        return self.trigger.matches(event)

    def apply(self, event: dict) -> dict[str, Any]:
        """The action's fields picked out of ``event``; fields that find nothing are left out."""
        picked = {field: source.pick(event) for field, source in self.sources}
        return {field: value for field, value in picked.items() if value is not MISSING}


def _parse_fields(name: str, action: str, fields: Any) -> tuple[tuple[str, Source], ...]:
    """Check every field name against the action and parse its source."""
    if not isinstance(fields, dict):
        raise MappingError(f"'fields' must be an object of field: source, got {fields!r}", mapping=name, field="fields")
    allowed = ACTION_FIELDS[action]
    sources = []
    for field, spec in fields.items():
        if field not in allowed:
            raise MappingError(f"{action} has no field {field!r}; its fields are {', '.join(sorted(allowed))}", mapping=name, field=field)
        if spec is None:
            continue  # null means "none": the field is not mapped
        try:
            sources.append((field, parse_source(spec, field)))
        except SourceError as error:
            raise MappingError(error.reason, mapping=name, field=error.field) from None
    missing = REQUIRED_FIELDS[action] - {field for field, _ in sources}
    if missing:
        raise MappingError(f"{action} requires this field, but it is not mapped", mapping=name, field=sorted(missing)[0])
    return tuple(sources)


def select(mappings: Iterable[Mapping], event: dict) -> list[Mapping]:
    """The mappings whose trigger matches ``event``, in order: several, one or none."""
    return [mapping for mapping in mappings if mapping.matches(event)]
