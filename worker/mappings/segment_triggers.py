"""Segment's subscription (trigger) language, read exactly as Segment reads it.

A port of the behaviour of Segment's open-source implementation: the FQL lexer
(segmentio/fql-ts) and ``parseFql``/``validate`` of
packages/destination-subscriptions in segmentio/action-destinations.  What it
accepts, what it refuses and what each trigger matches are Segment's, surprises
included:

- ``and``/``or`` have no precedence: within one level (the whole trigger, or one
  pair of parentheses) the *last* keyword joins every condition of the level, so
  ``a and b or c`` means ``a or b or c``.  Parentheses nest one level only.
- ``!=`` is true for a missing field; ``= null``/``!= null`` test absence/presence;
  ``= true``/``= false`` and ``= 5`` on properties, traits and context are typed
  (a boolean, a number); ``= "5"`` matches the string only.
- ``match(field, "abc*")`` is "starts with abc"; any other pattern is "ends with"
  the pattern minus its first character (``"*abc"`` is "ends with abc").
- A leading ``!`` negates ``contains()``/``match()`` only; elsewhere it is ignored.
- ``contains()``/``match()`` on ``type`` give no condition at all: they are dropped.
- Field paths go through JavaScript: ``properties.a.b`` of ``{"a": 0}`` is ``0``.

:func:`parse` gives Segment's condition tree (plain dicts, as Segment's own
tests spell them); :class:`SegmentTrigger` evaluates it; :func:`translate`
writes it in our trigger language (worker/mappings/triggers.py) with explicit
parentheses, or refuses what ours cannot say exactly.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from worker.mappings import js
from worker.mappings.fields import MISSING

Condition = dict[str, Any]

EOS_FLAG = "-1"  # what fql-ts's reader returns at the end of the text
_MAX_LENGTH = 100000


class SegmentTriggerError(ValueError):
    """A trigger Segment's parser refuses, or one our trigger language can't carry over exactly."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"{reason} in {text!r}")
        self.text = text
        self.reason = reason


# ---------------------------------------------------------------------------- lexer


@dataclass(frozen=True)
class Token:
    type: str  # ident, dot, operator, conditional, string, number, null, brackleft, brackright, parenleft, parenright, comma, eos
    value: str


def _is_alpha(char: str) -> bool:
    return re.search(r"[a-zA-Z]", char) is not None


def _is_number(char: str) -> bool:
    return char != EOS_FLAG and len(char) == 1 and char in "0123456789"


def _is_whitespace(char: str) -> bool:
    return char in (" ", "\t", "\n")


def _is_terminator(char: str) -> bool:
    return char == EOS_FLAG or _is_whitespace(char) or char in (",", "]", ")")


def _is_ident(char: str) -> bool:
    return char != EOS_FLAG and (_is_alpha(char) or _is_number(char) or char in ("_", "-", "\\"))


class _LexerError(Exception):
    pass


