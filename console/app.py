"""The pipeline console: server-rendered pages under ``/console``, for the operators in ADMIN_KEYS.

    GET  /console/                      overview: counts now, per minute, calls per window, the pause
    GET  /console/person[?id=…]         a person's lane, parked events, contact and last outcomes
    POST /console/person                look a person up by userId, anonymousId or email (not in the URL)
    GET  /console/dead-letters          filtered by reason, action, person and time; grouped by reason
    GET  /console/dead-letters/{id}     one dead letter: event, reason, last response, attempts
    POST /console/dead-letters          replay or purge the selected ones (a confirmation page first)
    GET  /console/recent                a sample of the last outcomes, with their latency

``mount(settings, redis)`` returns the Starlette ``Mount`` the ingestion server
adds to its routes.  Every page is behind Basic auth (console/auth.py); every
answer is HTML, bad input a 4xx page that says what was wrong.  Templates are
Jinja2 with autoescape on: a person id, an event or Intercom's answer is
always shown as text.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlencode

import jinja2
import redis as redis_lib
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console import charts, queries
from console.actions import MAX_SELECTED, DeadLetterActions, NotReplayable, ReplayRefused
from console.auth import REALM, Admins, cross_site
from worker.settings import Settings

log = logging.getLogger("console")

HERE = Path(__file__).resolve().parent

#: The time ranges the dead-letter listing offers, in seconds (None: every letter kept).
WITHIN = {"1h": 3600, "6h": 6 * 3600, "24h": 24 * 3600, "7d": 7 * 24 * 3600, "all": None}

#: Recent outcomes listed at most (the fleet's sample holds 500).
MAX_RECENT = 500

#: Outcome statuses the recent page filters on (worker/delivery.py's outcomes).
STATUSES = ("delivered", "retrying", "parked", "dead_lettered")

#: Sent with every answer: no script or style from elsewhere, never framed (a confirmation
#: button must not be clickjacked), no person id leaking to another site through a Referer
#: (same-origin, not no-referrer: under no-referrer Chromium sends a form's Origin as "null"),
#: nothing cached.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class ConsoleError(Exception):
    """An answer other than the page asked for: a status and what was wrong, in words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def mount(settings: Settings, redis: redis_lib.Redis, path: str = "/console") -> Mount:
    """The console, to add to the ingestion server's routes: ``routes.append(mount(settings, redis))``.

    ``redis`` is a client with ``decode_responses=True`` (the Enqueuer's).  With
    no ADMIN_KEYS the console answers every request 403, saying so.
    """
    return Mount(path, app=Console(settings, redis).app())


