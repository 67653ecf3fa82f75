"""The trigger language: which events a mapping subscribes to.

In the style of Segment's destination subscriptions::

    type = "track" and event = "Order Completed"
    type = "identify" and (traits.email exists or context.traits.email exists)
    type = "track" and not properties.tags contains "test"

Grammar (keywords are case-insensitive; usual precedence: not > and > or)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field "exists"
                | field "is" ("string" | "number" | "boolean")
                | field ("=" | "!=" | "contains" | "starts_with" | "ends_with") literal
                | field ("<" | "<=" | ">" | ">=") number
    field      := type | event | name | userId | anonymousId | groupId
                | (properties | traits | context) ("." name | "[" digits "]" | '["' key '"]')*
    literal    := "string with \\" escapes" | number | true | false | null

Semantics, chosen so that absent data never matches by accident:

- ``exists``: the field is present and not null.
- ``=``: equal, with no type coercion (``"5"`` is not ``5``, ``true`` is not ``1``);
  ``= null`` is true when the field is absent or null, i.e. ``not field exists``.
- ``!=``: exactly ``not (field = value)``, so an absent field is ``!= "x"``.
- ``contains``: a substring of a string field, or an element of a list field;
  false for anything else.
- ``starts_with``/``ends_with``: a string field that starts/ends with the text.
- ``<`` ``<=`` ``>`` ``>=``: a number field (never a boolean) compared with a number.
- ``is string|number|boolean``: the field holds a value of that type (a boolean is
  not a number).

A trigger is parsed once, at load, into a small tree; a syntax error says where
(:class:`TriggerSyntaxError` ``.position``, 0-based).  Evaluation walks the tree:
no ``eval()``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from worker.mappings.fields import MISSING, Path, parse_path

#: Top-level event fields a trigger may test; the three objects take sub-paths.
SCALAR_ROOTS = frozenset({"type", "event", "name", "userId", "anonymousId", "groupId"})
OBJECT_ROOTS = frozenset({"properties", "traits", "context"})

_KEYWORDS = frozenset({"and", "or", "not", "exists", "contains", "starts_with", "ends_with", "is", "true", "false", "null"})
_TEXT_OPERATORS = frozenset({"contains", "starts_with", "ends_with"})
_ORDER_OPERATORS = frozenset({"<", "<=", ">", ">="})
_TYPES = frozenset({"string", "number", "boolean"})


class TriggerSyntaxError(ValueError):
    """A trigger does not parse; ``position`` is the 0-based offset of the problem."""

    def __init__(self, text: str, position: int, message: str) -> None:
        super().__init__(f"{message} at position {position} in {text!r}")
        self.text = text
        self.position = position
        self.reason = message


# ------------------------------------------------------------------------ tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "number", "name", "keyword", "op", "(", ")", "end"
    text: str
    position: int
    value: Any = None


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_$][\w$-]*(?:\.[\w$-]+|\[\d+\]|\["[^"]*"\])*)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<paren>[()])
""",
    re.VERBOSE,
)


def tokenize(text: str) -> Iterator[Token]:
    """Split a trigger into tokens, ending with an "end" token.

    A generator, so that the parser reports the first error from the left
    (``event = Order"`` is a missing value at 8, not an unterminated string at 13).
    """
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position] == '"':
                raise TriggerSyntaxError(text, position, "unterminated string")
            raise TriggerSyntaxError(text, position, f"unexpected character {text[position]!r}")
        kind = match.lastgroup
        word = match.group()
        if kind != "space":
            yield _token(text, kind, word, position)
        position = match.end()
    yield Token("end", "", len(text))


def _token(text: str, kind: str | None, word: str, position: int) -> Token:
    """Build one token, decoding string and number literals."""
    if kind == "string":
        try:
            # JSON's escapes are the familiar ones: \" \\ \n \t \u00e9.
            return Token("string", word, position, json.loads(word, strict=False))
        except json.JSONDecodeError as error:
            raise TriggerSyntaxError(text, position + error.pos, "bad escape in string") from None
    if kind == "number":
        is_int = re.fullmatch(r"-?\d+", word) is not None
        return Token("number", word, position, int(word) if is_int else float(word))
    if kind == "name" and word.lower() in _KEYWORDS:
        return Token("keyword", word.lower(), position)
    if kind == "paren":
        return Token(word, word, position)
    return Token(kind or "?", word, position)


# ----------------------------------------------------------------------------- tree


class Node:
    """A node of a parsed trigger."""

    def evaluate(self, event: dict) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class Exists(Node):
    path: Path

    def evaluate(self, event: dict) -> bool:
        return self.path.find(event) is not MISSING


@dataclass(frozen=True)
class IsType(Node):
    path: Path
    kind: str  # "string", "number", "boolean"

    def evaluate(self, event: dict) -> bool:
        found = self.path.find(event)
        if self.kind == "boolean":
            return isinstance(found, bool)
        if self.kind == "number":
            return isinstance(found, (int, float)) and not isinstance(found, bool)
        return isinstance(found, str)


@dataclass(frozen=True)
class Compare(Node):
    path: Path
    op: str  # "=", "!=", "contains", "starts_with", "ends_with", "<", "<=", ">", ">="
    value: Any

    def evaluate(self, event: dict) -> bool:
        found = self.path.find(event)
        if self.op == "contains":
            return _contains(found, self.value)
        if self.op == "starts_with":
            return isinstance(found, str) and found.startswith(self.value)
        if self.op == "ends_with":
            return isinstance(found, str) and found.endswith(self.value)
        if self.op in _ORDER_OPERATORS:
            return _ordered(found, self.op, self.value)
        equal = found is MISSING if self.value is None else _equal(found, self.value)
        return equal if self.op == "=" else not equal


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def evaluate(self, event: dict) -> bool:
        return not self.operand.evaluate(event)


