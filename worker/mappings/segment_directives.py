"""Segment's mapping directives, evaluated exactly as Segment's mapping-kit evaluates them.

A port of the behaviour of packages/core/src/mapping-kit in segmentio/action-destinations:
``@path``, ``@template``, ``@literal``, ``@if`` (``exists``/``blank``), ``@case``,
``@replace``, ``@arrayPath``, ``@json``, ``@flatten``, ``@merge``, ``@transform`` and
``@excludeWhenNull``; ``@liquid`` is refused.  Segment's rules hold, not ours:

- a plain string is a literal (``"$.traits.email"`` is that text), only ``@path`` reads;
- a key whose value resolves to nothing (undefined) is dropped, ``null`` is kept;
- paths and templates go through JavaScript (``{{traits}}`` of an object renders
  ``[object Object]``; ``properties.a.b`` of ``{"a": 0}`` is ``0``).

:func:`compile_mapping` checks a mapping value the way Segment's ``validate`` does
(once, at load) and returns a :class:`SegmentValue` whose ``render(event)`` resolves it.
A directive that fails on an event (``@path`` of a non-string) raises
:class:`SegmentMappingError`, as Segment's ``transform`` throws.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from worker.mappings import js
from worker.mappings.fields import MISSING, Source
from worker.mappings.mapping import MappingError

MAX_PATTERN_LENGTH = 10
MAX_REPLACEMENT_LENGTH = 10


class SegmentMappingError(MappingError):
    """A mapping value Segment's validate refuses, or a directive that fails on an event."""


# ---------------------------------------------------------------------------- paths

_SPLIT = re.compile(r"""\[(?=["'\d])|\.|(?<=["'\d])\]+""")


@functools.lru_cache(maxsize=4096)
def _keys(path: str) -> tuple[str, ...]:
    """Segment's core ``get`` split: ``a.b[0]['c']`` is a, b, 0, c (cached: parsed once per path)."""
    return tuple(part.replace("'", "").replace('"', "") for part in _SPLIT.split(path) if part)


def get(value: Any, path: str) -> Any:
    """Segment's core ``get``: ``""`` and ``"."`` are the value itself."""
    if path in ("", "."):
        return value
    return js.lookup(value, list(_keys(path)))


_TRIPLE = re.compile(r"\{\{\{([^}]+)\}\}\}")
_DOUBLE = re.compile(r"\{\{([^}]+)\}\}")


def render_template(template: str, data: Any) -> str:
    """Segment's ``render``: ``{{{path}}}`` then ``{{path}}``, a missing value as ""."""

    def replace(match: re.Match[str]) -> str:
        value = get(data, match.group(1).strip(_JS_TRIM))
        return "" if value is MISSING or value is None else js.to_string(value)

    return _DOUBLE.sub(replace, _TRIPLE.sub(replace, template))


_JS_TRIM = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


# ------------------------------------------------------------------------ validation


def _kind(value: Any) -> str:
    """Segment's ``realTypeOrDirective``."""
    kind = js.type_of(value)
    if kind == "object" and any(isinstance(key, str) and key.startswith("@") for key in value):
        return "directive"
    return kind


