"""Request-body schemas of Intercom 2.16, copied from the OpenAPI description, and a validator.

The schemas are a small JSON-Schema subset written as Python data (the project must not read
the spec at run time): ``type`` (string, integer, number, boolean, object, array, plus the two
special kinds below), ``nullable``, ``properties``, ``required``, ``any_of`` (lists of required
names, as the spec's ``anyOf: [{required: […]}]``) and ``missing_message``.

Special kinds:

* ``attributes`` — a custom-attributes object. The spec declares string values for companies
  and any object for contacts, but its own examples send booleans and numbers, so scalars are
  accepted; lists of strings are accepted too (custom-object associations, ``{"order": ["21"]}``).
* ``metadata`` — event metadata. **Known defect of 2.16**: it declares
  ``additionalProperties: {type: string}``, yet Intercom documents (and accepts) numbers,
  booleans, the Monetary Amount ``{amount, currency}`` and the Rich Link ``{url, value}``;
  Preview fixed this (docs/intercom-api.md, Events). We accept all documented types.

Every rule violation yields an `Issue` in the error-list envelope. Unknown top-level keys and
wrong types answer ``bad_request "bad '<key>' parameter"``, the form documented for
POST /companies (docs/intercom-api.md, Companies); we use it everywhere, which is a modelling
choice for the endpoints where Intercom documents no 400.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]


@dataclass(frozen=True)
class Issue:
    """Why a body was refused: an Intercom error code, message and (optionally) field."""

    code: str
    message: str
    field: str | None = None


def _s(nullable: bool = False) -> Schema:
    return {"type": "string", "nullable": nullable}


def _i(nullable: bool = False) -> Schema:
    return {"type": "integer", "nullable": nullable}


def _b(nullable: bool = False) -> Schema:
    return {"type": "boolean", "nullable": nullable}


# components.schemas.create_contact_request (+ its anyOf email | external_id | role).
CREATE_CONTACT_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "role": _s(),
        "external_id": _s(),
        "email_verified": _b(nullable=True),
        "email": _s(),
        "phone": _s(nullable=True),
        "name": _s(nullable=True),
        "avatar": _s(nullable=True),
        "signed_up_at": _i(nullable=True),
        "last_seen_at": _i(nullable=True),
        "owner_id": _s(nullable=True),
        "unsubscribed_from_emails": _b(nullable=True),
        "custom_attributes": {"type": "attributes", "nullable": True},
    },
    "any_of": [["email"], ["external_id"], ["role"]],
    "missing_message": "email, external_id or role not specified",
}

# components.schemas.update_contact_request: the same fields, nothing required.
UPDATE_CONTACT_REQUEST: Schema = {
    "type": "object",
    "properties": dict(CREATE_CONTACT_REQUEST["properties"]),
}

# components.schemas.create_data_event_request (+ anyOf id | user_id | email).
CREATE_DATA_EVENT_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "event_name": _s(),
        "created_at": _i(),
        "user_id": _s(),
        "id": _s(),
        "email": _s(),
        "metadata": {"type": "metadata"},
    },
    "required": ["event_name", "created_at"],
    "any_of": [["id"], ["user_id"], ["email"]],
    "missing_message": "id, user_id or email not specified",
}

# components.schemas.create_or_update_company_request (nullable; nothing required).
CREATE_OR_UPDATE_COMPANY_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "name": _s(),
        "company_id": _s(),
        "plan": _s(),
        "size": _i(),
        "website": _s(),
        "industry": _s(),
        "custom_attributes": {"type": "attributes"},
        "remote_created_at": _i(),
        "update_last_request_at": _b(),
        # "Note that this will truncate floats", so any number is accepted and truncated.
        "monthly_spend": {"type": "number"},
    },
}

# requestBody of POST /contacts/{contact_id}/companies.
ATTACH_COMPANY_REQUEST: Schema = {
    "type": "object",
    "properties": {"id": _s()},
    "required": ["id"],
    # The documented 400 for this endpoint (docs/intercom-api.md, Companies).
    "missing_message": "company not specified",
}

# components.schemas.merge_contacts_request.
MERGE_CONTACTS_REQUEST: Schema = {
    "type": "object",
    "properties": {"from": _s(), "into": _s(), "skip_duplicate_validation": _b()},
    "required": ["from", "into"],
}

# components.schemas.contact_search_request. `query` is checked by search.py (recursive), and
# sort.order by the endpoint, since a bad order has its own documented code.
CONTACT_SEARCH_REQUEST: Schema = {
    "type": "object",
    "properties": {
        "query": {"type": "object"},
        "pagination": {
            "type": "object",
            "nullable": True,
            "properties": {"per_page": _i(), "starting_after": _s(nullable=True)},
        },
        "sort": {
            "type": "object",
            "properties": {"field": _s(), "order": _s()},
        },
    },
    "required": ["query"],
}

#: Keys of the two object forms Intercom allows inside event metadata (docs/intercom-api.md, Events).
MONETARY_AMOUNT_KEYS = frozenset({"amount", "currency"})
RICH_LINK_KEYS = frozenset({"url", "value"})


def validate(schema: Schema, body: Any) -> Issue | None:
    """Check a whole request body; return the first problem found, or None."""
    if body is None:
        if schema.get("nullable"):
            return None
        # No body at all reads as "nothing specified" (e.g. attach's "company not specified").
        return _missing(schema, {}, prefix="") or Issue("bad_request", "request body must be a JSON object")
    if not isinstance(body, dict):
        return Issue("bad_request", "request body must be a JSON object")
    return _validate_object(schema, body, prefix="")


def _validate_object(schema: Schema, value: dict[str, Any], prefix: str) -> Issue | None:
    """Unknown keys, then types of known keys, then required keys (spec order of concerns)."""
    properties: Schema = schema.get("properties", {})
    for key, item in value.items():
        name = prefix + key
        if key not in properties:
            return Issue("bad_request", f"bad '{name}' parameter", name)
        issue = _validate_value(properties[key], item, name)
        if issue:
            return issue
    return _missing(schema, value, prefix)


def _missing(schema: Schema, value: dict[str, Any], prefix: str) -> Issue | None:
    """A required key (or every alternative of `any_of`) absent or null."""
    present = {k for k, v in value.items() if v is not None}
    for key in schema.get("required", []):
        if key not in present:
            message = schema.get("missing_message", f"{prefix}{key} not specified")
            return Issue("parameter_not_found", message, prefix + key)
    alternatives = schema.get("any_of")
    if alternatives and not any(set(alt) <= present for alt in alternatives):
        return Issue("parameter_not_found", schema.get("missing_message", "missing parameter"))
    return None


def _validate_value(schema: Schema, value: Any, name: str) -> Issue | None:
    """Type-check one value against its property schema."""
    if value is None:
        return None if schema.get("nullable") else _bad(name)
    kind = schema["type"]
    if kind == "object":
        if not isinstance(value, dict):
            return _bad(name)
        return _validate_object(schema, value, name + ".") if "properties" in schema else None
    if kind == "attributes":
        return _validate_attributes(value, name)
    if kind == "metadata":
        return validate_metadata(value, name)
    return None if is_type(kind, value) else _bad(name)


def is_type(kind: str, value: Any) -> bool:
    """JSON-Schema type test; booleans are not integers, NaN is not a number."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    raise ValueError(f"unknown schema type {kind!r}")


