"""The OpenAPI 3 description of the ingestion API, served at ``/openapi.json``.

Written by hand, beside the handlers it describes (producers/http.py), rather
than generated: the API is Segment's, and this says so in its own terms.
"""

from __future__ import annotations

import copy
from typing import Any

from producers.events import EVENT_TYPES

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
    "413": _error("Over 500 KB after decompression, or over 2,500 events."),
    "415": _error("A Content-Encoding other than gzip."),
    "503": _error("Back-pressure or Redis unavailable: nothing was accepted; retry after `Retry-After` seconds."),
}


def _operation(summary: str, schema_ref: str) -> dict:
    return {
        "summary": summary,
        "security": [{"writeKeyBasic": []}, {}],
        "parameters": [{"name": "Content-Encoding", "in": "header", "required": False, "schema": {"type": "string", "enum": ["gzip"]}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": schema_ref}}}},
        "responses": _RESPONSES,
    }


def _get(summary: str, description: str, content_type: str = "application/json") -> dict:
    return {"get": {"summary": summary, "responses": {"200": {"description": description, "content": {content_type: {}}}}}}


def openapi_spec() -> dict[str, Any]:
    """A fresh copy of the OpenAPI 3.1 document of the ingestion API."""
    paths: dict[str, Any] = {
        f"/v1/{kind}": {"post": _operation(f"Send one {kind} event (its type is the path's).", "#/components/schemas/Event")}
        for kind in EVENT_TYPES
    }
    paths["/v1/batch"] = {"post": _operation("Send up to 2,500 events at once.", "#/components/schemas/Batch")}
    paths["/v1/import"] = {"post": _operation("The same as /v1/batch (Segment's historical import).", "#/components/schemas/Batch")}
    paths["/health"] = _get("Liveness", "The process answers.")
    paths["/ready"] = _get("Readiness", "Redis answers (503 otherwise).")
    paths["/metrics"] = _get("Fleet-wide counters", "Prometheus text format.", "text/plain")
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
                    "writeKeyBasic": {
                        "type": "http",
                        "scheme": "basic",
                        "description": "The write key as the user name, empty password (or writeKey in the body).",
                    }
                },
            },
        }
    )
