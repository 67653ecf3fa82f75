"""JavaScript's value rules, as Segment's code applies them to JSON events.

Segment's subscription language and mapping directives run in JavaScript, so
their meaning leans on JavaScript's conversions: ``String(5.0)`` is ``"5"``,
``Number("0x10")`` is ``16``, ``0 && x`` is ``0``, ``"abc"["length"]`` is ``3``.
This module reproduces those rules over Python's JSON values (``None`` is null,
:data:`~worker.mappings.fields.MISSING` is undefined), and nothing else.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from worker.mappings.fields import MISSING


class _JsFunction:
    """A JavaScript function (``{}.constructor``, ``"a".trim``): present, but no JSON value."""

    def __repr__(self) -> str:
        return "[Function]"


#: What a lookup of a built-in method (``toString``, ``trim``, ...) gives.
FUNCTION: Any = _JsFunction()

#: Properties every JavaScript value has through ``Object.prototype``.
OBJECT_PROTOTYPE = frozenset(
    "constructor __proto__ __defineGetter__ __defineSetter__ __lookupGetter__ __lookupSetter__ hasOwnProperty "
    "isPrototypeOf propertyIsEnumerable toString toLocaleString valueOf".split()
)
ARRAY_PROTOTYPE = frozenset(
    "at concat copyWithin entries every fill filter find findIndex findLast findLastIndex flat flatMap forEach includes "
    "indexOf join keys lastIndexOf map pop push reduce reduceRight reverse shift slice some sort splice unshift values "
    "toReversed toSorted toSpliced with".split()
)
STRING_PROTOTYPE = frozenset(
    "anchor at big blink bold charAt charCodeAt codePointAt concat endsWith fixed fontcolor fontsize includes indexOf "
    "isWellFormed italics lastIndexOf link localeCompare match matchAll normalize padEnd padStart repeat replace "
    "replaceAll search slice small split startsWith strike sub substr substring sup toLocaleLowerCase "
    "toLocaleUpperCase toLowerCase toUpperCase toWellFormed trim trimEnd trimLeft trimRight trimStart".split()
)
NUMBER_PROTOTYPE = frozenset("toExponential toFixed toPrecision".split())
#: Every name that is a built-in property of some JSON value in JavaScript.
BUILTIN_NAMES = OBJECT_PROTOTYPE | ARRAY_PROTOTYPE | STRING_PROTOTYPE | NUMBER_PROTOTYPE | {"length"}


def is_number(value: Any) -> bool:
    """``typeof value === 'number'`` (Python's bool is an int; JavaScript's is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def truthy(value: Any) -> bool:
    """JavaScript's truthiness: undefined, null, false, 0, NaN and "" are falsy."""
    if value is MISSING or value is None or value is False:
        return False
    if is_number(value):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def _index(key: str) -> int | None:
    """``key`` as an array index, when JavaScript reads it as one ("1" yes, "01" no)."""
    return int(key) if key.isdigit() and str(int(key)) == key else None


def get_property(value: Any, key: str) -> Any:
    """``value[key]`` for a truthy ``value``; MISSING for undefined."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        return FUNCTION if key in OBJECT_PROTOTYPE else MISSING
    if isinstance(value, (list, str)):
        index = _index(key)
        if index is not None:
            return value[index] if index < len(value) else MISSING
        if key == "length":
            return len(value) if isinstance(value, list) else len(value.encode("utf-16-le")) // 2
        methods = ARRAY_PROTOTYPE if isinstance(value, list) else STRING_PROTOTYPE
        return FUNCTION if key in methods or key in OBJECT_PROTOTYPE else MISSING
    extra = NUMBER_PROTOTYPE if is_number(value) else frozenset()
    return FUNCTION if key in OBJECT_PROTOTYPE or key in extra else MISSING


def lookup(value: Any, keys: list[str]) -> Any:
    """``keys.reduce((v, key) => v && v[key], value)``: Segment's ``get``."""
    for key in keys:
        if not truthy(value):
            return value
        value = get_property(value, key)
    return value


# ---------------------------------------------------------------------- conversions

_JS_SPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RADIX = re.compile(r"0([xXoObB])([0-9a-fA-F]+)")


def to_number(value: Any) -> float:
    """``Number(value)``."""
    if value is True or value is False:
        return 1.0 if value else 0.0
    if is_number(value):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, str):
        return _string_to_number(value.strip(_JS_SPACE))
    return math.nan


def _string_to_number(text: str) -> float:
    if text == "":
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if text.lstrip("+-") == "Infinity" and text.count("-") + text.count("+") <= 1:
        return -math.inf if text.startswith("-") else math.inf
    match = _RADIX.fullmatch(text)
    if match:
        base = {"x": 16, "o": 8, "b": 2}[match.group(1).lower()]
        try:
            return float(int(match.group(2), base))
        except ValueError:
            return math.nan
    return math.nan


def number_to_string(number: float) -> str:
    """``String(number)``: shortest digits, JavaScript's choice between plain and exponent form."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(float(number)))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    point = len(digits) + int(exponent)  # the decimal point sits after this many digits
    if len(digits) <= point <= 21:
        return sign + digits + "0" * (point - len(digits))
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * -point + digits
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if point - 1 >= 0 else '-'}{abs(point - 1)}"


def to_string(value: Any) -> str:
    """``String(value)``."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if is_number(value):
        return number_to_string(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None or item is MISSING else to_string(item) for item in value)
    if value is FUNCTION:
        return "function () { [native code] }"
    return "[object Object]"


def type_of(value: Any) -> str:
    """Segment's ``realTypeOf``: string, number, boolean, null, undefined, array, object, function."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if value is FUNCTION:
        return "function"
    return "object"