class Console:
    def __init__(self, settings: Settings, redis: redis_lib.Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.admins = Admins(settings.admin_keys)
        self.actions = DeadLetterActions(redis, settings)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,  # every value is text unless a chart marks itself safe
        )
        self.templates.filters.update(when=_when, pretty=_pretty, short_json=_short_json, seconds=_seconds)

    def app(self) -> ASGIApp:
        routes = [
            Route("/", self.overview, methods=["GET"]),
            Route("/person", self.person, methods=["GET"]),
            Route("/person", self.lookup, methods=["POST"]),
            Route("/dead-letters", self.dead_letters, methods=["GET"]),
            Route("/dead-letters", self.act_on_dead_letters, methods=["POST"]),
            Route("/dead-letters/{letter_id}", self.dead_letter, methods=["GET"]),
            Route("/recent", self.recent, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static")),
        ]
        handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
            ConsoleError: self._error_page,
            HTTPException: self._error_page,
            redis_lib.RedisError: self._error_page,
        }
        inner = Starlette(routes=routes, exception_handlers=handlers)
        return SecurityHeaders(AdminOnly(inner, self.admins, self.templates))

    # -- pages ---------------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        data = await run_in_threadpool(queries.overview, self.redis, self.settings)
        flows, waiting, calls = charts.per_minute(data.history), charts.levels(data.history), charts.calls_per_window(data.history)
        since = data.history[0]["at"] if data.history else None  # the three charts share one time axis
        context: dict[str, Any] = {
            "ov": data,
            "primary": ("accepted", "delivered", "unchanged", "dead_lettered", "parked", "retrying", "backlog"),
            "charts": [
                ("Events per minute", charts.svg(flows, title="Events per minute", since=since), charts.legend(flows)),
                ("Waiting", charts.svg(waiting, title="Deliveries waiting", since=since), charts.legend(waiting)),
                ("Calls to Intercom per 10-s window", charts.svg(calls, title="Calls per 10-s window", since=since), charts.legend(calls)),
            ],
            "snapshots": len(data.history),
            "share": self.settings.rate_share,
        }
        return await self._page(request, "overview.html", refresh=True, **context)

    async def person(self, request: Request) -> Response:
        person = request.query_params.get("id")
        if person is None:
            return await self._page(request, "person.html", query="", lanes=[])
        _check_query(person, "id")
        found = await run_in_threadpool(queries.lane, self.redis, self.settings, person)
        return await self._page(request, "person.html", query=person, lanes=[found])

    async def lookup(self, request: Request) -> Response:
        """A lookup by POST: an email typed here stays out of URLs and access logs."""
        form = await _form(request)
        query = (form.get("q") or [""])[0].strip()
        _check_query(query, "q")
        lanes = await run_in_threadpool(self._lanes_of, query)
        return await self._page(request, "person.html", http_status=200 if lanes else 404, query=query, lanes=lanes)

    def _lanes_of(self, query: str) -> list[queries.Lane]:
        return [queries.lane(self.redis, self.settings, person, how) for person, how in queries.find_people(self.redis, query)]

    async def dead_letters(self, request: Request) -> Response:
        wanted, within = _dead_letter_filter(request.query_params)
        notice = _notice(request.query_params)
        listing = await run_in_threadpool(queries.dead_letters, self.redis, wanted)
        filters = {"reason": wanted.reason or "", "action": wanted.action or "", "person": wanted.person or "", "within": within}
        return await self._page(
            request, "dead_letters.html", listing=listing, filters=filters, within_choices=list(WITHIN), notice=notice, link=_link
        )

    async def dead_letter(self, request: Request) -> Response:
        letter_id = request.path_params["letter_id"]
        found = await run_in_threadpool(queries.dead_letter, self.redis, letter_id)
        if found is None:
            raise ConsoleError(404, f"no dead letter {letter_id!r}: it was replayed or purged, or never existed")
        return await self._page(request, "dead_letter.html", letter=found)

    async def act_on_dead_letters(self, request: Request) -> Response:
        """Replay or purge: the first POST shows what will happen, the confirmed one does it."""
        user = _admin(request)
        reason = cross_site(request.headers)
        if reason:
            raise ConsoleError(403, f"refused: {reason}")
        form = await _form(request)
        token, op, confirmed = _one(form, "csrf"), _one(form, "op"), _one(form, "confirmed") == "yes"
        ids = list(dict.fromkeys(i for i in form.get("id", []) if i.strip()))
        if not self.admins.csrf_valid(user, token):
            raise ConsoleError(403, "refused: the form's token is missing or expired; reload the page and try again")
        if op not in ("replay", "purge"):
            raise ConsoleError(400, "say what to do with the selected dead letters: replay or purge")
        if not ids:
            raise ConsoleError(400, "no dead letter selected: tick the ones to act on")
        if len(ids) > MAX_SELECTED:
            raise ConsoleError(400, f"{len(ids)} dead letters selected; at most {MAX_SELECTED} at a time (the CLI takes any number)")
        if not confirmed:
            letters = await run_in_threadpool(queries.letters_by_id, self.redis, ids)
            return await self._page(request, "confirm.html", op=op, letters=letters, missing=len(ids) - len(letters))
        act = self.actions.replay if op == "replay" else self.actions.purge
        try:
            done = await run_in_threadpool(lambda: act(ids, by=user))
        except ReplayRefused as exc:
            raise ConsoleError(503, f"not replayed: {exc}") from None
        except NotReplayable as exc:
            raise ConsoleError(409, f"not replayed: {exc}") from None
        verb = "replayed" if op == "replay" else "purged"
        return RedirectResponse(_link(f"{_base(request)}/dead-letters", **{verb: done.acted, "missing": done.missing}), status_code=303)

    async def recent(self, request: Request) -> Response:
        params = request.query_params
        status = params.get("status") or None
        if status is not None and status not in STATUSES:
            raise ConsoleError(400, f"status must be one of {', '.join(STATUSES)}")
        limit = _int_param(params, "limit", 100, 1, MAX_RECENT)
        data = await run_in_threadpool(queries.recent, self.redis, limit, status)
        return await self._page(request, "recent.html", refresh=True, data=data, status=status or "", statuses=STATUSES, limit=limit)

    # -- rendering -----------------------------------------------------------------------

    async def _page(self, request: Request, template: str, *, http_status: int = 200, refresh: bool = False, **context: Any) -> Response:
        paused = await run_in_threadpool(queries.pause_reason, self.redis, self.settings)
        user = _admin(request)
        html = self.templates.get_template(template).render(
            base=_base(request),
            user=user,
            csrf=self.admins.csrf_token(user),
            paused=paused,
            refresh=refresh,
            now=time.time(),
            **context,
        )
        return HTMLResponse(html, status_code=http_status)

    async def _error_page(self, request: Request, exc: Exception) -> Response:
        status, message = _error_of(exc)
        html = self.templates.get_template("error.html").render(base=_base(request), status=status, message=message)
        return HTMLResponse(html, status_code=status)


