"""POST /contacts/search: query compilation, matching, sorting and cursor pagination.

Semantics follow the 2.16 description of SearchContacts (docs/intercom-api.md, Search):

* a query is one filter ``{field, operator, value}`` or a group ``{operator: AND|OR, value}``;
  at most 2 levels of groups ("(1 OR 2) AND (3 OR 4)") and at most 15 filters per group;
* operators by field type — string: ``= != IN NIN ~ !~ ^ $``; boolean: ``= != IN NIN``;
  date: ``= < >`` only, matched by calendar day (the fake's workspace timezone is UTC);
  ``tag_id``: ``= !=``; custom attributes accept everything, compared as numbers when both
  sides are numbers;
* default page size 50, maximum 150; ``sort.order`` ascending|descending, default
  descending, anything else 400 ``invalid_sort_order``.

The error codes for a malformed query are undocumented ("return an error"): we answer
400 ``bad_request`` with a message naming the problem.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .schemas import Issue

MAX_GROUP_DEPTH = 2
MAX_FILTERS_PER_GROUP = 15
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 150
SORT_ORDERS = ("ascending", "descending")
DAY = 86_400

STRING_OPS = frozenset({"=", "!=", "IN", "NIN", "~", "!~", "^", "$"})
BOOLEAN_OPS = frozenset({"=", "!=", "IN", "NIN"})
DATE_OPS = frozenset({"=", "<", ">"})
TAG_OPS = frozenset({"=", "!="})
ALL_OPS = STRING_OPS | frozenset({"<", ">", "<=", ">="})

_DATE_FIELDS = (
    "created_at signed_up_at updated_at last_seen_at last_contacted_at last_replied_at "
    "last_email_opened_at last_email_clicked_at ios_last_seen_at android_last_seen_at"
).split()
_BOOLEAN_FIELDS = "unsubscribed_from_emails marked_email_as_spam has_hard_bounced".split()
_STRING_FIELDS = (
    "id role name avatar owner_id email email_domain phone formatted_phone external_id "
    "language_override browser browser_language os location.country location.region "
    "location.city ios_app_version ios_device ios_app_device ios_os_version ios_app_name "
    "ios_sdk_version android_app_version android_device android_app_name andoid_sdk_version "
    "segment_id"
).split()

#: The "Accepted Fields" table of SearchContacts, by type.
FIELD_TYPES: dict[str, str] = {
    **{f: "string" for f in _STRING_FIELDS},
    **{f: "date" for f in _DATE_FIELDS},
    **{f: "boolean" for f in _BOOLEAN_FIELDS},
    "tag_id": "tag",
}

#: Searchable documents are sparse (no None values, to keep a large workspace small): these
#: are the values of fields a document leaves out, and fields stored under another name.
FIELD_DEFAULTS: dict[str, Any] = {
    "unsubscribed_from_emails": False,
    "marked_email_as_spam": False,
    "has_hard_bounced": False,
}
FIELD_ALIASES = {"formatted_phone": "phone"}

#: Emails are matched case-insensitively (undocumented; Intercom treats addresses so). The
#: state stores these fields lower-cased in its searchable documents.
CASE_INSENSITIVE_FIELDS = frozenset({"email", "email_domain"})

#: Fields with an exact-value index in the state, used to avoid a full scan.
INDEXED_FIELDS = ("id", "external_id", "email")

T = TypeVar("T")
Predicate = Callable[[dict[str, Any]], bool]


class SearchError(Exception):
    """A query Intercom would refuse with 400; carries the `Issue`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.issue = Issue(code, message)


def field_type(name: str) -> str | None:
    """The type of a searchable field, "custom" for custom attributes, None if unknown."""
    if name.startswith("custom_attributes.") and len(name) > len("custom_attributes."):
        return "custom"
    return FIELD_TYPES.get(name)


def compile_query(query: Any) -> Predicate:
    """Turn a query into a predicate over a contact's searchable-fields dict."""
    return _compile(query, depth=0)


def _compile(query: Any, depth: int) -> Predicate:
    if not isinstance(query, dict):
        raise SearchError("bad_request", "bad 'query' parameter")
    if "field" in query:
        return _compile_filter(query)
    operator, children = query.get("operator"), query.get("value")
    if operator not in ("AND", "OR") or set(query) - {"operator", "value"}:
        raise SearchError("bad_request", "bad 'query' parameter: expected a filter or an AND/OR group")
    if depth >= MAX_GROUP_DEPTH:
        raise SearchError("bad_request", f"Search queries allow at most {MAX_GROUP_DEPTH} levels of nesting")
    if not isinstance(children, list) or not children:
        raise SearchError("bad_request", f"An {operator} group needs a non-empty list of filters")
    if len(children) > MAX_FILTERS_PER_GROUP:
        raise SearchError("bad_request", f"A search group allows at most {MAX_FILTERS_PER_GROUP} filters")
    parts = [_compile(child, depth + 1) for child in children]
    if operator == "AND":
        return lambda doc: all(p(doc) for p in parts)
    return lambda doc: any(p(doc) for p in parts)