def _finite(value: int | float) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool)) or is_type("number", value)


def _validate_attributes(value: Any, name: str) -> Issue | None:
    """Custom attributes: an object of scalars, or lists of strings (custom-object links)."""
    if not isinstance(value, dict):
        return _bad(name)
    for key, item in value.items():
        if isinstance(item, list) and all(isinstance(x, (str, int)) for x in item):
            continue
        if not _is_scalar(item):
            return _bad(f"{name}.{key}")
    return None


def validate_metadata(value: Any, name: str = "metadata") -> Issue | None:
    """Event metadata: flat values plus the two documented objects; no other nesting.

    Intercom says "we do not currently support nested JSON structure" but documents no error
    for it (undocumented): we refuse it with 400 ``parameter_invalid`` rather than silently
    dropping the key, so a client that sends nested JSON learns about it in tests.
    """
    if not isinstance(value, dict):
        return _bad(name)
    for key, item in value.items():
        if _is_scalar(item) or _is_monetary_amount(item) or _is_rich_link(item):
            continue
        return Issue(
            "parameter_invalid",
            f"Nested JSON is not supported in event metadata: '{key}' must be a string, number, "
            "boolean, monetary amount {amount, currency} or rich link {url, value}",
            f"{name}.{key}",
        )
    return None


def _is_monetary_amount(item: Any) -> bool:
    """``{"amount": <int cents>, "currency": "eur"}`` (docs/intercom-api.md, Events)."""
    return (
        isinstance(item, dict)
        and set(item) == MONETARY_AMOUNT_KEYS
        and is_type("integer", item["amount"])
        and isinstance(item["currency"], str)
    )


def _is_rich_link(item: Any) -> bool:
    """``{"url": "https://…", "value": "text"}`` (docs/intercom-api.md, Events)."""
    return isinstance(item, dict) and set(item) == RICH_LINK_KEYS and all(isinstance(item[k], str) for k in RICH_LINK_KEYS)


def _bad(name: str) -> Issue:
    return Issue("bad_request", f"bad '{name}' parameter", name)
