"""The OpenAPI 3 description of the ingestion API, served at ``/openapi.json``.

Written by hand, beside the handlers it describes (producers/http.py), rather
than generated: the API is Segment's, and this says so in its own terms.
"""

from __future__ import annotations

import copy
from typing import Any

from producers.events import EVENT_TYPES

#: analytics.js's route of each type: the first letter (as producers/http.py's SHORT_ROUTES,
#: which tests/producers/test_browser_routes.py checks against this).
_SHORT = {kind: f"/v1/{kind[0]}" for kind in EVENT_TYPES}

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "example": "invalid_event"},
        "message": {"type": "string", "example": "userId: userId or anonymousId is required"},
        "field": {"type": "string", "description": "The field at fault (invalid_event only)."},
        "refused": {"type": "array", "items": {"$ref": "#/components/schemas/Refusal"}},
    },
}

_EVENT = {
    "type": "object",
    "description": "A Segment-spec event. userId or anonymousId is required; at most 32 KB.",
    "required": ["type"],
    "additionalProperties": True,
    "properties": {
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "userId": {"type": "string"},
        "anonymousId": {"type": "string"},
        "messageId": {"type": "string", "description": "Made (uuid4) when missing."},
        "timestamp": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "sentAt": {
            "type": "string",
            "format": "date-time",
            "description": "The client's clock when sending; corrects timestamp for clock skew.",
        },
        "event": {"type": "string", "description": "Required for track."},
        "groupId": {"type": "string", "description": "Required for group."},
        "previousId": {"type": "string", "description": "Required for alias."},
        "name": {"type": "string"},
        "category": {"type": "string"},
        "traits": {"type": "object"},
        "properties": {"type": "object"},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
    },
}

_BATCH = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "maxItems": 2500, "items": {"$ref": "#/components/schemas/Event"}},
        "context": {"type": "object", "description": "Merged into each event's context (the event's keys win)."},
        "integrations": {"type": "object", "description": "Merged into each event's integrations."},
        "sentAt": {"type": "string", "format": "date-time"},
        "writeKey": {"type": "string", "description": "The write key, if not sent as HTTP Basic user."},
    },
}

_REFUSAL = {
    "type": "object",
    "properties": {"index": {"type": "integer"}, "field": {"type": "string"}, "message": {"type": "string"}},
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_RESPONSES = {
    "200": {
        "description": 'Accepted: every valid event is durable in Redis. Exactly `{"success": true}`, '
        "plus `refused` listing a batch's invalid events.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["success"],
                    "properties": {
                        "success": {"type": "boolean", "enum": [True]},
                        "refused": {"type": "array", "items": {"$ref": "#/components/schemas/Refusal"}},
                    },
                }
            }
        },
    },
    "400": _error("Bad JSON, wrong shape, an invalid event, or a batch whose every event is invalid."),
    "401": _error("Missing or wrong write key."),
    "403": _error("`Origin` (a web page's) not in CORS_ORIGINS: nothing was read (`origin_not_allowed`)."),
    "413": _error("Over 500 KB after decompression, or over 2,500 events."),
    "415": _error("A Content-Encoding other than gzip."),
    "503": _error("Back-pressure or Redis unavailable: nothing was accepted; retry after `Retry-After` seconds."),
}


def _operation(summary: str, schema_ref: str) -> dict:
    return {
        "summary": summary,
        "security": [{"writeKeyBasic": []}, {}],
        "parameters": [{"name": "Content-Encoding", "in": "header", "required": False, "schema": {"type": "string", "enum": ["gzip"]}}],
        # analytics.js sends its JSON as text/plain, which spares a preflight in older browsers.
        "requestBody": {"required": True, "content": {t: {"schema": {"$ref": schema_ref}} for t in ("application/json", "text/plain")}},
        "responses": _RESPONSES,
    }


_PREFLIGHT = {
    "options": {
        "summary": "CORS preflight: allowed for the origins in CORS_ORIGINS, POST, and the headers "
        "Content-Type, Authorization, Content-Encoding, X-Retry-Count. Never credentials.",
        "responses": {
            "204": {"description": "Allowed: Access-Control-Allow-Origin, -Methods, -Headers, -Max-Age."},
            "400": _error("No Origin or Access-Control-Request-Method: not a preflight (`invalid_preflight`)."),
            "403": _error("The origin (`origin_not_allowed`), method or a header (`preflight_refused`) is not allowed."),
        },
    }
}