def _compile_filter(flt: dict[str, Any]) -> Predicate:
    """One ``{field, operator, value}``: check the operator for the field's type, then bind."""
    if set(flt) - {"field", "operator", "value"}:
        raise SearchError("bad_request", "bad 'query' parameter: unknown key in filter")
    name, op, value = flt.get("field"), flt.get("operator"), flt.get("value")
    if not isinstance(name, str) or (kind := field_type(name)) is None:
        raise SearchError("bad_request", f"'{name}' is not a searchable contact field")
    allowed = {"string": STRING_OPS, "boolean": BOOLEAN_OPS, "date": DATE_OPS, "tag": TAG_OPS}
    if op not in allowed.get(kind, ALL_OPS):
        raise SearchError("bad_request", f"Operator '{op}' is not supported for field '{name}'")
    if op in ("IN", "NIN") and not isinstance(value, list):
        raise SearchError("bad_request", f"Operator '{op}' needs an array value")
    match = _MATCHERS[kind](op, _coerce(kind, name, value))
    key, default = FIELD_ALIASES.get(name, name), FIELD_DEFAULTS.get(name)
    return lambda doc: match(doc.get(key, default))


def _coerce(kind: str, name: str, value: Any) -> Any:
    """Bring the query value to the field's type ("the value has to match the accepted type")."""
    if isinstance(value, list):
        return [_coerce(kind, name, v) for v in value]
    if value is None:
        return None
    if kind == "date":
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
            raise SearchError("bad_request", f"'{name}' needs a Unix timestamp value")
        return int(value)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise SearchError("bad_request", f"'{name}' needs a boolean value")
        return value
    if kind in ("string", "tag"):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise SearchError("bad_request", f"'{name}' needs a string value")
        text = str(value)
        return text.lower() if name in CASE_INSENSITIVE_FIELDS else text
    return value  # custom attributes: compared as given


def _generic_matcher(op: str, value: Any, norm: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], bool]:
    """Matching shared by string, boolean, tag and custom fields; a missing field is null."""

    def match(field_value: Any) -> bool:
        got = norm(field_value)
        if op == "=":
            return _equal(got, value)
        if op == "!=":
            return not _equal(got, value)
        if op == "IN":
            return any(_equal(got, v) for v in value)
        if op == "NIN":
            return not any(_equal(got, v) for v in value)
        if got is None or value is None:
            return op == "!~"
        if op in ("~", "!~", "^", "$"):
            got_s, value_s = str(got), str(value)
            result = {"~": value_s in got_s, "!~": value_s not in got_s, "^": got_s.startswith(value_s), "$": got_s.endswith(value_s)}[op]
            return result
        return _ordered(got, value, op)

    return match


def _equal(got: Any, value: Any) -> bool:
    if _is_number(got) and _is_number(value):
        return float(got) == float(value)
    if isinstance(got, (int, float)) and not isinstance(got, bool) and isinstance(value, str):
        return str(got) == value
    return got == value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _ordered(got: Any, value: Any, op: str) -> bool:
    """< > <= >= compare numbers numerically and strings lexically; mixed types never match."""
    if _is_number(got) and _is_number(value):
        got, value = float(got), float(value)
    elif not (isinstance(got, str) and isinstance(value, str)):
        return False
    return {"<": got < value, ">": got > value, "<=": got <= value, ">=": got >= value}[op]


def _date_matcher(op: str, value: Any) -> Callable[[Any], bool]:
    """Dates are truncated to the (UTC) day: ``>`` starts the next day, ``<`` before the day."""
    day_start = None if value is None else value - value % DAY

    def match(field_value: Any) -> bool:
        if field_value is None or day_start is None:
            return op == "=" and field_value is None and day_start is None
        if op == "=":
            return day_start <= field_value < day_start + DAY
        if op == ">":
            return field_value >= day_start + DAY
        return field_value < day_start

    return match


_MATCHERS: dict[str, Callable[[str, Any], Callable[[Any], bool]]] = {
    "string": _generic_matcher,
    "boolean": _generic_matcher,
    "tag": _generic_matcher,
    "custom": _generic_matcher,
    "date": _date_matcher,
}