class _Lexer:
    """fql-ts's lexer, step for step (its quirks are part of what Segment accepts)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.position = 0

    def lex(self) -> list[Token]:
        tokens: list[Token] = []
        while True:
            char, eos = self.next()
            if eos:
                tokens.append(Token("eos", "eos"))
                return tokens
            if _is_whitespace(char):
                continue
            if char == "!":
                coming = self.peek()
                if _is_alpha(coming) or coming == "(":
                    tokens.append(Token("operator", "!"))
                    continue
            if _is_alpha(char) or char in ("!", "=", ">", "<", "\\", "_"):
                tokens.append(self.operator_or_conditional(char))
            elif _is_number(char) or char in ("-", "+"):
                tokens.append(self.number(char))
            elif char in ('"', "'"):
                tokens.append(self.string(char))
            elif char in _PUNCTUATION:
                tokens.append(Token(_PUNCTUATION[char], char))
            else:
                raise _LexerError(f'invalid character "{char}"')

    def string(self, quote: str) -> Token:
        text = ""
        while self.peek() != quote:
            char, eos = self.next()
            text += char
            if eos:
                raise _LexerError("unterminated string")
            if len(text) >= _MAX_LENGTH:
                raise _LexerError("unreasonable string length")
        self.accept(quote)
        return Token("string", f"{quote}{text}{quote}")

    def number(self, previous: str) -> Token:
        text = ""
        coming = self.peek()
        decimal = False
        while _is_number(coming) or coming == ".":
            char, _ = self.next()
            text += char
            if coming == ".":
                if _is_terminator(self.peek()):
                    raise _LexerError("unexpected terminator after decimal point")
                if decimal:
                    raise _LexerError("multiple decimal points in one number")
                decimal = True
            if len(text) >= _MAX_LENGTH:
                raise _LexerError("unreasonable number length")
            coming = self.peek()
        return Token("number", previous + text)

    def operator_or_conditional(self, previous: str) -> Token:
        if previous == "=":
            return Token("operator", "=")
        if previous == "!":
            if self.accept("="):
                return Token("operator", "!=")
            raise _LexerError(f"expected '=' after '!', got '{self.peek()}'")
        keyword = {"a": ("nd", "conditional", "and"), "o": ("r", "conditional", "or"), "n": ("ull", "null", "null")}.get(previous)
        if keyword is not None:
            rest, kind, value = keyword
            return Token(kind, value) if self.accept(rest) else self.ident(previous)
        if previous in ("<", ">"):
            return Token("operator", previous + "=") if self.accept("=") else Token("operator", previous)
        return self.ident(previous)

    def ident(self, previous: str) -> Token:
        text = ""
        char = previous
        while True:
            if char == "\\":  # any character may be escaped
                if self.peek() == EOS_FLAG:
                    raise _LexerError("expected character after escape character, got EOS")
                char = self.next()[0]
            text += char
            if len(text) >= _MAX_LENGTH:
                raise _LexerError("unreasonable literal length")
            if not _is_ident(self.peek()):
                break
            char = self.next()[0]
        coming = self.peek()
        if not (_is_terminator(coming) or coming in (".", "(", "=", "!")):
            raise _LexerError(f"expected termination character after identifier, got {coming}")
        return Token("ident", text)

    def accept(self, expected: str) -> bool:
        """Consume ``expected`` if it comes next, followed by a terminator (fql-ts's rule)."""
        chars = ""
        for _ in expected:
            char, eos = self.next()
            chars += char
            if eos:
                return False  # fql-ts does not back up here: what it read stays read
            if _is_terminator(char):
                break
        if chars == expected and _is_terminator(self.peek()):
            return True
        self.backup(len(chars))
        return False

    def next(self) -> tuple[str, bool]:
        if self.position == len(self.code):
            return EOS_FLAG, True
        self.position += 1
        return self.code[self.position - 1], False

    def peek(self) -> str:
        char, eos = self.next()
        if not eos:
            self.backup(1)
        return char

    def backup(self, count: int) -> None:
        self.position = max(0, self.position - count)


_PUNCTUATION = {".": "dot", "[": "brackleft", "]": "brackright", ",": "comma", "(": "parenleft", ")": "parenright"}


def _normalize(tokens: list[Token]) -> list[Token]:
    """Join ``ident . ident`` into one ident (``properties.plan``), as parseFql does."""
    joined: list[Token] = []
    index = 0
    while index < len(tokens):
        current = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if joined and joined[-1].type == "ident" and current.type == "dot" and following is not None and following.type == "ident":
            joined[-1] = Token("ident", joined[-1].value + "." + following.value)
            index += 2
        else:
            joined.append(current)
            index += 1
    return joined


# --------------------------------------------------------------------------- parser

_ROOTS = {
    "type": "event-type",
    "event": "event",
    "name": "name",
    "userId": "userId",
    "context": "event-context",
    "properties": "event-property",
    "traits": "event-trait",
}
_PREFIX = {"event-property": "properties", "event-trait": "traits", "event-context": "context"}


class _ParseError(Exception):
    pass


def _token_value(token: Token) -> Any:
    """parseFql's ``getTokenValue``: strings lose one pair of double quotes, numbers become numbers."""
    if token.type == "string":
        return re.sub(r'"$', "", re.sub(r'^"', "", token.value))
    if token.type == "number":
        return js.to_number(token.value)
    if token.type == "ident" and token.value in ("true", "false"):
        return token.value == "true"
    return token.value


def _string_value(token: Token) -> str:
    return js.to_string(_token_value(token))


def _strip_prefix(kind: str, name: str) -> str:
    return re.sub(rf"^({_PREFIX[kind]})\.", "", name)


def _comparison(kind: str, ident: Token, operator: Token, value: Token) -> Condition:
    """One ``field operator value`` condition, typed the way parseFql types it."""
    op = operator.value
    if kind in ("event", "event-type"):
        return {"type": kind, "operator": op, "value": _string_value(value)}
    node: Condition = {"type": kind}
    if kind in _PREFIX:
        node["name"] = _strip_prefix(kind, ident.value)
    special = {
        ("!=", "null"): "exists",
        ("=", "null"): "not_exists",
        ("=", "true"): "is_true",
        ("=", "false"): "is_false",
    }.get((op, value.value))
    if special in ("is_true", "is_false") and kind == "name":
        special = None
    if special is not None:
        return {**node, "operator": special}
    if kind in _PREFIX and value.type == "number" and op in ("=", "!="):
        return {**node, "operator": "number_equals" if op == "=" else "number_not_equals", "value": _token_value(value)}
    if kind in _PREFIX:
        return {**node, "operator": op, "value": _token_value(value)}
    return {**node, "operator": op, "value": _string_value(value)}


def _function(name: str, nodes: list[Condition], tokens: list[Token], negate: bool, notes: "_Notes") -> None:
    """``contains(field, "x")`` and ``match(field, "x*")``, with or without a leading ``!``."""
    _shift(tokens)  # "("
    field_token = _shift(tokens)
    if field_token is None:
        raise _ParseError(f"{name}() is missing a 1st argument")
    _shift(tokens)  # ","
    value_token = _shift(tokens)
    if value_token is None:
        raise _ParseError(f"{name}() is missing a 2nd argument")
    _shift(tokens)  # ")"
    if name == "contains":
        operator, value = ("not_contains" if negate else "contains"), _string_value(value_token)
    elif value_token.value.endswith('*"'):
        operator, value = ("not_starts_with" if negate else "starts_with"), _string_value(value_token)[:-1]
    else:
        operator, value = ("not_ends_with" if negate else "ends_with"), _string_value(value_token)[1:]
    target = field_token.value
    before = len(nodes)
    if target in ("event", "name", "userId"):
        nodes.append({"type": target, "operator": operator, "value": value})
    for kind, prefix in _PREFIX.items():
        if target.startswith(prefix):
            nodes.append({"type": kind, "name": _strip_prefix(kind, target), "operator": operator, "value": value})
    if len(nodes) == before:
        notes.dropped.append(f"{name}({target}, ...)")


def _shift(tokens: list[Token]) -> Token | None:
    return tokens.pop(0) if tokens else None


@dataclass
class _Notes:
    """What the parse noticed that a person would read differently from Segment."""

    mixed_levels: list[str] = field(default_factory=list)
    ignored_negations: int = 0
    dropped: list[str] = field(default_factory=list)


def _parse_level(tokens: list[Token], notes: _Notes, depth: int) -> Condition | None:
    nodes: list[Condition] = []
    operator = "and"
    keywords: set[str] = set()
    token = _shift(tokens)
    while token is not None and token.type != "eos":
        if token.type == "ident":
            _parse_ident(token, nodes, tokens, notes)
        if token.type == "operator" and token.value == "!":
            if tokens and tokens[0].type == "ident" and tokens[0].value in ("contains", "match"):
                _function(tokens.pop(0).value, nodes, tokens, negate=True, notes=notes)
            else:
                notes.ignored_negations += 1
        if token.type == "parenleft":
            nodes.append(_parse_group(tokens, notes, depth))
        if token.type == "conditional":
            operator = token.value
            keywords.add(token.value)
        token = _shift(tokens)
    if len(keywords) > 1:
        notes.mixed_levels.append("the whole trigger" if depth == 0 else "a pair of parentheses")
    if len(nodes) > 1:
        return {"type": "group", "operator": operator, "children": nodes}
    return nodes[0] if nodes else None


def _parse_ident(token: Token, nodes: list[Condition], tokens: list[Token], notes: _Notes) -> None:
    root = token.value.split(".")[0]
    kind = _ROOTS.get(root)
    if kind is not None or root in js.OBJECT_PROTOTYPE:  # Segment's lookup table is a JS object
        operator = _shift(tokens)
        if operator is None:
            raise _ParseError("Operator token is missing")
        value = _shift(tokens)
        if value is None:
            raise _ParseError("Value token is missing")
        if kind is None:
            notes.dropped.append(f"{token.value} {operator.value} {value.value}")
        else:
            nodes.append(_comparison(kind, token, operator, value))
    if token.value in ("contains", "match"):
        _function(token.value, nodes, tokens, negate=False, notes=notes)


def _parse_group(tokens: list[Token], notes: _Notes, depth: int) -> Condition:
    group: list[Token] = []
    while True:
        token = _shift(tokens)
        if token is None:
            raise _ParseError("'(' without a matching ')' (Segment's parentheses nest one level only)")
        if token.type == "parenright":
            break
        group.append(token)
    group.append(Token("eos", "eos"))
    node = _parse_level(group, notes, depth + 1)
    if node is None:
        # Segment's parser keeps an empty group, and its evaluator then fails on it.
        raise _ParseError("parentheses with no condition inside")
    return node


@dataclass(frozen=True)
class ParsedTrigger:
    """Segment's reading of a trigger: its condition tree, and what a person might misread."""

    text: str
    tree: Condition
    mixed_levels: tuple[str, ...] = ()
    ignored_negations: int = 0
    dropped: tuple[str, ...] = ()


def parse(text: str) -> ParsedTrigger:
    """Parse ``text`` as Segment does; raise :class:`SegmentTriggerError` where Segment's parser fails."""
    if not isinstance(text, str):
        raise SegmentTriggerError(str(text), "a trigger is a string")
    try:
        tokens = _normalize(_Lexer(text).lex())
    except _LexerError as error:
        raise SegmentTriggerError(text, f"Segment's parser refuses it: {error}") from None
    notes = _Notes()
    try:
        tree = _parse_level(tokens, notes, 0)
    except _ParseError as error:
        raise SegmentTriggerError(text, f"Segment's parser refuses it: {error}") from None
    if tree is None:
        raise SegmentTriggerError(text, "Segment's parser refuses it: no condition in it")
    if tree["type"] != "group":
        tree = {"type": "group", "operator": "and", "children": [tree]}
    _check_paths(text, tree)
    return ParsedTrigger(text, tree, tuple(notes.mixed_levels), notes.ignored_negations, tuple(notes.dropped))


def _check_paths(text: str, node: Condition) -> None:
    """A field path with no name in it makes Segment's evaluator throw: refuse it here."""
    if node["type"] == "group":
        for child in node["children"]:
            _check_paths(text, child)
    elif "name" in node and not _path_keys(node["name"]):
        raise SegmentTriggerError(text, f"Segment can't evaluate the field {node['name']!r}")


def _path_keys(name: str) -> list[str]:
    """Segment's split of a field path: on '.', '[' and ']'."""
    return re.findall(r"[^\[.\]]+", name)


# ------------------------------------------------------------------------ evaluator


def _actual(node: Condition, event: dict) -> Any:
    kind = node["type"]
    if kind in _PREFIX:
        return js.lookup(event.get(_PREFIX[kind], MISSING), _path_keys(node["name"]))
    key = {"event-type": "type", "event": "event", "name": "name", "userId": "userId"}[kind]
    return event.get(key, MISSING)


def compare(actual: Any, operator: str, expected: Any = MISSING) -> bool:
    """Segment's ``validateValue``: one operator on one value, JavaScript's types."""
    if operator in ("=", "!="):
        equal = isinstance(actual, str) and actual == js.to_string(expected)
        return equal if operator == "=" else not equal
    if operator in _NUMERIC:
        return js.is_number(actual) and _NUMERIC[operator](float(actual), js.to_number(expected))
    if operator in _TEXT:
        return isinstance(actual, str) and _TEXT[operator](actual, js.to_string(expected))
    if operator in ("exists", "not_exists"):
        present = actual is not MISSING and actual is not None
        return present if operator == "exists" else not present
    if operator in ("is_true", "is_false"):
        return actual is (operator == "is_true")
    return False


_NUMERIC = {
    "number_equals": lambda a, b: a == b,
    "number_not_equals": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_TEXT = {
    "contains": lambda a, b: b in a,
    "not_contains": lambda a, b: b not in a,
    "starts_with": lambda a, b: a.startswith(b),
    "not_starts_with": lambda a, b: not a.startswith(b),
    "ends_with": lambda a, b: a.endswith(b),
    "not_ends_with": lambda a, b: not a.endswith(b),
}


def evaluate(node: Condition, event: dict) -> bool:
    """Whether ``event`` satisfies ``node`` (a group or a condition), as Segment's validate says."""
    if node["type"] == "group":
        results = (evaluate(child, event) for child in node["children"])
        return all(results) if node["operator"] == "and" else any(results)
    return compare(_actual(node, event), node["operator"], node.get("value", MISSING))


@dataclass(frozen=True)
class SegmentTrigger:
    """A trigger in Segment's language: ``SegmentTrigger.parse(text).matches(event)``."""

    parsed: ParsedTrigger

    @classmethod
    def parse(cls, text: str) -> "SegmentTrigger":
        return cls(parse(text))

    def matches(self, event: Any) -> bool:
        return isinstance(event, dict) and evaluate(self.parsed.tree, event)


# ----------------------------------------------------------------------- translator


def translate(parsed: ParsedTrigger) -> str:
    """The same trigger in our language, meaning exactly what Segment means, fully parenthesised.

    Raises :class:`SegmentTriggerError` for a condition ours can't say exactly (a built-in
    JavaScript property such as ``length`` in a path, a comparison with a non-number).
    Exact for events whose ``properties``, ``traits`` and ``context`` are objects, as
    the ingestion door requires.
    """
    return _translate_node(parsed.text, parsed.tree, top=True)


def _translate_node(text: str, node: Condition, top: bool = False) -> str:
    if node["type"] == "group":
        parts = [_translate_node(text, child) for child in node["children"]]
        joined = f" {node['operator']} ".join(parts)
        return joined if top and len(parts) == 1 else f"({joined})"
    return _translate_condition(text, node)


def _translate_condition(text: str, node: Condition) -> str:
    kind, operator = node["type"], node["operator"]
    if kind not in _PREFIX:
        root = {"event-type": "type", "event": "event", "name": "name", "userId": "userId"}[kind]
        return _expression(text, root, operator, node.get("value", MISSING))
    keys = _path_keys(node["name"])
    _check_translatable(text, node, keys)
    prefix = _PREFIX[kind]
    full = _expression(text, _our_field(prefix, keys), operator, node.get("value", MISSING))
    # Segment's get stops at a falsy step: properties.a.b of {"a": 0} is 0, not undefined.
    matching: list[str] = []
    failing: list[str] = []
    for depth in range(1, len(keys)):
        step = _our_field(prefix, keys[:depth])
        for falsy, literal in ((0, "0"), ("", '""'), (False, "false")):
            target = matching if compare(falsy, operator, node.get("value", MISSING)) else failing
            target.append(f"{step} = {literal}")
    if compare(MISSING, operator, node.get("value", MISSING)):
        # True on a missing value: true on a falsy step too, unless that value itself fails it.
        return f"({' and '.join([full] + [f'not {item}' for item in failing])})" if failing else full
    return f"({' or '.join([full] + matching)})" if matching else full


def _check_translatable(text: str, node: Condition, keys: list[str]) -> None:
    """Refuse paths where JavaScript's property lookup and ours part ways."""
    for position, key in enumerate(keys):
        first = position == 0
        last = position == len(keys) - 1
        builtins = js.OBJECT_PROTOTYPE if first else js.BUILTIN_NAMES
        if key.isdigit() and not first or key == "length" and not first:
            reason = f"{key!r} in {node['name']!r} reads inside a string or list the JavaScript way"
        elif key in builtins and (not last or node["operator"] in ("exists", "not_exists")):
            reason = f"{key!r} in {node['name']!r} is a built-in JavaScript property"
        elif '"' in key:
            reason = f"{key!r} in {node['name']!r} holds a double quote"
        else:
            continue
        raise SegmentTriggerError(text, f"can't carry over exactly: {reason}")


_PLAIN_KEY = re.compile(r"[A-Za-z_$][\w$-]*")


def _our_field(root: str, keys: list[str]) -> str:
    """A field of our language: ``properties.plan`` or ``properties["odd key"]``."""
    return root + "".join(f".{key}" if _PLAIN_KEY.fullmatch(key) else f'["{key}"]' for key in keys)


def _expression(text: str, target: str, operator: str, expected: Any) -> str:
    """One condition of ours with Segment's meaning on a value found at ``target``."""
    string = json.dumps(js.to_string(expected), ensure_ascii=False)
    if operator == "=":
        return f"{target} = {string}"
    if operator == "!=":
        return f"{target} != {string}"
    if operator in ("exists", "not_exists"):
        return f"{target} exists" if operator == "exists" else f"not {target} exists"
    if operator in ("is_true", "is_false"):
        return f"{target} = {'true' if operator == 'is_true' else 'false'}"
    if operator in ("starts_with", "ends_with"):
        return f"{target} {operator} {string}"  # ours is true on strings only, as Segment's
    if operator == "contains":
        return f"({target} is string and {target} contains {string})"  # ours also looks into lists
    if operator in ("not_contains", "not_starts_with", "not_ends_with"):
        return f"({target} is string and not {target} {operator[4:]} {string})"
    if operator in _NUMERIC:
        number = js.to_number(expected)
        if math.isnan(number):
            if operator == "number_not_equals":
                return f"{target} is number"
            raise SegmentTriggerError(text, f"can't carry over: {target} {operator} a value that is not a number never matches")
        literal = _number_literal(number)
        ours = {"number_equals": "=", "number_not_equals": "!="}.get(operator, operator)
        if operator == "number_not_equals":
            return f"({target} is number and {target} != {literal})"
        return f"{target} {ours} {literal}"
    raise SegmentTriggerError(text, f"can't carry over: Segment never matches the operator {operator!r} on {target}")


def _number_literal(number: float) -> str:
    if math.isinf(number):
        return "1e999" if number > 0 else "-1e999"
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    return repr(number)


def readings(parsed: ParsedTrigger) -> list[str]:
    """Where Segment's reading differs from how a person would read the trigger, in words."""
    notes = [f"Segment gives 'and' and 'or' no precedence: in {level} the last keyword joins all of it" for level in parsed.mixed_levels]
    if parsed.ignored_negations:
        notes.append("Segment ignores a '!' that is not before contains() or match()")
    notes += [f"Segment's parser drops {part!r}: it tests nothing" for part in parsed.dropped]
    return notes