_METRICS = {
    "summary": "analytics.js's counters of its own errors: answered 200, nothing is kept. No write key.",
    "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "object"}}}},
    "responses": {
        "200": {"description": 'Exactly `{"success": true}`.'},
        **{k: v for k, v in _RESPONSES.items() if k in ("400", "403", "413", "415")},
    },
}


def _ingestion_paths() -> dict[str, Any]:
    """Every POST route that takes events, each with its preflight."""
    paths: dict[str, Any] = {}
    for kind in EVENT_TYPES:
        single = _operation(f"Send one {kind} event (its type is the path's).", "#/components/schemas/Event")
        paths[f"/v1/{kind}"] = {"post": single}
        paths[_SHORT[kind]] = {"post": {**single, "summary": f"analytics.js's route for {kind}: the same as /v1/{kind}."}}
    batch = _operation("Send up to 2,500 events at once.", "#/components/schemas/Batch")
    paths["/v1/batch"] = {"post": batch}
    paths["/v1/import"] = {"post": {**batch, "summary": "The same as /v1/batch (Segment's historical import)."}}
    paths["/v1/b"] = {"post": {**batch, "summary": "analytics.js's batching route: the same as /v1/batch."}}
    paths["/v1/m"] = {"post": _METRICS}
    return {path: {**operations, **_PREFLIGHT} for path, operations in paths.items()}


def _get(summary: str, description: str, content_type: str = "application/json") -> dict:
    return {"get": {"summary": summary, "responses": {"200": {"description": description, "content": {content_type: {}}}}}}


def _deletion_paths() -> dict[str, Any]:
    """A person's deletion (a privacy request): admins only (ADMIN_KEYS), never a write key."""
    admin: list[dict[str, list[str]]] = [{"adminBasic": []}]
    person = {
        "type": "object",
        "description": "Exactly one of them names the person.",
        "properties": {"userId": {"type": "string"}, "email": {"type": "string"}, "anonymousId": {"type": "string"}},
    }
    return {
        "/v1/deletions": {
            "post": {
                "summary": "Delete a person from Intercom, through their lane: events accepted before are dropped.",
                "security": admin,
                "requestBody": {"required": True, "content": {"application/json": {"schema": person}}},
                "responses": {
                    "202": {"description": 'Accepted: {"id": ...} to follow with GET.', "content": {"application/json": {}}},
                    "400": _error("The body names no person, or more than one way."),
                    "401": _error("Not an admin key."),
                },
            }
        },
        "/v1/deletions/{id}": {
            "get": {
                "summary": "A deletion's state (pending or done) and what it deleted.",
                "security": admin,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "Its audit record.", "content": {"application/json": {}}},
                    "401": _error("Not an admin key."),
                    "404": _error("No such deletion."),
                },
            }
        },
    }


def openapi_spec() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3.1 document of the ingestion API."""
    paths = _ingestion_paths()
    paths["/health"] = _get("Liveness", "The process answers.")
    paths["/ready"] = _get("Readiness", "Redis answers (503 otherwise).")
    paths["/metrics"] = _get("Fleet-wide counters", "Prometheus text format.", "text/plain")
    paths |= _deletion_paths()
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "Intercom Relay ingestion API",
                "version": "1",
                "description": "Segment's HTTP Tracking API: point any Segment library's host here.",
            },
            "paths": paths,
            "components": {
                "schemas": {"Event": _EVENT, "Batch": _BATCH, "Error": _ERROR, "Refusal": _REFUSAL},
                "securitySchemes": {
                    "adminBasic": {"type": "http", "scheme": "basic", "description": "An ADMIN_KEYS user:password pair."},
                    "writeKeyBasic": {
                        "type": "http",
                        "scheme": "basic",
                        "description": "The write key as the user name, empty password (or writeKey in the body).",
                    },
                },
            },
        }
    )