def index_candidates(query: Any) -> list[tuple[str, str]] | None:
    """Exact values whose index entries cover every possible match, or None (full scan).

    A filter ``field = value`` on an indexed field narrows to one entry; an AND group narrows
    to its first narrowable child; an OR group narrows only if every child does.
    """
    if not isinstance(query, dict):
        return None
    if "field" in query:
        name, op, value = query.get("field"), query.get("operator"), query.get("value")
        if name not in INDEXED_FIELDS:
            return None
        if op == "=" and _is_key(value):
            return [(name, index_key(name, value))]
        if op == "IN" and isinstance(value, list) and all(_is_key(v) for v in value):
            return [(name, index_key(name, v)) for v in value]
        return None
    value = query.get("value")
    children = value if isinstance(value, list) else []
    narrowed = [index_candidates(child) for child in children]
    covering = [n for n in narrowed if n is not None]
    if query.get("operator") == "AND":
        return covering[0] if covering else None
    if query.get("operator") == "OR" and narrowed and len(covering) == len(narrowed):
        return [key for n in covering for key in n]
    return None


def _is_key(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def index_key(name: str, value: Any) -> str:
    """How an indexed value is stored: text, lower-cased for case-insensitive fields."""
    text = str(value)
    return text.lower() if name in CASE_INSENSITIVE_FIELDS else text


@dataclass(frozen=True)
class Page:
    """Which slice of the sorted matches to return."""

    offset: int
    per_page: int


def parse_sort(sort: dict[str, Any] | None) -> tuple[str, bool]:
    """(field, descending); 400 ``invalid_sort_order`` for an order outside the enum."""
    sort = sort or {}
    order = sort.get("order", "descending")
    if order not in SORT_ORDERS:
        raise SearchError(
            "invalid_sort_order",
            f"Invalid sort order '{order}'. Must be one of: {', '.join(SORT_ORDERS)}",
        )
    # Undocumented: the default sort field. created_at is what list endpoints use.
    name = sort.get("field", "created_at")
    if field_type(name) is None:
        raise SearchError("bad_request", f"'{name}' is not a sortable contact field")
    return name, order == "descending"


def parse_pagination(pagination: dict[str, Any] | None) -> Page:
    """per_page (default 50, max 150) and the opaque ``starting_after`` cursor."""
    pagination = pagination or {}
    per_page = pagination.get("per_page") or DEFAULT_PER_PAGE
    if not 1 <= per_page <= MAX_PER_PAGE:
        # Undocumented: Intercom's answer to per_page > 150; we refuse rather than clamp.
        raise SearchError("bad_request", f"per_page must be between 1 and {MAX_PER_PAGE}")
    cursor = pagination.get("starting_after")
    return Page(offset=decode_cursor(cursor) if cursor else 0, per_page=per_page)


def encode_cursor(offset: int) -> str:
    """Cursors are opaque to clients; ours carries the offset of the next page."""
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """Inverse of `encode_cursor`; a cursor we did not issue is a 400 (undocumented)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, _, number = base64.urlsafe_b64decode(padded).decode().partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise SearchError("bad_request", "bad 'pagination.starting_after' parameter")


def sort_items(items: list[T], name: str, descending: bool, doc: Callable[[T], dict[str, Any]]) -> list[T]:
    """Sort on one field of each item's document; nulls last in either order, ties by id."""
    present = [i for i in items if doc(i).get(name) is not None]
    missing = [i for i in items if doc(i).get(name) is None]
    present.sort(key=lambda i: (_sortable(doc(i)[name]), doc(i).get("id") or ""), reverse=descending)
    missing.sort(key=lambda i: doc(i).get("id") or "")
    return present + missing


def _sortable(value: Any) -> tuple[int, Any]:
    """Numbers before strings, so mixed custom-attribute values still sort."""
    if _is_number(value):
        return (0, float(value))
    return (1, str(value))


def paginate(docs: list[T], page: Page) -> tuple[list[T], dict[str, Any]]:
    """Slice one page and build the `pages` object of contact_list (cursor_pages)."""
    total = len(docs)
    chunk = docs[page.offset : page.offset + page.per_page]
    pages: dict[str, Any] = {
        "type": "pages",
        "page": page.offset // page.per_page + 1,
        "per_page": page.per_page,
        "total_pages": -(-total // page.per_page),
    }
    if page.offset + page.per_page < total:
        pages["next"] = {
            "per_page": page.per_page,
            "starting_after": encode_cursor(page.offset + page.per_page),
        }
    return chunk, pages
