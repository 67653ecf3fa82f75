"""The HTTP door: Segment's Tracking API, as a Starlette app on uvicorn.

Any Segment-compatible library (analytics-python, rudder-sdk-python,
analytics-node, analytics.js, …) can point its ``host`` here.  Routes:

    POST /v1/identify /v1/track /v1/group /v1/page /v1/screen /v1/alias
    POST /v1/i /v1/t /v1/g /v1/p /v1/s /v1/a (analytics.js: the same, by letter)
    POST /v1/batch, /v1/import, /v1/b (the same)
    POST /v1/m (analytics.js's own metrics: answered, nothing kept)
    OPTIONS on each of those: the CORS preflight (producers/cors.py)
    GET  /health /ready /metrics /openapi.json

Success is exactly ``200 {"success": true}``: Segment's libraries treat any
other answer, even another 2xx, as a failure and send again.  Every other
answer is JSON ``{"code": ..., "message": ...}`` (docs/ingestion.md lists
them).  The handlers are thin: they read and check the body, then call the
same ``validate_event`` and ``Enqueuer.accept`` as the Python API.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import os
import zlib
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import anyio
import anyio.to_thread
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from console.app import mount as mount_console
from producers.cors import Cors
from producers.deletions import deletion_routes
from producers.enqueue import BackPressure, Enqueuer, NotReplicated
from producers.events import BATCH_SHARED, EVENT_TYPES, MAX_DEPTH, InvalidEvent, validate_event
from worker.settings import Settings, check_write_keys
from worker.store.counters import GAUGES, Counters

log = logging.getLogger(__name__)

#: Segment's limit on one request, counted after decompression: its libraries
#: cut batches to fit under it, so no real client is refused by it, while a
#: bound keeps one request from holding much memory.
MAX_REQUEST_BYTES = 500 * 1024

#: The cap on the body as received.  gzip can make incompressible data a
#: little larger (≈0.03 % plus a header), so a body that inflates to under
#: MAX_REQUEST_BYTES is always under this; anything larger is refused unread.
MAX_RAW_BYTES = MAX_REQUEST_BYTES + MAX_REQUEST_BYTES // 100 + 1024

#: Segment's limit on events in one batch.
MAX_BATCH_EVENTS = 2_500

#: A request's body must arrive within this long: a client trickling it would
#: hold a connection and its buffer for as long as it liked.
BODY_READ_SECONDS = 30.0

#: Bodies with no credentials in a header read at once (each up to the request
#: limit): strangers cannot make the door buffer more than this many.
MAX_UNVOUCHED_READS = 64

#: What a client is told to wait when Redis does not answer.
UNAVAILABLE_RETRY_AFTER = 5

#: Threads that ingest at once in one process (see Door._limiter).
INGEST_THREADS = 1

#: analytics.js posts each event to the first letter of its type under its
#: apiHost (``/v1/t`` for a track), and batches to ``/v1/b``
#: (@segment/analytics-next, plugins/segmentio).
SHORT_ROUTES = {"i": "identify", "t": "track", "g": "group", "p": "page", "s": "screen", "a": "alias"}

#: Set by ``serve(workers>1)`` so the worker processes it spawns allow no auth too.
ALLOW_NO_AUTH_ENV = "INTERCOM_RELAY_ALLOW_NO_AUTH"

_SUCCESS = b'{"success":true}'
_GZIP = ("gzip", "x-gzip")
_IDENTITY = ("", "identity")


class NoWriteKeys(RuntimeError):
    """No write key is configured and unauthenticated ingestion was not asked for."""


class HttpError(Exception):
    """An answer other than success: status, a stable code and a message naming the problem."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "message": self.message, **self.extra}, status_code=self.status, headers=self.headers)


# -- reading the body --------------------------------------------------------