def _error_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, ConsoleError):
        return exc.status, exc.message
    if isinstance(exc, HTTPException):
        return exc.status_code, {404: "no such page in the console", 405: "this page does not take that method"}.get(
            exc.status_code, str(exc.detail)
        )
    # Redis's message may name its host; the page says only what to check.
    log.warning("console: Redis does not answer (%s)", type(exc).__name__)
    return 503, "Redis does not answer: check REDIS_URL and the Redis server; nothing was changed"


class AdminOnly:
    """Every request signed in with an ADMIN_KEYS pair (401 otherwise); none configured: 403."""

    def __init__(self, app: ASGIApp, admins: Admins, templates: jinja2.Environment) -> None:
        self.app = app
        self.admins = admins
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.admins:
            await self._refuse(scope, receive, send, 403, "the console is closed: set ADMIN_KEYS (user:password pairs) to open it", {})
            return
        user = self.admins.user_of(Headers(scope=scope).get("authorization"))
        if user is None:
            message = "sign in with a user and password of ADMIN_KEYS (a write key does not open the console)"
            await self._refuse(scope, receive, send, 401, message, {"www-authenticate": REALM})
            return
        scope.setdefault("state", {})["admin"] = user
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, message: str, headers: dict[str, str]) -> None:
        html = self.templates.get_template("error.html").render(base=scope.get("root_path", ""), status=status, message=message)
        await HTMLResponse(html, status_code=status, headers=headers)(scope, receive, send)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer of the console, errors and 401s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- input -------------------------------------------------------------------------------------


#: The largest form the console takes: MAX_SELECTED ids and a token fit well within it.
MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, list[str]]:
    """The fields of a URL-encoded form (the only kind the console's pages send), size-capped."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise ConsoleError(415, "send the console's forms as application/x-www-form-urlencoded, as its pages do")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ConsoleError(413, f"the form is over {MAX_FORM_BYTES // 1024} KB; select fewer dead letters")
    try:
        return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=MAX_SELECTED + 10)
    except (UnicodeDecodeError, ValueError):
        raise ConsoleError(400, f"the form could not be read (not UTF-8, or more than {MAX_SELECTED} fields)") from None


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0]


def _admin(request: Request) -> str:
    return str(request.scope["state"]["admin"])


def _base(request: Request) -> str:
    """The console's own path (``/console``, under any root path), for its links."""
    return str(request.scope.get("root_path", ""))


def _check_query(value: str, name: str) -> None:
    if not value.strip():
        raise ConsoleError(400, f"{name}: type a userId, anonymousId or email")
    if len(value) > queries.MAX_QUERY:
        raise ConsoleError(400, f"{name}: at most {queries.MAX_QUERY} characters")


def _dead_letter_filter(params: Any) -> tuple[queries.DeadLetterFilter, str]:
    within = params.get("within") or "all"
    if within not in WITHIN:
        raise ConsoleError(400, f"within must be one of {', '.join(WITHIN)}")
    reason, action, person = (params.get(name) or None for name in ("reason", "action", "person"))
    if reason is not None and len(reason) > 200:
        raise ConsoleError(400, "reason: at most 200 characters")
    if action is not None and not queries.is_action_name(action):
        raise ConsoleError(400, "action: an action's name, like track_event")
    if person is not None:
        _check_query(person, "person")
    seconds = WITHIN[within]
    since = queries.now_ms() - seconds * 1000 if seconds is not None else None
    return queries.DeadLetterFilter(reason=reason, action=action, person=person, since_ms=since), within


def _notice(params: Any) -> str | None:
    """What the last replay or purge did, from the redirect's query."""
    for verb in ("replayed", "purged"):
        if verb in params:
            done, missing = _int_param(params, verb, 0, 0, MAX_SELECTED), _int_param(params, "missing", 0, 0, MAX_SELECTED)
            gone = f"; {missing} selected were no longer there" if missing else ""
            return f"{verb.capitalize()} {done} dead letter(s){gone}."
    return None


def _int_param(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConsoleError(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _link(path: str, **params: Any) -> str:
    """``path?query`` with the non-empty params, encoded."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


# -- template filters --------------------------------------------------------------------------


def _when(value: Any) -> str:
    """A time (Unix seconds, or milliseconds when that large) as UTC text."""
    if _missing(value):
        return "—"
    seconds = float(value) / 1000 if float(value) > 1e11 else float(value)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _seconds(value: Any) -> str:
    if _missing(value):
        return "—"
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _missing(value: Any) -> bool:
    """None, empty, or a field an older sample lacks."""
    return value is None or value == "" or isinstance(value, jinja2.Undefined)


def _pretty(value: Any) -> str:
    """JSON, indented; a string that holds JSON (a body excerpt) is parsed first."""
    if isinstance(value, jinja2.Undefined):
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def _short_json(value: Any, most: int = 120) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= most else text[: most - 1] + "…"
