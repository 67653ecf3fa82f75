"""The admin routes of deletions: ``POST /v1/deletions`` and ``GET /v1/deletions/{id}``.

Mounted by ``producers/http.py``'s ``create_app``.  Authorised by ADMIN_KEYS (HTTP Basic
``user:password``, as the console); a write key never authorises a deletion.

``POST /v1/deletions`` with ``{"userId": …}`` (or ``email``, ``anonymousId``; several may be
given) answers 202 ``{"id": …}`` once the request is durable in Redis, and the person's
lane carries it out (worker/actions/delete_person.py).  ``GET /v1/deletions/{id}`` answers
its audit record: ``state`` (pending, done, failed), ``requested_at``, ``done_at``,
``contacts_deleted``, ``events_dropped``, and while failed ``reason``, ``failed_at`` and
``dead_letter`` (worker/store/deletions.py).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid

from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from producers.enqueue import BackPressure, Enqueuer, NotReplicated
from worker.settings import Settings
from worker.store.deletions import Deletions, deletion_event
from worker.store.lanes import person_of

#: The request's fields and the deletion's, in the Segment spelling the door uses.
ID_FIELDS = {"userId": "user_id", "email": "email", "anonymousId": "anonymous_id"}
MAX_BODY_BYTES = 4096


def deletion_routes(settings: Settings, enqueuer: Enqueuer) -> list[Route]:
    """The two routes, for ``create_app``'s list."""
    admins = [(user.encode(), password.encode()) for user, password in settings.admin_keys]
    deletions = Deletions(enqueuer.redis)

    def authorised(request: Request) -> bool:
        given = _basic_credentials(request.headers.get("authorization"))
        if given is None:
            return False
        user, password = given[0].encode(), given[1].encode()
        found = False
        for known_user, known_password in admins:  # no early exit: the time says nothing
            found |= hmac.compare_digest(user, known_user) & hmac.compare_digest(password, known_password)
        return found

    async def request_deletion(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "a deletion needs an admin key (ADMIN_KEYS) as HTTP Basic user:password")
        body = await request.body()
        ids, problem = _person_of(body)
        if problem:
            return _error(400, "invalid_request", problem)
        deletion_id = uuid.uuid4().hex
        event = deletion_event(deletion_id, ids.get("user_id"), ids.get("email"), ids.get("anonymous_id"))
        try:
            await run_in_threadpool(_accept, deletions, enqueuer, settings, deletion_id, event)
        except BackPressure as exc:
            return _error(503, "backlog_full", str(exc))
        except NotReplicated as exc:
            # Stored on the master alone (ACCEPT_DURABILITY=replica): a retry asks for a second deletion,
            # which finds the person gone and counts as done.
            return _error(503, "not_replicated", str(exc))
        except (RedisError, KombuOperationalError, OSError):
            return _error(503, "unavailable", "the queue is unavailable; the deletion was not accepted, send it again")
        return JSONResponse({"id": deletion_id}, 202)

    async def deletion_state(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "unauthorized", "a deletion needs an admin key (ADMIN_KEYS) as HTTP Basic user:password")
        record = await run_in_threadpool(deletions.get, request.path_params["id"])
        if record is None:
            return _error(404, "not_found", "no deletion has this id (or its audit record has expired)")
        return JSONResponse(record)

    return [
        Route("/v1/deletions", request_deletion, methods=["POST"]),
        Route("/v1/deletions/{id}", deletion_state, methods=["GET"]),
    ]


def _accept(deletions: Deletions, enqueuer: Enqueuer, settings: Settings, deletion_id: str, event: dict) -> None:
    """Record the request, then queue its event: a GET right after the 202 finds it pending."""
    deletions.request(deletion_id, audit_days=getattr(settings, "deletion_audit_days", 365))
    ids = event["properties"]
    # What was accepted before is dropped unsent, in the anonymous lanes linked to the user too.
    deletions.mark(person_of(event), deletion_id, user_id=ids.get("user_id"), anonymous_id=ids.get("anonymous_id"))
    enqueuer.accept([event])


def _person_of(body: bytes) -> tuple[dict[str, str], str | None]:
    """The person's ids from the body, or a sentence saying what is wrong with it."""
    if len(body) > MAX_BODY_BYTES:
        return {}, f"the body is over {MAX_BODY_BYTES} bytes"
    try:
        data = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        return {}, "the body is not JSON"
    if not isinstance(data, dict):
        return {}, 'the body must be an object such as {"userId": "42"}'
    unknown = sorted(set(data) - set(ID_FIELDS))
    if unknown:
        return {}, f"unknown field(s) {', '.join(unknown)}: give userId, email or anonymousId"
    ids: dict[str, str] = {}
    for name, field in ID_FIELDS.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            return {}, f"{name} must be a non-empty string"
        ids[field] = str(value)
    if not ids:
        return {}, "say whom: userId, email or anonymousId"
    return ids, None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic ``Authorization`` header, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, sep, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)
