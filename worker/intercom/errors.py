"""What can go wrong when calling Intercom, and whether to try again.

The class of an exception is the retry decision; the caller (a Celery task)
reads it and never inspects status codes itself::

    IntercomError                      .status (int|None), .body (parsed error body or text), .code (first errors[].code)
    ├── RetryableError                 try again with backoff (timeouts, connection errors, 408, 423, 5xx except 501)
    │   ├── RateLimited                429 (or our own fleet budget is spent): wait until .reset_at; uses up no attempt
    │   ├── AwaitingSearch             only Intercom's lagging search can tell what to do: look again at .retry_at; no attempt
    │   └── SearchLagConflict          409 whose contact id could not be used: Intercom's search index lags, try again
    ├── PermanentError                 dead-letter now, with Intercom's error body (400, 403, 422, 501, other 4xx)
    │   ├── InvalidPayload             the mapped fields fail the action's schema; .field names it (no HTTP involved)
    │   ├── NotFound                   404 or 410 for any resource; actions turn "no such contact" into ContactNotFound
    │   │   └── ContactMerged          410 for a contact merged into another: .into, from the canonical Link
    │   └── Conflict                   409; actions read the existing contact's id with conflicting_contact_id()
    ├── ContactNotFound                404 for a contact that does not exist (yet): the caller parks the event
    └── Unauthorized                   401: the token is bad for every event; the caller pauses the destination

Which status stands for which class is the table ``STATUS_ERRORS`` below
(``classify`` reads it); what each class leads to is the failure policy
(``decide`` in ``worker/policy.py``); the domain meaning of a 404 or a 409
(which depends on the endpoint) lives in the action that made the call.  This
module imports nothing of the relay, so the client, the actions and the policy
can all import it.  No message, repr or attribute here ever holds the
access token: messages are built from the method, path, status and Intercom's
error body only.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx

#: Intercom spreads its per-minute limit over 10-second windows; a 429 without
#: an ``X-RateLimit-Reset`` header is waited out for one such window.
DEFAULT_RATE_WINDOW_SECONDS = 10

#: An error body that is not JSON (a proxy's HTML page) is kept, but cut short:
#: it ends up in dead letters and log lines.
MAX_TEXT_BODY = 2000

# Intercom's 409 on POST /contacts, also in the archived variant:
# "A contact matching those details already exists with id=6762f0dd1bb69f9f2193bb83"
_EXISTING_ID = re.compile(r"already exists with id=([A-Za-z0-9_-]+)")


class IntercomError(Exception):
    """Base of every error talking to Intercom; never raised itself."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.code = code


class RetryableError(IntercomError):
    """A transient failure: try the same call again later, with backoff and jitter."""


class RateLimited(RetryableError):
    """Over the rate limit: wait until ``reset_at`` (Unix seconds); this uses up no attempt."""

    def __init__(
        self, message: str, status: int | None = None, body: Any = None, code: str | None = None, *, reset_at: float | None = None
    ) -> None:
        super().__init__(message, status, body, code)
        self.reset_at = time.time() + DEFAULT_RATE_WINDOW_SECONDS if reset_at is None else reset_at


