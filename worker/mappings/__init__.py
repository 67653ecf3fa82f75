"""Mappings: which events trigger which action, and how fields are picked out of an event.

::

    mappings = load_mappings(settings.mappings_file)   # None -> DEFAULT_MAPPINGS
    for mapping in select(mappings, event):             # several, one or none
        fields = mapping.apply(event)                   # raw values, for the action's schema

Modules: ``triggers`` (the trigger language), ``fields`` (field sources: paths,
templates, literals, objects, fallbacks), ``mapping`` (``Mapping`` and its checks),
``defaults`` (the built-in mappings), ``loader`` (the mappings file).
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
