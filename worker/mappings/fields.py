"""Field sources: how one field's value is picked out of an event.

A mapping gives each field of its action a *source*, written as plain data (the
same in Python, YAML and JSON).  Sources are parsed once, when mappings load, so a
bad path fails at start-up rather than on the first event.

==========================================  ==========================================
source                                      value
==========================================  ==========================================
``"$.traits.email"``                        the value at that path (a *path*)
``"$.properties.items[0].sku"``             arrays by index; ``$['odd key']`` for odd keys
``"{{properties.plan}} plan"``              a *template*: paths in ``{{ }}``, ``$.`` optional
``"user"``, ``42``, ``true``, ``[1, 2]``    a *literal*: itself
``null``                                    nothing: the field is not mapped
``{plan: "$.traits.plan", ...}``            an *object*: each key from its own source
``{"@path": "$.traits.email"}``             a path, spelled out (Segment's mapping-kit)
``{"@template": "Order {{$.properties.id}}"}``  a template, spelled out
``{"@literal": "$5 off"}``                  a literal, even one that looks like a path
``{"@first": [src, src, ...]}``             the first source that finds something
``{"@if": {exists: src, then: src,          ``then`` when ``exists`` finds something,
           else: src}}``                    else ``else`` (Segment's mapping-kit)
``{"@segment": value}``                     ``value`` in Segment's format, with all of its
                                            directives and Segment's rules
                                            (worker/mappings/segment_directives.py)
``{"@case": ...}``, ``{"@replace": ...}``,  Segment's other directives (and ``@if`` with
``@arrayPath``, ``@json``, ``@flatten``,    ``blank``): read as if under ``@segment``
``@merge``, ``@transform``,
``@excludeWhenNull``
==========================================  ==========================================

"Finds nothing" is the rule that keeps absent data absent: a path that leads
nowhere, or to ``null``, finds nothing, and a field whose source finds nothing is
left out of the payload rather than sent as null (Intercom would clear the
attribute).  An object whose keys all find nothing finds nothing, and so does a
template none of whose paths finds anything; otherwise, in a template, a path that
finds nothing renders as the empty string.

Every string that starts with ``$`` is a path, so a typo such as ``$traits.email``
is an error at load instead of a literal text sent to Intercom.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any


class _Missing:
    """The type of :data:`MISSING`."""

    def __repr__(self) -> str:
        return "MISSING"

    # A singleton compared with `is`: copying must not make a second one.
    def __copy__(self) -> "_Missing":
        return self

    def __deepcopy__(self, memo: dict) -> "_Missing":
        return self


#: What a source returns when it finds nothing (``None`` is a value in JSON).
MISSING: Any = _Missing()


class SourceError(ValueError):
    """A field source is malformed; ``field`` names it (``custom_attributes.plan``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class PathError(ValueError):
    """A path is malformed; ``position`` is the 0-based offset of the problem."""

    def __init__(self, text: str, position: int, message: str) -> None:
        super().__init__(f"bad path {text!r}: {message} at position {position}")
        self.position = position


# ---------------------------------------------------------------------------- paths

# One step after "$": .name | [0] | ["key"] | ['key'].
_STEP = re.compile(r"""\.([^.\[\]\s"']+)|\[(\d+)\]|\["([^"]*)"\]|\['([^']*)'\]""")


@dataclass(frozen=True)
class Path:
    """A JSONPath-like location in an event: ``$.properties.items[0].sku``."""

    text: str
    steps: tuple[str | int, ...]

    def find(self, event: object) -> Any:
        """The value at this path, or MISSING when nothing (or null) is there."""
        node = event
        for step in self.steps:
            node = _step_into(node, step)
            if node is MISSING:
                return MISSING
        return MISSING if node is None else node

    def pick(self, event: object) -> Any:
        """A copy of the value found, so an action can't alter the event it came from."""
        return copy.deepcopy(self.find(event))


def _step_into(node: object, step: str | int) -> Any:
    """One step down: a key of an object, or an index of a list."""
    if isinstance(node, dict):
        return node.get(step, MISSING) if isinstance(step, str) else MISSING
    if isinstance(node, list):
        # A dotted digit (``items.0``) indexes too, which trigger paths rely on.
        if isinstance(step, str) and step.isdigit():
            step = int(step)
        if isinstance(step, int) and step < len(node):
            return node[step]
    return MISSING


def parse_path(text: str) -> Path:
    """Parse ``$``, ``$.a.b``, ``$.a[0]``, ``$["odd key"]``; raise :class:`PathError`."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathError(str(text), 0, "a path starts with '$'")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise PathError(text, position, f"unexpected {text[position]!r}")
        name, index, double, single = match.groups()
        steps.append(int(index) if index is not None else next(part for part in (name, double, single) if part is not None))
        position = match.end()
    return Path(text, tuple(steps))


# -------------------------------------------------------------------------- sources


class Source:
    """Something that picks a value out of an event (or MISSING)."""

    def pick(self, event: dict) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class PathSource(Source):
    path: Path

    def pick(self, event: dict) -> Any:
        return self.path.pick(event)


@dataclass(frozen=True)
class Literal(Source):
    value: Any

    def pick(self, event: dict) -> Any:
        # A copy: the literal belongs to the mapping, shared by every event.
        return copy.deepcopy(self.value)


@dataclass(frozen=True)
class Nothing(Source):
    """A field mapped to null: it is never sent."""

    def pick(self, event: dict) -> Any:
        return MISSING


@dataclass(frozen=True)
class Template(Source):
    """Text with ``{{path}}`` placeholders."""

    parts: tuple[str | Path, ...]

    def pick(self, event: dict) -> Any:
        found = [part if isinstance(part, str) else part.find(event) for part in self.parts]
        paths = [value for part, value in zip(self.parts, found) if isinstance(part, Path)]
        if paths and all(value is MISSING for value in paths):
            # "{{traits.first}} {{traits.last}}" of an event without them would
            # send " " and overwrite a real name: nothing found, nothing sent.
            return MISSING
        return "".join(part if isinstance(part, str) else _render(value) for part, value in zip(self.parts, found))


@dataclass(frozen=True)
class ObjectSource(Source):
    """An object whose keys each have a source; keys that find nothing are left out."""

    keys: tuple[tuple[str, Source], ...]

    def pick(self, event: dict) -> Any:
        found = {key: source.pick(event) for key, source in self.keys}
        found = {key: value for key, value in found.items() if value is not MISSING}
        return found or MISSING


@dataclass(frozen=True)
class First(Source):
    """The first of several sources that finds something (a fallback chain)."""

    sources: tuple[Source, ...]

    def pick(self, event: dict) -> Any:
        for source in self.sources:
            value = source.pick(event)
            if value is not MISSING:
                return value
        return MISSING


@dataclass(frozen=True)
class IfExists(Source):
    """``then`` when ``condition`` finds something, else ``otherwise``."""

    condition: Source
    then: Source
    otherwise: Source

    def pick(self, event: dict) -> Any:
        found = self.condition.pick(event) is not MISSING
        return (self.then if found else self.otherwise).pick(event)


def _render(value: Any) -> str:
    """A found value as template text, the way JavaScript would print it."""
    if value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -------------------------------------------------------------------------- parsing

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
#: Segment's directives that have no counterpart of ours: read in Segment's format, with its rules.
SEGMENT_ONLY_DIRECTIVES = ("@case", "@replace", "@arrayPath", "@json", "@flatten", "@merge", "@transform", "@excludeWhenNull")
_DIRECTIVES = ("@path", "@template", "@literal", "@first", "@if", "@segment", *SEGMENT_ONLY_DIRECTIVES)


def parse_source(spec: Any, field: str) -> Source:
    """Parse one field's source from plain data; raise :class:`SourceError` naming ``field``."""
    if spec is None:
        return Nothing()
    if isinstance(spec, str):
        return _parse_string(spec, field)
    if isinstance(spec, dict):
        if any(isinstance(key, str) and key.startswith("@") for key in spec):
            return _parse_directive(spec, field)
        return _parse_object(spec, field)
    return Literal(spec)


def _parse_string(text: str, field: str) -> Source:
    """A path when it starts with '$', a template when it has '{{', else a literal."""
    if text.startswith("$"):
        return PathSource(_path(text, field, hint=True))
    if "{{" in text or "}}" in text:
        return _parse_template(text, field)
    return Literal(text)


def _path(text: str, field: str, hint: bool = False) -> Path:
    """parse_path, with its error turned into a SourceError for ``field``."""
    try:
        return parse_path(text)
    except PathError as error:
        extra = " (for a literal text starting with '$', write {'@literal': ...})" if hint else ""
        raise SourceError(field, f"{error}{extra}") from None


def _parse_template(text: str, field: str) -> Template:
    """Split a template into literal text and paths (``$.`` optional inside ``{{ }}``)."""
    parts: list[str | Path] = []
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(_template_text(text, position, match.start(), field))
        inner = match.group(1).strip()
        if not inner:
            raise SourceError(field, f"empty {{{{ }}}} at position {match.start()} in template {text!r}")
        parts.append(_path(inner if inner.startswith("$") else f"$.{inner}", field))
        position = match.end()
    parts.append(_template_text(text, position, len(text), field))
    return Template(tuple(part for part in parts if part != ""))


def _template_text(text: str, start: int, end: int, field: str) -> str:
    """The literal text between placeholders, which must not hold a stray brace pair."""
    chunk = text[start:end]
    for braces in ("{{", "}}"):
        if braces in chunk:
            where = start + chunk.index(braces)
            raise SourceError(field, f"unbalanced {braces!r} at position {where} in template {text!r}")
    return chunk


def _parse_object(spec: dict, field: str) -> ObjectSource:
    """An object of sources, one per key."""
    keys = []
    for key, value in spec.items():
        if not isinstance(key, str):
            raise SourceError(field, f"object keys must be strings, got {key!r}")
        keys.append((key, parse_source(value, f"{field}.{key}")))
    return ObjectSource(tuple(keys))


def _parse_directive(spec: dict, field: str) -> Source:
    """``{"@path": ...}``, ``{"@if": {...}}`` and the other spelled-out sources."""
    if len(spec) != 1:
        raise SourceError(field, f"a directive stands alone; got keys {sorted(map(str, spec))}")
    ((name, argument),) = spec.items()
    if name in SEGMENT_ONLY_DIRECTIVES or (name == "@if" and isinstance(argument, dict) and "blank" in argument):
        return _parse_segment(spec, field)  # none of ours is spelled so: Segment's, with Segment's rules
    if name == "@literal":
        return Literal(argument)
    if name == "@path":
        if not isinstance(argument, str):
            raise SourceError(field, f"@path takes a path string, got {argument!r}")
        return PathSource(_path(argument, field))
    if name == "@template":
        if not isinstance(argument, str):
            raise SourceError(field, f"@template takes a string, got {argument!r}")
        return _parse_template(argument, field)
    if name == "@first":
        if not isinstance(argument, list) or not argument:
            raise SourceError(field, "@first takes a non-empty list of sources")
        return First(tuple(parse_source(item, field) for item in argument))
    if name == "@if":
        return _parse_if(argument, field)
    if name == "@segment":
        return _parse_segment(argument, field)
    raise SourceError(field, f"unknown directive {name!r}; expected one of {', '.join(_DIRECTIVES)}")


def _parse_if(argument: Any, field: str) -> IfExists:
    """``{"@if": {"exists": src, "then": src, "else": src}}``; then/else default to nothing."""
    if not isinstance(argument, dict) or "exists" not in argument:
        raise SourceError(field, "@if takes an object with 'exists' and 'then' and/or 'else'")
    unknown = set(argument) - {"exists", "then", "else"}
    if unknown:
        raise SourceError(field, f"@if has unknown keys {sorted(map(str, unknown))}; expected exists, then, else")
    return IfExists(
        condition=parse_source(argument["exists"], field),
        then=parse_source(argument.get("then"), field),
        otherwise=parse_source(argument.get("else"), field),
    )


def _parse_segment(argument: Any, field: str) -> Source:
    """A value in Segment's mapping format, checked now as Segment's validate would."""
    from worker.mappings.segment_directives import compile_mapping  # it builds on this module

    try:
        return compile_mapping(argument, field)
    except ValueError as error:
        raise SourceError(field, f"in Segment's format, {getattr(error, 'reason', error)}") from None