class AwaitingSearch(RetryableError):
    """Only Intercom's lagging search can tell what to do: look again at ``retry_at``; no attempt is used."""

    def __init__(self, message: str, *, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class SearchLagConflict(RetryableError):
    """A 409 whose existing contact could not be used; Intercom's search index lags, so retry."""


class PermanentError(IntercomError):
    """Intercom refused the request for good: dead-letter the event now, with the error body."""


class InvalidPayload(PermanentError):
    """The mapped fields fail the action's schema; ``field`` names the first bad one. Dead-letter."""

    def __init__(self, field: str, reason: str) -> None:
        # Both go into args so that the exception survives pickling (Celery).
        Exception.__init__(self, field, reason)
        self.status, self.body, self.code = None, None, "invalid_payload"
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class NotFound(PermanentError):
    """A 404 (or 410 Gone, for a merged contact); permanent unless the action knows better."""


class ContactMerged(NotFound):
    """A 410 for a contact merged into another; ``into`` is the survivor's id, from the canonical Link."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, code: str | None = None, *, into: str | None) -> None:
        super().__init__(message, status, body, code)
        self.into = into


class Conflict(PermanentError):
    """A 409; permanent unless the action can use the existing contact's id."""


class ContactNotFound(IntercomError):
    """The contact does not exist (yet): the caller parks the event until the person's next identify."""


class Unauthorized(IntercomError):
    """A 401: the token is bad for every event, so the caller pauses the destination."""


#: Intercom's statuses that stand for a particular error.  Any other 4xx is a
#: PermanentError, any other 5xx a RetryableError (501 "not implemented" will
#: not change on a retry).
STATUS_ERRORS: dict[int, type[IntercomError]] = {
    401: Unauthorized,
    404: NotFound,
    408: RetryableError,
    409: Conflict,
    410: NotFound,
    423: RetryableError,
    429: RateLimited,
    501: PermanentError,
}


def error_class(status: int) -> type[IntercomError]:
    """The exception class for a non-2xx status."""
    return STATUS_ERRORS.get(status) or (RetryableError if status >= 500 else PermanentError)


def classify(response: httpx.Response) -> IntercomError | None:
    """The error a response stands for, or None for a 2xx."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    message, body, code = error_details(response)
    cls = error_class(status)
    if cls is RateLimited:
        return RateLimited(message, status, body, code, reset_at=reset_at(response))
    return cls(message, status, body, code)


def from_transport_error(exc: httpx.TransportError) -> RetryableError:
    """A timeout or connection failure: the request may not have arrived, so retry."""
    return RetryableError(f"{_request_line(exc)}: {type(exc).__name__}: {exc}".rstrip(": "))


# A 410's header: Link: </contacts/6762f0dd1bb69f9f2193bb83>; rel="canonical"
_CANONICAL = re.compile(r"<[^>]*/contacts/([A-Za-z0-9_-]+)>\s*;\s*rel=\"?canonical")


def with_merge_target(error: IntercomError, response: httpx.Response) -> IntercomError:
    """A 410 for a merged contact becomes ContactMerged, naming the contact it was merged into."""
    if response.status_code != 410 or not isinstance(error, NotFound):
        return error
    found = _CANONICAL.search(response.headers.get("link", ""))
    return ContactMerged(str(error), error.status, error.body, error.code, into=found.group(1) if found else None)


def conflicting_contact_id(error: IntercomError) -> str | None:
    """The id in Intercom's 409 "…already exists with id=<id>", or None."""
    if error.status != 409:
        return None
    for item in _errors(error.body):
        match = _EXISTING_ID.search(str(item.get("message") or ""))
        if match:
            return match.group(1)
    return None


def error_details(response: httpx.Response) -> tuple[str, Any, str | None]:
    """(one-line message, parsed error body or text, first ``errors[].code``) of an error response."""
    body = _error_body(response)
    code = _first_code(body)
    return _describe(response, body, code), body, code


def _error_body(response: httpx.Response) -> Any:
    """Intercom's parsed ``error.list``, else the (shortened) text of the body."""
    try:
        return response.json()
    except ValueError:
        return response.text[:MAX_TEXT_BODY]


def _errors(body: Any) -> list[dict]:
    """The ``errors`` items of an error body, or [] for any other shape."""
    items = body.get("errors") if isinstance(body, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _first_code(body: Any) -> str | None:
    """The first ``errors[].code``, as the error's short name."""
    codes = [item.get("code") for item in _errors(body) if item.get("code")]
    return str(codes[0]) if codes else None


def _describe(response: httpx.Response, body: Any, code: str | None) -> str:
    """One line: request, status, code and Intercom's messages (never headers)."""
    messages = "; ".join(str(item.get("message")) for item in _errors(body) if item.get("message"))
    if not messages and isinstance(body, str):
        messages = body[:200]
    head = f"{_request_line(response)} -> {response.status_code}"
    return f"{head} {code or response.reason_phrase}: {messages}".rstrip(": ")


def _request_line(source: httpx.Response | httpx.TransportError) -> str:
    """ "POST /contacts" for the request behind a response or error, if known."""
    try:
        request = source.request
    except RuntimeError:  # a Response or error built by hand has no request
        return "Intercom"
    return f"{request.method} {request.url.path}"


def reset_at(response: httpx.Response) -> float:
    """``X-RateLimit-Reset`` (Unix seconds), or one window from now without it."""
    try:
        return float(response.headers["X-RateLimit-Reset"])
    except (KeyError, ValueError):
        return time.time() + DEFAULT_RATE_WINDOW_SECONDS
