"""The Starlette ASGI app: Intercom's REST API 2.16 on top of the in-memory runtime.

Every API call goes through one pipeline (`ApiApp`), in this order:

1. latency (``asyncio.sleep``, never blocking the loop) — the call "arrives" after it;
2. an outage answers 503, or drops the connection, before anything else;
3. authentication — ``Authorization: Bearer <token>``; a bad or missing token answers 401
   ``unauthorized`` "Access Token Invalid" with **no** rate-limit headers
   (docs/intercom-api.md, Rate limits);
4. an injected fault (queued or random), without rate-limit headers;
5. the rate limiter — X-RateLimit-* on every later answer, 429 past the budget;
6. routing — unknown path or unsupported method: 404 (Intercom: "404 … also returned for an
   unsupported HTTP method"; docs/intercom-api.md, Errors);
7. JSON parsing (invalid JSON: 400 ``parameter_invalid``) and request-schema validation;
8. the handler, under the runtime lock.

Each call is logged (bounded) with its body, whether that body was schema-valid, the
Intercom-Version header, status and timing; tokens are never logged.

Control endpoints live under ``/_fake/`` and need no token (see `control_routes`).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send

from . import schemas
from .config import FakeConfig
from .runtime import FakeIntercom
from .search import SearchError
from .state import ApiError
from .traffic import DROP, Fault

#: Bodies bigger than this are logged truncated.
MAX_LOGGED_BODY_CHARS = 65_536

Handler = Callable[[FakeIntercom, dict[str, str], Any, QueryParams], tuple[int, Any]]

# Undocumented bodies for faults: the standard error.list envelope with a code per status.
_FAULT_CODES = {
    500: ("server_error", "Server Error"),
    502: ("bad_gateway", "Bad Gateway"),
    503: ("service_unavailable", "Service Unavailable"),
    504: ("gateway_timeout", "Gateway Timeout"),
}


def error_body(code: str, message: str, request_id: str | None, field: str | None = None) -> dict[str, Any]:
    """Intercom's error.list envelope (docs/intercom-api.md, Errors)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"type": "error.list", "request_id": request_id, "errors": [error]}


# --------------------------------------------------------------------------- handlers


def _flag(query: QueryParams, name: str) -> bool:
    return query.get(name, "").lower() == "true"