async def read_body(request: Request, limit: int = MAX_RAW_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(f"the request body is {int(declared)} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(f"the request body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(raw: bytes, encoding: str, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The body after Content-Encoding, never inflated past ``limit`` bytes (413)."""
    encoding = encoding.strip().lower()
    if encoding in _IDENTITY:
        if len(raw) > limit:
            raise _too_large(f"the request body is {len(raw)} bytes")
        return raw
    if encoding in _GZIP:
        return gunzip_capped(raw, limit)
    raise HttpError(415, "unsupported_encoding", f"Content-Encoding {encoding[:40]!r} is not supported; send gzip or no encoding")


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """Inflate gzip ``data`` (all members) but stop with 413 past ``limit`` bytes.

    ``max_length`` makes zlib hand back at most that much at a time, so a gzip
    bomb (10 MB of zeros packs into 10 KB) costs ``limit`` bytes of memory, not
    its inflated size.
    """
    out: list[bytes] = []
    size = 0
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    pending = data
    try:
        while True:
            piece = inflater.decompress(pending, limit + 1 - size)
            size += len(piece)
            if size > limit:
                raise _too_large(f"the request body inflates to over {limit} bytes")
            out.append(piece)
            if inflater.eof:
                pending = inflater.unused_data
                if not pending:
                    return b"".join(out)
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # another gzip member
                continue
            pending = inflater.unconsumed_tail
            if not pending and not piece:
                raise HttpError(400, "invalid_gzip", "the gzip body is truncated")
    except zlib.error as exc:
        raise HttpError(400, "invalid_gzip", f"the body is not valid gzip ({exc})") from None


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``, or 400 saying where it breaks."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise HttpError(400, "invalid_json", "the body is not valid JSON: it is not UTF-8 text") from None
    except RecursionError:
        raise HttpError(400, "invalid_json", f"the body nests arrays or objects too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # NaN or Infinity, or an integer of thousands of digits
        raise HttpError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    """NaN, Infinity and -Infinity are Python's, not JSON's."""
    raise ValueError(f"{name} is not a JSON number")


def _too_large(what: str) -> HttpError:
    return HttpError(413, "request_too_large", f"{what}; the limit is {MAX_REQUEST_BYTES} bytes (500 KB) after decompression")


# -- authentication ----------------------------------------------------------


def basic_user(header: str | None) -> str | None:
    """The user name of an HTTP Basic ``Authorization`` header (Segment's write key)."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]


def key_is_valid(candidate: str | None, keys: tuple[bytes, ...]) -> bool:
    """Whether ``candidate`` is one of ``keys``, in time that does not depend on how close it is."""
    if not candidate or not isinstance(candidate, str):
        return False
    given = candidate.encode()
    found = False
    for key in keys:  # no early exit: compare against every key
        found |= hmac.compare_digest(given, key)
    return found


# -- the app -----------------------------------------------------------------


class Door:
    """The request handlers, holding the Enqueuer and the write keys."""

    def __init__(self, enqueuer: Enqueuer, keys: tuple[bytes, ...], *, require_auth: bool, cors: Cors | None = None) -> None:
        self.enqueuer = enqueuer
        self.keys = keys
        self.require_auth = require_auth
        self.cors = cors or Cors.from_setting(())
        self.counters = Counters(enqueuer.redis)
        self._ingest_limiter: anyio.CapacityLimiter | None = None
        self._unvouched_reads: anyio.Semaphore | None = None

    def _limiter(self) -> anyio.CapacityLimiter:
        """One ingesting thread at a time (made lazily: it belongs to the running loop).

        Ingestion is CPU (JSON, validation) between short Redis round trips, and
        one process has one GIL: more threads add no throughput, only turns on
        the GIL, and a thread back from Redis may wait up to the 5 ms switch
        interval for it.  In bench/ingest.py, at 10,000 events/s, one thread
        gave a p50 of 10-16 ms against 19-24 ms with Starlette's 40, for the
        same maximum rate.  More cores are more uvicorn workers, not threads.
        """
        if self._ingest_limiter is None:
            self._ingest_limiter = anyio.CapacityLimiter(INGEST_THREADS)
        return self._ingest_limiter

    def single(self, kind: str) -> Callable[[Request], Awaitable[Response]]:
        """The handler of ``POST /v1/<kind>``: one event whose type is the path's."""

        async def endpoint(request: Request) -> Response:
            return await self._serve(request, lambda body: self._ingest_one(kind, body))

        return endpoint

    async def batch(self, request: Request) -> Response:
        """``POST /v1/batch``: ``{"batch": [...], "context"?, "integrations"?, "sentAt"?}``."""
        return await self._serve(request, self._ingest_batch)

    async def browser_metrics(self, request: Request) -> Response:
        """``POST /v1/m``: analytics.js's counters of its own errors; read, checked, and dropped.

        Segment keeps them for its own dashboards; the relay has no use for them,
        but an answer other than 200 would only make the library log errors.
        """
        try:
            body = parse_json(decode_body(await read_body(request), request.headers.get("content-encoding", "")))
            if not isinstance(body, dict):
                raise HttpError(400, "invalid_body", "the body must be a JSON object")
        except HttpError as exc:
            return exc.response()
        return Response(_SUCCESS, media_type="application/json")

    # -- CORS ------------------------------------------------------------------

    def guarded(self, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """``endpoint`` refusing a disallowed Origin before reading anything, and
        answering an allowed one with CORS headers, errors included (else the
        page could not read a 400 and would send it again)."""

        async def guarded_endpoint(request: Request) -> Response:
            origin = request.headers.get("origin")
            refusal = self.cors.refusal(origin)
            if refusal:
                return HttpError(403, "origin_not_allowed", refusal).response()
            response = await endpoint(request)
            response.headers.update(self.cors.response_headers(origin))
            return response

        return guarded_endpoint

    async def preflight(self, request: Request) -> Response:
        """``OPTIONS`` on an ingestion route: the browser's CORS preflight."""
        origin = request.headers.get("origin")
        method = request.headers.get("access-control-request-method")
        if origin is None or method is None:
            message = "an OPTIONS request here is a CORS preflight: it needs Origin and Access-Control-Request-Method"
            return HttpError(400, "invalid_preflight", message).response()
        refusal = self.cors.refusal(origin)
        if refusal:
            return HttpError(403, "origin_not_allowed", refusal).response()
        refusal = self.cors.preflight_refusal(method, request.headers.get("access-control-request-headers"))
        if refusal:
            return HttpError(403, "preflight_refused", refusal).response()
        return Response(status_code=204, headers=self.cors.preflight_headers(origin))

    async def _serve(self, request: Request, ingest: Callable[[dict], Response]) -> Response:
        """Authenticate, read, decode and parse; then ingest in a worker thread."""
        try:
            header_key = basic_user(request.headers.get("authorization"))
            if header_key is not None:
                self._check_key(header_key)
            raw = await self._read(request, vouched=header_key is not None)
            return await anyio.to_thread.run_sync(
                self._parse_and_ingest,
                raw,
                request.headers.get("content-encoding", ""),
                header_key is None,
                ingest,
                limiter=self._limiter(),
            )
        except HttpError as exc:
            return exc.response()

    async def _read(self, request: Request, *, vouched: bool) -> bytes:
        """The body, within BODY_READ_SECONDS; a body with no credentials in a header waits its turn.

        Such a body (analytics.js puts the key in it) costs reading before it
        can be refused, so at most MAX_UNVOUCHED_READS are read at once, and
        no client may hold a connection by trickling its body.
        """
        try:
            with anyio.fail_after(BODY_READ_SECONDS):
                if vouched:
                    return await read_body(request)
                async with self._unvouched():
                    return await read_body(request)
        except TimeoutError:
            raise HttpError(408, "body_timeout", f"the body did not arrive within {BODY_READ_SECONDS:g} s") from None
        except ClientDisconnect:
            log.info("a client went away before sending its whole body")
            raise HttpError(400, "incomplete_body", "the client disconnected before the body ended") from None

    def _unvouched(self) -> anyio.Semaphore:
        if self._unvouched_reads is None:  # made lazily: it belongs to the running loop
            self._unvouched_reads = anyio.Semaphore(MAX_UNVOUCHED_READS)
        return self._unvouched_reads

    def _parse_and_ingest(self, raw: bytes, encoding: str, check_body_key: bool, ingest: Callable[[dict], Response]) -> Response:
        """The CPU part of a request, off the event loop."""
        try:
            body = parse_json(decode_body(raw, encoding))
            if not isinstance(body, dict):
                raise HttpError(400, "invalid_body", "the body must be a JSON object")
            if check_body_key:
                self._check_key(body.get("writeKey"))
            return ingest(body)
        except HttpError as exc:
            return exc.response()

    def _check_key(self, key: str | None) -> None:
        """401 unless ``key`` is a configured write key (or auth is off)."""
        if not self.require_auth:
            return
        if key is None:
            raise HttpError(401, "unauthorized", "no write key: send it as the HTTP Basic user name, or as writeKey in the body")
        if not key_is_valid(key, self.keys):
            raise HttpError(401, "unauthorized", "the write key is not valid")

    def _ingest_one(self, kind: str, body: dict) -> Response:
        """Validate and accept one event; 400 naming the field if it is invalid."""
        body = {**body, "type": kind}
        try:
            event = validate_event(body, received_at=datetime.now(timezone.utc))
        except InvalidEvent as exc:
            self._count_refused(1)
            raise HttpError(400, "invalid_event", exc.message, field=exc.field) from None
        self._accept([event])
        return Response(_SUCCESS, media_type="application/json")

    def _ingest_batch(self, body: dict) -> Response:
        """Validate each event; accept the valid ones and list the refused."""
        items = body.get("batch")
        if not isinstance(items, list):
            raise HttpError(400, "invalid_batch", "batch: must be an array of events")
        if len(items) > MAX_BATCH_EVENTS:
            raise HttpError(413, "batch_too_large", f"batch: {len(items)} events is over the limit of {MAX_BATCH_EVENTS} per request")
        shared = {key: body[key] for key in BATCH_SHARED if key in body}
        received_at = datetime.now(timezone.utc)
        events, refused = [], []
        for index, item in enumerate(items):
            try:
                events.append(validate_event(item, received_at=received_at, batch_context=shared))
            except InvalidEvent as exc:
                refused.append({"index": index, "field": exc.field, "message": exc.message})
        self._accept(events)
        self._count_refused(len(refused))
        if refused and not events:
            raise HttpError(400, "invalid_events", f"all {len(refused)} events were refused", refused=refused)
        if refused:
            return JSONResponse({"success": True, "refused": refused})
        return Response(_SUCCESS, media_type="application/json")

    def _accept(self, events: list[dict]) -> None:
        """Enqueuer.accept, with back-pressure and an unreachable Redis as 503s."""
        try:
            self.enqueuer.accept(events)
        except BackPressure as exc:
            raise HttpError(503, "backpressure", str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
        except NotReplicated as exc:  # ACCEPT_DURABILITY=replica: stored, but on the master alone
            log.warning("accepted events not acknowledged by a replica: %s", exc)
            raise HttpError(503, "not_replicated", str(exc), headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)}) from None
        except (RedisError, KombuOperationalError, OSError) as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: Exception) -> HttpError:
        log.error("could not accept events: %s: %s", type(exc).__name__, exc)
        return HttpError(
            503,
            "unavailable",
            "the queue is unavailable; nothing was accepted, send again",
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )

    def _count_refused(self, n: int) -> None:
        if n:
            try:
                self.counters.incr("refused", n)
            except Exception as exc:  # noqa: BLE001 - a count must not turn an answer into a 500
                log.warning("could not count %d refused events: %s", n, exc)

    # -- operations endpoints ------------------------------------------------

    async def health(self, request: Request) -> Response:
        """Liveness: the process answers."""
        return Response(_SUCCESS, media_type="application/json")

    async def ready(self, request: Request) -> Response:
        """Readiness: Redis answers."""
        try:
            await run_in_threadpool(self.enqueuer.redis.ping)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return HttpError(503, "not_ready", f"Redis does not answer ({type(exc).__name__})").response()
        return JSONResponse({"ready": True})

    async def metrics(self, request: Request) -> Response:
        """The fleet-wide counters in Prometheus' text format."""
        try:
            snapshot = await run_in_threadpool(self.counters.snapshot)
        except Exception as exc:  # noqa: BLE001
            return HttpError(503, "unavailable", f"Redis does not answer ({type(exc).__name__})").response()
        return PlainTextResponse(prometheus_text(snapshot), media_type="text/plain; version=0.0.4")

    async def openapi(self, request: Request) -> Response:
        from producers.openapi import openapi_spec  # noqa: PLC0415 - built only when asked

        return JSONResponse(openapi_spec())


#: Counters that go up and down; everything else in a snapshot only grows.
_GAUGE_NAMES = set(GAUGES) | {"backlog"}

_HELP = {
    "accepted": "Events accepted at the door (durable in Redis).",
    "refused": "Events refused at the door as invalid.",
    "duplicate": "Events accepted again with a messageId already seen (delivered once).",
    "filtered": "Events that matched no mapping.",
    "ingested": "Events expanded into deliveries.",
    "deliveries": "Deliveries created (one event through one mapping).",
    "delivered": "Deliveries Intercom accepted.",
    "dead_lettered": "Deliveries given up, with their reason.",
    "rate_limited": "429 answers from Intercom.",
    "api_calls": "HTTP calls made to Intercom.",
    "parked": "Deliveries parked until their person is identified.",
    "retrying": "Deliveries waiting for a retry.",
    "backlog": "Events accepted and not yet finished.",
}


def prometheus_text(snapshot: dict[str, int]) -> str:
    """Prometheus exposition format 0.0.4: one ``intercom_relay_<name>`` per counter."""
    lines = []
    for name, value in snapshot.items():
        metric = f"intercom_relay_{name}"
        lines.append(f"# HELP {metric} {_HELP.get(name, name)}")
        lines.append(f"# TYPE {metric} {'gauge' if name in _GAUGE_NAMES else 'counter'}")
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 as JSON errors like ours."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"code": code, "message": f"{request.method} {request.url.path}: {exc.detail}"}, status_code=exc.status_code, headers=exc.headers
    )


def create_app(settings: Settings, enqueuer: Enqueuer, *, allow_no_auth: bool = False) -> Starlette:
    """The ingestion app.  Refuses (NoWriteKeys) to run without write keys unless ``allow_no_auth``,
    and (SettingsError) with a write key that is short or a placeholder."""
    check_write_keys(settings.write_keys)
    keys = tuple(k.encode() for k in settings.write_keys)
    if not keys and not allow_no_auth:
        raise NoWriteKeys(
            "no write keys are configured: set WRITE_KEYS (comma-separated), or allow "
            "unauthenticated ingestion explicitly (--no-auth) for a local demo"
        )
    door = Door(enqueuer, keys, require_auth=bool(keys), cors=Cors.from_setting(settings.cors_origins))
    routes: list[BaseRoute] = [*ingestion_routes(door)]
    routes += [
        Route("/health", door.health, methods=["GET"]),
        Route("/ready", door.ready, methods=["GET"]),
        Route("/metrics", door.metrics, methods=["GET"]),
        Route("/openapi.json", door.openapi, methods=["GET"]),
        # Privacy requests and the pipeline console, for operators (ADMIN_KEYS; a write key opens neither).
        *deletion_routes(settings, enqueuer),
        mount_console(settings, enqueuer.redis),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_exception})


def ingestion_endpoints(door: Door) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """Every POST route of the ingestion API, by path: the events' and analytics.js's metrics'."""
    endpoints = {f"/v1/{kind}": door.single(kind) for kind in EVENT_TYPES}
    endpoints |= {f"/v1/{letter}": endpoints[f"/v1/{kind}"] for letter, kind in SHORT_ROUTES.items()}
    # /v1/import is Segment's historical-import alias; /v1/b is analytics.js's batching route.
    endpoints |= {"/v1/batch": door.batch, "/v1/import": door.batch, "/v1/b": door.batch}
    endpoints["/v1/m"] = door.browser_metrics
    return endpoints


def ingestion_routes(door: Door) -> list[Route]:
    """Each ingestion path: POST behind the Origin check, and OPTIONS for its preflight."""
    routes = []
    for path, endpoint in ingestion_endpoints(door).items():
        routes.append(Route(path, door.guarded(endpoint), methods=["POST"]))
        routes.append(Route(path, door.preflight, methods=["OPTIONS"]))
    return routes


def app_from_env() -> Starlette:
    """uvicorn ``--factory`` entry point: settings from the environment (used with workers > 1)."""
    from producers.client import build_enqueuer  # noqa: PLC0415
    from worker.settings import Settings  # noqa: PLC0415

    settings = Settings.from_env()
    allow = os.environ.get(ALLOW_NO_AUTH_ENV) == "1"
    return create_app(settings, build_enqueuer(settings), allow_no_auth=allow)


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    workers: int = 1,
    allow_no_auth: bool = False,
    forwarded_allow_ips: str | None = None,
    log_level: str = "info",
) -> None:
    """Run the ingestion API on uvicorn until stopped.

    One process is enough for ~10k events/s; ``workers > 1`` starts that many
    uvicorn processes, each building its settings from the environment.
    ``X-Forwarded-*`` headers are trusted from ``forwarded_allow_ips`` only
    (uvicorn's default: 127.0.0.1), for running behind a proxy.
    """
    import uvicorn  # noqa: PLC0415 - the server is needed only to serve

    from producers.client import build_enqueuer  # noqa: PLC0415

    options: dict[str, Any] = dict(
        host=host, port=port, proxy_headers=True, log_level=log_level, forwarded_allow_ips=forwarded_allow_ips, server_header=False
    )
    if workers > 1:
        if allow_no_auth:
            os.environ[ALLOW_NO_AUTH_ENV] = "1"
        app_from_env()  # fail here, once, with a clear error rather than in every worker
        uvicorn.run("producers.http:app_from_env", factory=True, workers=workers, **options)
        return
    app = create_app(settings, build_enqueuer(settings), allow_no_auth=allow_no_auth)
    uvicorn.run(app, **options)