def _article(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _fail(stack: list[str], message: str) -> SegmentMappingError:
    where = ".".join(stack)
    return SegmentMappingError(f"{where + ': ' if where else ''}{message}")


def validate(mapping: Any, stack: list[str]) -> None:
    """Segment's mapping-kit ``validate``: raise :class:`SegmentMappingError` at the first problem."""
    kind = _kind(mapping)
    if kind == "directive":
        _validate_directive(mapping, stack)
    elif kind == "object":
        _validate_object(mapping, stack)
    elif kind == "array":
        return  # Segment does not look inside arrays here


def _validate_directive(value: Any, stack: list[str]) -> None:
    kind = _kind(value)
    if kind not in ("object", "directive"):
        raise _fail(stack, f"should be a directive object but it is {_article(kind)} {kind}")
    names = [key for key in value if key.startswith("@")]
    if len(names) > 1:
        raise _fail(stack, f"should only have one @-prefixed key but it has {len(names)} keys")
    if any(not key.startswith("@") and key != "_metadata" for key in value):
        raise _fail(stack, f"should only have one @-prefixed key but it has {len(value)} keys")
    name = names[0]
    if name == "@liquid":
        raise _fail(stack, "@liquid is not supported here")
    check = _VALIDATORS.get(name)
    if check is None:
        raise _fail(stack, f"has an invalid directive: {name}")
    check(value[name], stack + [name])


def _raw(value: Any, stack: list[str]) -> None:
    kind = _kind(value)
    if kind == "directive":
        _validate_directive(value, stack)
    elif kind not in ("object", "array", "boolean", "string", "number", "null"):
        raise _fail(stack, f"should be a mapping directive or a JSON value but it is {_article(kind)} {kind}")


def _string_or_directive(value: Any, stack: list[str]) -> None:
    kind = _kind(value)
    if kind == "directive":
        _validate_directive(value, stack)
    elif kind != "string":
        raise _fail(stack, f"should be a string or a mapping directive but it is {_article(kind)} {kind}")


def _object_or_directive(value: Any, stack: list[str]) -> None:
    kind = _kind(value)
    if kind == "directive":
        _validate_directive(value, stack)
    elif kind == "object":
        _validate_object(value, stack)
    else:
        raise _fail(stack, f"should be a object or a mapping directive but it is {_article(kind)} {kind}")


def _validate_object(value: Any, stack: list[str]) -> None:
    kind = js.type_of(value)
    if kind != "object":
        raise _fail(stack, f"should be an object but it is {_article(kind)} {kind}")
    directive = next((key for key in value if key.startswith("@")), None)
    if directive is not None:
        raise _fail(stack, f"shouldn't have directive (@-prefixed) keys but it has {json.dumps(directive)}")
    for key, item in value.items():
        validate(item, stack + [key])


def _string(value: Any, stack: list[str]) -> None:
    if not isinstance(value, str):
        kind = js.type_of(value)
        raise _fail(stack, f"should be a string but it is {_article(kind)} {kind}")


def _length(low: int, high: int) -> Callable[[Any, list[str]], None]:
    def check(value: Any, stack: list[str]) -> None:
        _string(value, stack)
        if len(value) < low:
            raise _fail(stack, f"should be a string of length {low} or greater")
        if len(value) > high:
            raise _fail(stack, f"should be a string of length {high} or less")

    return check


def _one_of(*allowed: str) -> Callable[[Any, list[str]], None]:
    def check(value: Any, stack: list[str]) -> None:
        _string(value, stack)
        if value not in allowed:
            raise _fail(stack, f"should be one of {', '.join(allowed)} but it is {json.dumps(value)}")

    return check


def _boolean(value: Any, stack: list[str]) -> None:
    if not isinstance(value, bool):
        kind = js.type_of(value)
        raise _fail(stack, f"should be a boolean but it is {_article(kind)} {kind}")


def _array(value: Any, stack: list[str]) -> None:
    if not isinstance(value, list):
        kind = js.type_of(value)
        raise _fail(stack, f"should be an array but it is {_article(kind)} {kind}")


Check = Callable[[Any, list[str]], None]


def _fields(required: dict[str, Check], optional: dict[str, Check]) -> Check:
    def check(value: Any, stack: list[str]) -> None:
        _validate_object(value, stack)
        for name, rule in required.items():
            if name not in value:
                raise _fail(stack, f"should have field {json.dumps(name)} but it doesn't")
            rule(value[name], stack + [name])
        for name, rule in optional.items():
            if name in value:
                rule(value[name], stack + [name])

    return check


def _array_path(value: Any, stack: list[str]) -> None:
    _array(value, stack)
    _string_or_directive(value[0] if value else MISSING, stack)
    validate(value[1] if len(value) > 1 else MISSING, stack)


def _merge(value: Any, stack: list[str]) -> None:
    _fields({"objects": _array}, {"direction": _one_of("left", "right")})(value, stack)
    for item in value["objects"]:
        _object_or_directive(item, stack)


_VALIDATORS: dict[str, Check] = {
    "@if": _fields({}, {"exists": _raw, "then": _raw, "else": _raw}),
    "@case": _fields({}, {"operator": _string, "value": _string_or_directive}),
    "@replace": _fields(
        {"pattern": _length(1, MAX_PATTERN_LENGTH), "value": _string_or_directive},
        {"replacement": _length(0, MAX_REPLACEMENT_LENGTH), "ignorecase": _boolean, "global": _boolean},
    ),
    "@arrayPath": _array_path,
    "@path": _string_or_directive,
    "@json": _fields({"value": _raw, "mode": _one_of("encode", "decode")}, {}),
    "@flatten": _fields({"value": _raw}, {"separator": _string}),
    "@merge": _merge,
    "@template": _string_or_directive,
    "@literal": _raw,
    "@transform": _fields({"apply": _object_or_directive, "mapping": _object_or_directive}, {}),
    "@excludeWhenNull": _raw,
}


# ------------------------------------------------------------------------ resolution


def _is_directive(value: Any) -> bool:
    """Segment's ``isDirective``: an object whose keys are one @-key (and ``_metadata``)."""
    if not isinstance(value, dict) or not any(key.startswith("@") for key in value):
        return False
    return all(key.startswith("@") or key == "_metadata" for key in value)


def resolve(mapping: Any, payload: Any) -> Any:
    """Segment's ``resolve``: raw values as they are, directives run, objects and arrays key by key."""
    if not isinstance(mapping, (dict, list)):
        return mapping
    if _is_directive(mapping):
        name = next(key for key in mapping if key.startswith("@"))
        directive = _DIRECTIVES.get(name)
        if directive is None:
            raise SegmentMappingError(f"{name} is not a valid directive, got undefined")
        return directive(mapping[name], payload)
    if isinstance(mapping, list):
        return [resolve(item, payload) for item in mapping]
    return {key: resolve(value, payload) for key, value in mapping.items()}


def remove_undefined(value: Any) -> Any:
    """Drop object keys whose value is undefined, at every depth (arrays keep their places)."""
    if isinstance(value, list):
        return [remove_undefined(item) for item in value]
    if isinstance(value, dict):
        return {key: remove_undefined(item) for key, item in value.items() if item is not MISSING}
    return value


def transform(mapping: Any, data: Any) -> Any:
    """Segment's ``transform``: validate, resolve, then drop undefined keys."""
    if js.type_of(data) != "object":
        raise SegmentMappingError(f"data must be an object, got {js.type_of(data)}")
    validate(mapping, [])
    return remove_undefined(resolve(mapping, data))


def _option(options: dict, key: str) -> Any:
    return options.get(key, MISSING)


def _object_options(name: str, message: str) -> Callable[[Callable[[dict, Any], Any]], Callable[[Any, Any], Any]]:
    def wrap(function: Callable[[dict, Any], Any]) -> Callable[[Any, Any], Any]:
        def directive(options: Any, payload: Any) -> Any:
            if js.type_of(options) != "object":
                raise SegmentMappingError(f"{name} requires {message}")
            return function(options, payload)

        return directive

    return wrap


def _string_directive(name: str, function: Callable[[str, Any], Any]) -> Callable[[Any, Any], Any]:
    def directive(value: Any, payload: Any) -> Any:
        text = resolve(value, payload)
        if not isinstance(text, str):
            raise SegmentMappingError(f"{name}: expected string, got {js.type_of(text)}")
        return function(text, payload)

    return directive


def _blank(value: Any) -> bool:
    """``value == ''`` with JavaScript's loose equality."""
    if isinstance(value, bool):
        return value is False
    if js.is_number(value):
        return value == 0
    if isinstance(value, (str, list)):
        return js.to_string(value) == ""
    return False


@_object_options("@if", 'an object with an "exists" key')
def _if(options: dict, payload: Any) -> Any:
    exists, blank = _option(options, "exists"), _option(options, "blank")
    if not js.truthy(exists) and not js.truthy(blank):
        raise SegmentMappingError('@if requires an "exists" key or a "blank" key')
    if exists is not MISSING:
        value = resolve(exists, payload)
        condition = value is not MISSING and value is not None
    else:
        value = resolve(blank, payload)
        condition = value is not MISSING and value is not None and not _blank(value)
    if condition and _option(options, "then") is not MISSING:
        return resolve(options["then"], payload)
    if not condition and js.truthy(_option(options, "else")):
        return resolve(options["else"], payload)
    return MISSING


@_object_options("@case", 'an object with a "operator" key')
def _case(options: dict, payload: Any) -> Any:
    operator = _option(options, "operator")
    if not js.truthy(operator):
        raise SegmentMappingError('@case requires a "operator" key')
    if not js.truthy(_option(options, "value")):
        return MISSING
    value = resolve(options["value"], payload)
    if isinstance(value, str):
        if operator == "lower":
            return value.lower()
        if operator == "upper":
            return value.upper()
        raise SegmentMappingError('operator key should have a value of "lower" or "upper"')
    return value


def _js_replacement(replacement: str, match: re.Match[str]) -> str:
    """A JavaScript replacement string: ``$&`` the match, ``$$`` a dollar, ``$``` and ``$'`` around it."""
    whole = match.string
    expansions = {"$": "$", "&": match.group(0), "`": whole[: match.start()], "'": whole[match.end() :]}
    return re.sub(r"\$([$&`'])", lambda m: expansions[m.group(1)], replacement)


def _perform_replace(value: str, pattern: str, replacement: str, is_global: bool, ignorecase: bool) -> str:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise SegmentMappingError(f'@replace requires a "pattern" less than {MAX_PATTERN_LENGTH} characters')
    if len(replacement) > MAX_REPLACEMENT_LENGTH:
        raise SegmentMappingError(f'@replace requires a "replacement" less than {MAX_REPLACEMENT_LENGTH} characters')
    regex = re.compile(re.escape(pattern), re.IGNORECASE if ignorecase else 0)
    return regex.sub(lambda match: _js_replacement(replacement, match), value, count=0 if is_global else 1)


@_object_options("@replace", 'an object with a "pattern" key')
def _replace(options: dict, payload: Any) -> Any:
    pattern = _option(options, "pattern")
    if not js.truthy(pattern):
        raise SegmentMappingError('@replace requires a "pattern" key')
    replacement = _default(_option(options, "replacement"), "")
    pattern2 = _option(options, "pattern2")
    replacement2 = _default(_option(options, "replacement2"), "") if js.truthy(pattern2) else _option(options, "replacement2")
    ignorecase = _default(_option(options, "ignorecase"), False)
    is_global = _default(_option(options, "global"), True)
    if not js.truthy(_option(options, "value")):
        return MISSING
    value = resolve(options["value"], payload)
    if isinstance(value, bool) or js.is_number(value):
        value = js.to_string(value)
    if not (isinstance(value, str) and isinstance(pattern, str) and isinstance(replacement, str)):
        return ""
    if not (isinstance(ignorecase, bool) and isinstance(is_global, bool)):
        return ""
    result = _perform_replace(value, pattern, replacement, is_global, ignorecase)
    if js.truthy(pattern2) and isinstance(pattern2, str) and isinstance(replacement2, str):
        result = _perform_replace(result, pattern2, replacement2, is_global, ignorecase)
    return result


def _default(value: Any, default: Any) -> Any:
    """``if (x == null) x = default``."""
    return default if value is MISSING or value is None else value


def _array_path_directive(data: Any, payload: Any) -> Any:
    if not isinstance(data, list):
        raise SegmentMappingError(f"@arrayPath expected array, got {js.type_of(data)}")
    path = data[0] if data else MISSING
    shape = data[1] if len(data) > 1 else MISSING
    root = get(payload, path.replace("$.", "", 1)) if isinstance(path, str) else resolve(path, payload)
    if js.type_of(root) in ("object", "array") and js.type_of(shape) == "object" and shape:
        items = root if isinstance(root, list) else [root]
        return [resolve(shape, item) for item in items]
    return root


@_object_options("@flatten", 'an object with a "separator" key')
def _flatten(options: dict, payload: Any) -> Any:
    if not js.truthy(_option(options, "separator")):
        raise SegmentMappingError('@flatten requires a "separator" key')
    separator = resolve(options["separator"], payload)
    if not isinstance(separator, str):
        raise SegmentMappingError("@flatten requires a string separator")
    value = resolve(_option(options, "value"), payload)
    return flatten_object(value, "", separator, js.truthy(_option(options, "omitArrays")))


def flatten_object(value: Any, prefix: str, separator: str, ignore_arrays: bool) -> dict:
    """Segment's ``flattenObject``: nested keys joined by ``separator``."""
    if js.type_of(value) == "object" or (not ignore_arrays and isinstance(value, list)):
        entries = value.items() if isinstance(value, dict) else ((str(index), item) for index, item in enumerate(value))
        flat: dict = {}
        for key, item in entries:
            flat.update(flatten_object(item, f"{prefix}{separator}{key}" if prefix else key, separator, ignore_arrays))
        return flat
    return {prefix: value}


@_object_options("@json", 'an object with a "value" key')
def _json(options: dict, payload: Any) -> Any:
    if not js.truthy(_option(options, "mode")):
        raise SegmentMappingError('@json requires a "mode" key')
    if not js.truthy(_option(options, "value")):
        raise SegmentMappingError('@json requires a "value" key')
    value = resolve(options["value"], payload)
    if options["mode"] == "encode":
        return json_stringify(value)
    if options["mode"] == "decode":
        if isinstance(value, str):
            try:
                return json.loads(value, parse_constant=_no_constant)
            except ValueError:
                return value
        return value
    return MISSING


def _no_constant(name: str) -> Any:
    raise ValueError(f"JSON.parse does not read {name}")


def json_stringify(value: Any) -> Any:
    """``JSON.stringify(value)``; undefined for undefined."""
    if value is MISSING or value is js.FUNCTION:
        return MISSING
    if value is None or isinstance(value, bool) or isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if js.is_number(value):
        text = js.number_to_string(float(value))
        return "null" if text in ("NaN", "Infinity", "-Infinity") else text
    if isinstance(value, list):
        return "[" + ",".join(_json_item(item) for item in value) + "]"
    parts = [
        f"{json.dumps(key, ensure_ascii=False)}:{json_stringify(item)}"
        for key, item in value.items()
        if json_stringify(item) is not MISSING
    ]
    return "{" + ",".join(parts) + "}"


def _json_item(item: Any) -> str:
    text = json_stringify(item)
    return "null" if text is MISSING else text


@_object_options("@merge", 'an object with an "objects" key and a "direction" key')
def _merge_directive(options: dict, payload: Any) -> Any:
    if not js.truthy(_option(options, "direction")):
        raise SegmentMappingError('@merge requires a "direction" key')
    direction = resolve(options["direction"], payload)
    if not js.truthy(_option(options, "objects")):
        raise SegmentMappingError('@merge requires a "objects" key')
    if not isinstance(options["objects"], list):
        raise SegmentMappingError(f"@merge: expected opts.array, got {js.type_of(options['objects'])}")
    objects = [resolve(item, payload) for item in options["objects"]]
    if direction == "left":
        objects.reverse()
    merged: dict = {}
    for item in objects:  # Object.assign: strings and arrays give their indexes, other primitives nothing
        if isinstance(item, dict):
            merged.update(item)
        elif isinstance(item, (str, list)):
            merged.update({str(index): part for index, part in enumerate(item)})
    return merged


@_object_options("@transform", 'an object with an "apply" key and a "mapping" key')
def _transform(options: dict, payload: Any) -> Any:
    if not js.truthy(_option(options, "mapping")):
        raise SegmentMappingError('@transform requires a "mapping" key')
    if not js.truthy(_option(options, "apply")):
        raise SegmentMappingError('@transform requires a "apply" key')
    if js.type_of(options["apply"]) != "object":
        raise SegmentMappingError('@transform "apply" key should be an object')
    return resolve(options["mapping"], transform(options["apply"], payload))


def _exclude_when_null(value: Any, payload: Any) -> Any:
    resolved = resolve(value, payload)
    return MISSING if resolved is None else _clean_nulls(resolved)


def _clean_nulls(value: Any) -> Any:
    if js.type_of(value) != "object":
        return value
    return {key: MISSING if item is None else _clean_nulls(item) for key, item in value.items()}


_DIRECTIVES: dict[str, Callable[[Any, Any], Any]] = {
    "@if": _if,
    "@case": _case,
    "@replace": _replace,
    "@arrayPath": _array_path_directive,
    "@path": _string_directive("@path", lambda path, payload: get(payload, path.replace("$.", "", 1))),
    "@template": _string_directive("@template", lambda template, payload: render_template(template, payload)),
    "@literal": resolve,
    "@flatten": _flatten,
    "@json": _json,
    "@merge": _merge_directive,
    "@transform": _transform,
    "@excludeWhenNull": _exclude_when_null,
}


# ------------------------------------------------------------------- in our mappings


Resolver = Callable[[Any], Any]


def compile_resolver(mapping: Any) -> Resolver:
    """``resolve`` specialised for one mapping value: paths split and directives looked up once, at load.

    Gives what :func:`resolve` gives; only ``@path`` of a fixed path and objects/arrays
    of such are specialised, every other directive runs as :func:`resolve` runs it.
    """
    if not isinstance(mapping, (dict, list)):
        return lambda payload: mapping
    if _is_directive(mapping):
        name = next(key for key in mapping if key.startswith("@"))
        argument = mapping[name]
        if name == "@path" and isinstance(argument, str):
            path = argument.replace("$.", "", 1)
            if path in ("", "."):
                return lambda payload: payload
            keys = list(_keys(path))
            return lambda payload: js.lookup(payload, keys)
        directive = _DIRECTIVES.get(name)
        if directive is None:
            return lambda payload: resolve(mapping, payload)  # raises as Segment does, on use
        return lambda payload: directive(argument, payload)
    if isinstance(mapping, list):
        items = [compile_resolver(item) for item in mapping]
        return lambda payload: [item(payload) for item in items]
    pairs = [(key, compile_resolver(value)) for key, value in mapping.items()]
    return lambda payload: {key: value(payload) for key, value in pairs}


@dataclass(frozen=True)
class SegmentValue(Source):
    """One field written in Segment's format, checked and compiled at load, resolved per event."""

    mapping: Any
    resolver: Resolver

    def render(self, event: dict) -> Any:
        """The value Segment would give this field (MISSING: the field is left out)."""
        return finish(self.resolver(event))

    def pick(self, event: dict) -> Any:
        # finish() builds new objects and arrays: an action can't alter the event through them.
        return self.render(event)


def finish(value: Any) -> Any:
    """A resolved value as JSON data: undefined keys dropped, undefined in an array null (as JSON.stringify)."""
    if isinstance(value, list):
        return [None if item is MISSING or item is js.FUNCTION else finish(item) for item in value]
    if isinstance(value, dict):
        return {key: finish(item) for key, item in value.items() if item is not MISSING and item is not js.FUNCTION}
    return MISSING if value is js.FUNCTION else value


def compile_mapping(mapping: Any, field: str = "") -> SegmentValue:
    """Check ``mapping`` (a field's value in Segment's format) as Segment does; raise naming ``field``."""
    validate(mapping, [field] if field else [])
    return SegmentValue(mapping, compile_resolver(mapping))