def h_me(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """GET /me → admin_with_app (with app.region)."""
    admin = _admin(rt)
    admin.update(
        email_verified=True,
        avatar={"type": "avatar", "image_url": None},
        app={
            "type": "app",
            "id_code": rt.config.workspace_id,
            "name": "Fake Intercom",
            "region": rt.config.region,
            "timezone": "Etc/UTC",
            "created_at": int(rt.stats.started_at),
            "identity_verification": False,
        },
    )
    return 200, admin


def h_admins(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """GET /admins → admin_list."""
    admin = _admin(rt)
    admin.update(away_status_reason_id=None, team_priority_level=None, role=None)
    if _flag(query, "display_avatar"):
        admin["avatar"] = None
    return 200, {"type": "admin.list", "admins": [admin]}


def _admin(rt: FakeIntercom) -> dict[str, Any]:
    return {
        "type": "admin",
        "id": "1",
        "name": "Fake Admin",
        "email": "admin@example.com",
        "job_title": None,
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "has_inbox_seat": True,
        "team_ids": [],
    }


def h_create_contact(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /contacts."""
    return 200, rt.workspace.create_contact(body)


def h_get_contact(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """GET /contacts/{id}."""
    return 200, rt.workspace.get_contact(params["id"], _flag(query, "include_merge_history"))


def h_update_contact(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """PUT /contacts/{id}."""
    return 200, rt.workspace.update_contact(params["id"], body or {}, _flag(query, "include_merge_history"))


def h_delete_contact(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """DELETE /contacts/{id}."""
    return 200, rt.workspace.delete_contact(params["id"])


def h_search(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /contacts/search."""
    try:
        return 200, rt.workspace.search_contacts(body)
    except SearchError as exc:
        raise ApiError(400, exc.issue.code, exc.issue.message) from exc


def h_merge(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /contacts/merge."""
    return 200, rt.workspace.merge_contacts(body, _flag(query, "include_merge_history"))


def h_attach(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /contacts/{id}/companies."""
    return 200, rt.workspace.attach_company(params["id"], body)


def h_event(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /events → 202 with an empty body, stored or de-duplicated alike."""
    rt.workspace.create_event(body)
    return 202, None


def h_company(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /companies."""
    return 200, rt.workspace.upsert_company(body)


def h_list_data_attributes(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """GET /data_attributes."""
    return 200, rt.workspace.list_data_attributes(query.get("model"))


def h_create_data_attribute(rt: FakeIntercom, params: dict[str, str], body: Any, query: QueryParams) -> tuple[int, Any]:
    """POST /data_attributes → 200 (not 201) with the new data_attribute."""
    return 200, rt.workspace.create_data_attribute(body if isinstance(body, dict) else {})


@dataclass(frozen=True)
class ApiRoute:
    """One documented operation: method, path template, handler, request-body schema."""

    method: str
    template: str
    handler: Handler
    schema: schemas.Schema | None = None
    pattern: re.Pattern[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}/?$"))

    @property
    def name(self) -> str:
        """How stats and the log name the route, e.g. "POST /contacts/{id}/companies"."""
        return f"{self.method} {self.template}"


API_ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/me", h_me),
    ApiRoute("GET", "/admins", h_admins),
    ApiRoute("POST", "/contacts", h_create_contact, schemas.CREATE_CONTACT_REQUEST),
    ApiRoute("POST", "/contacts/search", h_search, schemas.CONTACT_SEARCH_REQUEST),
    ApiRoute("POST", "/contacts/merge", h_merge, schemas.MERGE_CONTACTS_REQUEST),
    ApiRoute("GET", "/contacts/{id}", h_get_contact),
    ApiRoute("PUT", "/contacts/{id}", h_update_contact, schemas.UPDATE_CONTACT_REQUEST),
    ApiRoute("DELETE", "/contacts/{id}", h_delete_contact),
    ApiRoute("POST", "/contacts/{id}/companies", h_attach, schemas.ATTACH_COMPANY_REQUEST),
    ApiRoute("POST", "/events", h_event, schemas.CREATE_DATA_EVENT_REQUEST),
    ApiRoute("POST", "/companies", h_company, schemas.CREATE_OR_UPDATE_COMPANY_REQUEST),
    ApiRoute("GET", "/data_attributes", h_list_data_attributes),
    ApiRoute("POST", "/data_attributes", h_create_data_attribute),
)


def match_route(method: str, path: str) -> tuple[ApiRoute | None, dict[str, str]]:
    """The route for this method and path, with its path parameters."""
    for route in API_ROUTES:
        if route.method == method:
            found = route.pattern.match(path)
            if found:
                return route, found.groupdict()
    return None, {}


# --------------------------------------------------------------------------- pipeline


@dataclass
class Call:
    """What the log keeps about one API call."""

    method: str
    path: str
    query: str
    version: str | None
    started: float
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    route: str = "unmatched"
    body: Any = None
    schema_valid: bool | None = None
    auth: str = "missing"
    reason: str | None = None
    rate_remaining: int | None = None
    #: X-RateLimit-* once the limiter has counted the call.
    headers: dict[str, str] = field(default_factory=dict)

    def entry(self, status: int | str, finished: float) -> dict[str, Any]:
        """The request-log entry."""
        return {
            "time": self.started,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "route": self.route,
            "status": status,
            "request_id": self.request_id,
            "intercom_version": self.version,
            "auth": self.auth,
            "body": self.body,
            "schema_valid": self.schema_valid,
            "fault": self.reason,
            "rate_limit_remaining": self.rate_remaining,
            "duration_ms": round((finished - self.started) * 1000, 3),
        }


class ApiApp:
    """Raw ASGI app serving every non-control path through the pipeline above."""

    def __init__(self, runtime: FakeIntercom) -> None:
        self.rt = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw = await request.body()
        call = Call(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            version=request.headers.get("intercom-version"),
            started=self.rt.clock(),
        )
        config = self.rt.config
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
        route, params = match_route(call.method, call.path)
        body, parse_error = self._parse(raw, call, route)
        outcome = self._gate(call, request.headers.get("authorization"), config)
        if isinstance(outcome, Fault) and outcome.status == DROP and await _drop_connection(receive):
            self._finish(call, DROP)
            return
        if outcome is None:
            outcome = self._dispatch(call, route, params, body, parse_error, request.query_params)
        elif isinstance(outcome, Fault):
            outcome = self._fault_response(call, outcome)
        self._finish(call, outcome.status_code)
        await outcome(scope, receive, send)

    def _parse(self, raw: bytes, call: Call, route: ApiRoute | None) -> tuple[Any, str | None]:
        """Decode the JSON body and record it (and its schema validity) on the call."""
        if not raw.strip():
            body, error = None, None
        else:
            try:
                body, error = json.loads(raw), None
            except (ValueError, UnicodeDecodeError) as exc:
                text = raw.decode("utf-8", "replace")
                body, error = text[:MAX_LOGGED_BODY_CHARS], str(exc)
        call.body = body
        if route is not None:
            call.route = route.name
            if route.schema is not None:
                call.schema_valid = error is None and schemas.validate(route.schema, body) is None
        return body, error

    def _gate(self, call: Call, authorization: str | None, config: FakeConfig) -> Response | Fault | None:
        """Outage, auth, injected faults and the rate limiter: an early answer, or None."""
        rt = self.rt
        with rt.lock:
            now = rt.clock()
            outage = rt.faults.outage(now, config)
            if outage:
                call.reason = outage.reason
                return outage
            token = _bearer(authorization)
            if token is None or token not in config.tokens:
                call.auth = "missing" if token is None else "invalid"
                return JSONResponse(error_body("unauthorized", "Access Token Invalid", call.request_id), 401)
            call.auth = "ok"
            fault = rt.faults.next_fault(config)
            if fault:
                call.reason = fault.reason
                return fault
            decision = rt.limiter.check(token, now, config)
            rt.stats.record_window(decision)
        call.rate_remaining = decision.remaining
        call.headers = decision.headers()
        if not decision.allowed:
            call.reason = "rate_limited"
            message = f"Exceeded rate limit of {decision.limit} in {config.window_seconds}_seconds"
            return JSONResponse(error_body("rate_limit_exceeded", message, call.request_id), 429, headers=decision.headers())
        return None

    def _dispatch(
        self,
        call: Call,
        route: ApiRoute | None,
        params: dict[str, str],
        body: Any,
        parse_error: str | None,
        query: QueryParams,
    ) -> Response:
        """Route, validate, run the handler; every answer carries the rate-limit headers."""
        headers = dict(call.headers)
        try:
            if route is None:
                raise ApiError(404, "not_found", "Resource Not Found")
            if parse_error is not None:
                # "Invalid JSON also gives 400, usually with parameter_invalid" (docs/intercom-api.md, Errors).
                raise ApiError(400, "parameter_invalid", "Request body is not valid JSON")
            if route.schema is not None:
                issue = schemas.validate(route.schema, body)
                if issue:
                    raise ApiError(400, issue.code, issue.message, field=issue.field)
            with self.rt.lock:
                status, payload = route.handler(self.rt, params, body, query)
        except ApiError as exc:
            headers.update(exc.headers)
            return JSONResponse(error_body(exc.code, exc.message, call.request_id, exc.field), exc.status, headers)
        if payload is None:
            return Response(b"", status, headers=headers)
        return JSONResponse(payload, status, headers=headers)

    def _fault_response(self, call: Call, fault: Fault) -> Response:
        """An injected status (a drop that could not be done falls back to 503)."""
        status = 503 if fault.status == DROP else int(fault.status)
        code, message = _FAULT_CODES.get(status, ("injected_fault", f"Injected fault {status}"))
        return JSONResponse(error_body(code, message, call.request_id), status)

    def _finish(self, call: Call, status: int | str) -> None:
        """Log the call and count it."""
        rt = self.rt
        with rt.lock:
            rt.log.append(call.entry(status, rt.clock()))
            rt.stats.record(call.route, status, call.version, call.reason, call.schema_valid)


def _bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _drop_connection(receive: Receive) -> bool:
    """Close the client's connection without an answer (an outage in "drop" mode).

    ASGI has no "abort" message, so we reach uvicorn's transport through the `receive`
    callable (a bound method of its request cycle). Returns False when that is not possible
    (another server), and the caller answers 503 instead.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None or not hasattr(transport, "abort"):
        return False
    transport.abort()
    # Tell uvicorn the client is gone, so it does not try to write a 500 to the closed socket.
    cycle.disconnected = True
    return True


# --------------------------------------------------------------------------- control


def control_routes(rt: FakeIntercom) -> list[Route]:
    """``/_fake/*``: inspection and runtime configuration, no auth, no latency, not logged."""

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def state(request: Request) -> Response:
        with rt.lock:
            return JSONResponse(rt.workspace.to_json())

    async def requests(request: Request) -> Response:
        q = request.query_params
        try:
            status = int(q["status"]) if q.get("status") else None
            since = int(q["since"]) if q.get("since") else None
            limit = int(q["limit"]) if q.get("limit") else None
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        with rt.lock:
            entries = rt.log.query(
                method=q.get("method"), path=q.get("path"), status=status, route=q.get("route"), since=since, limit=limit
            )
            return JSONResponse({"requests": entries, "total": rt.log.total, "kept": len(rt.log)})

    async def stats(request: Request) -> Response:
        return JSONResponse(rt.stats_json())

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                rt.configure(await _json_object(request))
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(rt.config_json())

    async def faults(request: Request) -> Response:
        try:
            data = await _json_object(request)
            rt.configure({"queue_faults": [data]})
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(rt.config_json())

    def workspace_change(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Request], Any]:
        """A control endpoint that changes the workspace as its owner would (seed, admin acts)."""

        async def endpoint(request: Request) -> Response:
            try:
                data = await _json_object(request)
                with rt.lock:
                    return JSONResponse(change(data))
            except ApiError as exc:
                return JSONResponse({"error": exc.message, "code": exc.code}, exc.status)
            except (ValueError, TypeError, KeyError) as exc:
                return JSONResponse({"error": f"bad request: {exc!r}"}, 400)

        return endpoint

    async def reset(request: Request) -> Response:
        try:
            data = await _json_object(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        rt.reset(restore_config=bool(data.get("config")))
        return JSONResponse({"ok": True})

    return [
        Route("/health", health),
        Route("/state", state),
        Route("/requests", requests),
        Route("/stats", stats),
        Route("/config", config, methods=["GET", "POST"]),
        Route("/faults", faults, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/seed", workspace_change(lambda data: rt.workspace.seed(data)), methods=["POST"]),
        Route("/admin/delete", workspace_change(lambda data: rt.workspace.admin_delete(data)), methods=["POST"]),
        Route("/admin/merge", workspace_change(lambda data: rt.workspace.admin_merge(data)), methods=["POST"]),
    ]


async def _json_object(request: Request) -> dict[str, Any]:
    """A control request's JSON object body ({} when empty)."""
    raw = await request.body()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def create_app(config: FakeConfig | None = None, runtime: FakeIntercom | None = None) -> Starlette:
    """The ASGI app; ``app.state.fake`` is its `FakeIntercom` runtime."""
    rt = runtime or FakeIntercom(config or FakeConfig())
    app = Starlette(routes=[Mount("/_fake", routes=control_routes(rt)), Mount("", app=ApiApp(rt))])
    app.state.fake = rt
    return app
