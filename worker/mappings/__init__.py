"""Mappings: which events trigger which action, and how fields are picked out of an event.

::

    mappings = load_mappings(settings.mappings_file)   # None -> DEFAULT_MAPPINGS
    for mapping in select(mappings, event):             # several, one or none
        fields = mapping.apply(event)                   # raw values, for the action's schema

Modules: ``triggers`` (the trigger language), ``fields`` (field sources: paths,
templates, literals, objects, fallbacks), ``mapping`` (``Mapping`` and its checks),
``defaults`` (the built-in mappings), ``loader`` (the mappings file).

Segment's languages, read as Segment reads them: ``segment_triggers`` (its subscription
language, and its translation into ours), ``segment_directives`` (its mapping directives),
``js`` (the JavaScript value rules both rely on).  Tools over them: ``segment_import``
(Segment's subscriptions as our mappings file), ``tryout`` (what mappings would send for an
event), ``cases`` (a user's test cases for ``intercom-relay mappings test``).
"""

from worker.mappings.defaults import DEFAULT_MAPPINGS
from worker.mappings.fields import MISSING, PathError, parse_path, parse_source
from worker.mappings.loader import build_mappings, load_mappings
from worker.mappings.mapping import ACTION_FIELDS, REQUIRED_FIELDS, Mapping, MappingError, select
from worker.mappings.triggers import Trigger, TriggerSyntaxError, parse_trigger

__all__ = [
    "ACTION_FIELDS",
    "DEFAULT_MAPPINGS",
    "MISSING",
    "Mapping",
    "MappingError",
    "PathError",
    "REQUIRED_FIELDS",
    "Trigger",
    "TriggerSyntaxError",
    "build_mappings",
    "load_mappings",
    "parse_path",
    "parse_source",
    "parse_trigger",
    "select",
]