@dataclass(frozen=True)
class And(Node):
    left: Node
    right: Node

    def evaluate(self, event: dict) -> bool:
        return self.left.evaluate(event) and self.right.evaluate(event)


@dataclass(frozen=True)
class Or(Node):
    left: Node
    right: Node

    def evaluate(self, event: dict) -> bool:
        return self.left.evaluate(event) or self.right.evaluate(event)


def _equal(found: Any, literal: Any) -> bool:
    """Equality without coercion: Python's True == 1 must not leak into triggers."""
    if isinstance(found, bool) or isinstance(literal, bool):
        return isinstance(found, bool) and isinstance(literal, bool) and found is literal
    if isinstance(literal, (int, float)):
        return isinstance(found, (int, float)) and found == literal
    return isinstance(found, str) and found == literal


def _ordered(found: Any, op: str, number: float) -> bool:
    """A number field against a number; anything else (a boolean too) is false."""
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        return False
    return {"<": found < number, "<=": found <= number, ">": found > number, ">=": found >= number}[op]


def _contains(found: Any, literal: Any) -> bool:
    """Substring of a string, or element of a list."""
    if isinstance(found, str):
        return isinstance(literal, str) and literal in found
    if isinstance(found, list):
        return any(item is None if literal is None else _equal(item, literal) for item in found)
    return False


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger: ``Trigger.parse('type = "track"').matches(event)``."""

    text: str
    tree: Node

    @classmethod
    def parse(cls, text: str) -> "Trigger":
        """Parse ``text``; raise :class:`TriggerSyntaxError` saying where it goes wrong."""
        if not isinstance(text, str):
            raise TriggerSyntaxError(str(text), 0, "a trigger is a string")
        return cls(text, _Parser(text).parse())

    def matches(self, event: dict) -> bool:
        """Whether ``event`` satisfies this trigger."""
        return isinstance(event, dict) and self.tree.evaluate(event)

    def __str__(self) -> str:
        return self.text


class _Parser:
    """Recursive descent over the token list, one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.current = next(self.tokens)

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error(self.peek(), "empty trigger")
        node = self.expr()
        if self.peek().kind != "end":
            raise self.error(self.peek(), f"expected 'and', 'or' or the end, found {self.peek().text!r}")
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while self.accept_keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.accept_keyword("and"):
            node = And(node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.accept_keyword("not"):
            return Not(self.not_expr())
        if self.peek().kind == "(":
            self.advance()
            node = self.expr()
            if self.peek().kind != ")":
                raise self.error(self.peek(), f"expected ')', found {self.describe(self.peek())}")
            self.advance()
            return node
        return self.comparison()

    def comparison(self) -> Node:
        path = self.field()
        operator = self.advance()
        if operator.kind == "keyword" and operator.text == "exists":
            return Exists(path)
        if operator.kind == "keyword" and operator.text == "is":
            kind = self.advance()
            if kind.kind != "name" or kind.text not in _TYPES:
                raise self.error(kind, f"expected string, number or boolean after 'is', found {self.describe(kind)}")
            return IsType(path, kind.text)
        if operator.kind == "op" and operator.text in _ORDER_OPERATORS:
            number = self.literal(operator)
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise self.error(operator, f"{operator.text!r} compares with a number, not {number!r}")
            return Compare(path, operator.text, number)
        if operator.kind == "keyword" and operator.text in _TEXT_OPERATORS and operator.text != "contains":
            text = self.literal(operator)
            if not isinstance(text, str):
                raise self.error(operator, f"{operator.text!r} takes a string, not {text!r}")
            return Compare(path, operator.text, text)
        if operator.kind == "op" or (operator.kind == "keyword" and operator.text == "contains"):
            return Compare(path, operator.text, self.literal(operator))
        raise self.error(
            operator, f"expected =, !=, <, <=, >, >=, exists, is, contains, starts_with or ends_with, found {self.describe(operator)}"
        )

    def field(self) -> Path:
        token = self.advance()
        if token.kind != "name":
            raise self.error(token, f"expected a field, found {self.describe(token)}")
        root = re.split(r"[.\[]", token.text, maxsplit=1)[0]
        if root not in SCALAR_ROOTS | OBJECT_ROOTS:
            known = ", ".join(sorted(SCALAR_ROOTS)) + ", " + ", ".join(f"{r}.*" for r in sorted(OBJECT_ROOTS))
            raise self.error(token, f"unknown field {root!r}; expected one of {known}")
        if root in SCALAR_ROOTS and token.text != root:
            raise self.error(token, f"{root!r} has no sub-fields")
        return parse_path(f"$.{token.text}")

    def literal(self, operator: Token) -> Any:
        token = self.advance()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        raise self.error(token, f"expected a value after {operator.text!r}, found {self.describe(token)}")

    # -- helpers

    def peek(self) -> Token:
        return self.current

    def advance(self) -> Token:
        token = self.current
        if token.kind != "end":
            self.current = next(self.tokens)
        return token

    def accept_keyword(self, word: str) -> bool:
        if self.current.kind == "keyword" and self.current.text == word:
            self.advance()
            return True
        return False

    @staticmethod
    def describe(token: Token) -> str:
        return "the end" if token.kind == "end" else repr(token.text)

    def error(self, token: Token, message: str) -> TriggerSyntaxError:
        return TriggerSyntaxError(self.text, token.position, message)


def parse_trigger(text: str) -> Trigger:
    """Parse a trigger expression (see the module docstring for the language)."""
    return Trigger.parse(text)
