"""The HTTP client for Intercom's REST API 2.16: one per worker process.

One long-lived httpx transport (a pool of connections) keeps connections to
Intercom open across events (TLS handshakes cost more than the calls), and is
safe to share between the threads of a threads pool.  Every method returns
Intercom's parsed JSON or raises an exception from
:mod:`worker.intercom.errors`; there is no retry here: the caller decides from
the exception's class.

Requests go to the transport directly, not through ``httpx.Client``: the
client's per-request work (URL merging, the cookie jar, auth and redirect
flows, none of which a bearer-token API needs) cost a third of each call's CPU
(``python bench/http_client.py``).  The transport is what ``httpx.Client``
would have built: the same pool limits and the environment's proxy
(``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) and CA settings.

A rate *budget* (another module) may be passed in: the client calls
``budget.acquire()`` before each request, which may raise
:class:`~worker.intercom.errors.RateLimited` without a call being made, and
``budget.observe(response)`` after each response, so that the budget learns
Intercom's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import urllib.request
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx

from worker.intercom.errors import IntercomError, RetryableError, classify, from_transport_error, with_merge_target
from worker.settings import INTERCOM_VERSION, Settings

log = logging.getLogger(__name__)

#: A threads pool runs tens of actions at once; each holds one connection for
#: the length of a call, so the pool is sized for that, not for one thread.
MAX_CONNECTIONS = 100

#: Connecting to Intercom takes milliseconds; a slow connect is a dead route,
#: better retried soon than waited on for the whole request timeout.
CONNECT_TIMEOUT = 5.0

#: Intercom's default page size is 50; a lookup by email needs only the first few.
DEFAULT_SEARCH_PAGE = 10


class Budget(Protocol):
    """What the client needs from a rate budget."""

    def acquire(self) -> float | None:
        """Wait for this call's slot (or raise RateLimited); returns the slot's time, if known."""

    def observe(self, response: httpx.Response, slot: float | None = None) -> None:
        """Learn from the answer to the call made in ``slot``."""


class NoBudget:
    """No fleet-wide budget: every call may go, nothing is learnt."""

    def acquire(self) -> float | None:
        """Always allow the call."""
        return None

    def observe(self, response: httpx.Response, slot: float | None = None) -> None:
        """Ignore the rate-limit headers."""


class IntercomClient:
    """Calls Intercom's REST API with a bearer token; thread-safe."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        budget: Budget | None = None,
    ) -> None:
        self._token = token  # kept only to scrub it from error bodies; never printed
        self._budget: Budget = budget or NoBudget()
        self._counter = _CallCounter()  # shared with every view (with_budget)
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        self._extensions = {"timeout": self.timeout.as_dict()}
        self._headers = httpx.Headers(_headers(token))
        self._transport = transport or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
            proxy=environment_proxy(self.base_url),
        )

    @classmethod
    def from_settings(cls, settings: Settings, budget: Budget | None = None) -> IntercomClient:
        """A client for the settings' API URL, token and timeout."""
        return cls(settings.api_url, settings.access_token, timeout=settings.http_timeout, budget=budget)

    def __repr__(self) -> str:
        return f"IntercomClient(base_url={self.base_url!r}, calls={self.calls})"

    def __enter__(self) -> "IntercomClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    @property
    def calls(self) -> int:
        """HTTP calls sent so far by this client and its views (for API calls per delivered event)."""
        return self._counter.value

    def with_budget(self, budget: Budget) -> IntercomClient:
        """This client (the same connections and call count) asking ``budget`` before each call.

        A delivery run passes itself (worker/delivery.py): before each of its
        calls it takes its prepaid slot (its lease is renewed by the worker's
        liveness thread, worker/liveness.py).  A shallow copy,
        made per delivery, costs a few microseconds.
        """
        view = copy.copy(self)
        view._budget = budget
        return view

    # -- contacts ---------------------------------------------------------

    def create_contact(self, body: dict) -> dict:
        """POST /contacts: create a user or lead."""
        return self._request("POST", "/contacts", body)

    def update_contact(self, contact_id: str, body: dict) -> dict:
        """PUT /contacts/{id}: update a contact's fields."""
        return self._request("PUT", f"/contacts/{_segment(contact_id)}", body)

    def search_contacts(self, query: dict, per_page: int = DEFAULT_SEARCH_PAGE, starting_after: str | None = None) -> dict:
        """POST /contacts/search with one filter or a group; returns one page of a contact list.

        ``starting_after`` is the cursor of the previous page's ``pages.next``.
        """
        pagination: dict[str, Any] = {"per_page": per_page}
        if starting_after:
            pagination["starting_after"] = starting_after
        return self._request("POST", "/contacts/search", {"query": query, "pagination": pagination})

    def merge_contacts(self, from_id: str, into_id: str, *, skip_duplicate_validation: bool = False) -> dict:
        """POST /contacts/merge: merge lead ``from_id`` into user ``into_id``."""
        body: dict[str, Any] = {"from": from_id, "into": into_id}
        if skip_duplicate_validation:
            # 2.16 refuses to merge contacts that share no email or phone unless told.
            body["skip_duplicate_validation"] = True
        return self._request("POST", "/contacts/merge", body)

    def get_contact(self, contact_id: str) -> dict:
        """GET /contacts/{id}: 200, 404 (deleted or unknown) or 410 with the Link of a merged contact."""
        return self._request("GET", f"/contacts/{_segment(contact_id)}")

    def delete_contact(self, contact_id: str) -> dict:
        """DELETE /contacts/{id}."""
        return self._request("DELETE", f"/contacts/{_segment(contact_id)}")

    # -- events and companies ---------------------------------------------

    def create_event(self, body: dict) -> dict:
        """POST /events; Intercom answers 202 with no body, returned as {}."""
        return self._request("POST", "/events", body)

    def upsert_company(self, body: dict) -> dict:
        """POST /companies: create or update a company by its company_id."""
        return self._request("POST", "/companies", body)

    def attach_company(self, contact_id: str, company_intercom_id: str) -> dict:
        """POST /contacts/{id}/companies with the company's Intercom id."""
        return self._request("POST", f"/contacts/{_segment(contact_id)}/companies", {"id": company_intercom_id})

    def list_data_attributes(self, model: str) -> dict:
        """GET /data_attributes?model=contact|company: the workspace's attributes (not paged)."""
        return self._request("GET", f"/data_attributes?model={_segment(model)}")

    def create_data_attribute(self, name: str, model: str, data_type: str) -> dict:
        """POST /data_attributes: a new custom attribute (Intercom answers 200 with it)."""
        return self._request("POST", "/data_attributes", {"name": name, "model": model, "data_type": data_type})

    def me(self) -> dict:
        """GET /me: the admin and app behind the token (a cheap auth check)."""
        return self._request("GET", "/me")

    # -- plumbing -----------------------------------------------------------

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """Send one call through the budget; return its JSON or raise its error."""
        slot = self._budget.acquire()
        response = self._send(method, path, body)
        self._budget.observe(response, slot)
        error = classify(response)
        if error is not None:
            error = with_merge_target(error, response)
        log.debug("intercom %s %s -> %s", method, path, response.status_code)
        if error is not None:
            raise _scrubbed(error, self._token)
        return _json(response)

    def _send(self, method: str, path: str, body: dict | None) -> httpx.Response:
        """Count and send the request, turning transport failures into RetryableError."""
        self._counter.add()
        request = httpx.Request(
            method,
            self.base_url + path,
            headers=self._headers,
            content=None if body is None else _encode(body),
            extensions=self._extensions,
        )
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()  # the connection goes back to the pool
        except httpx.TransportError as exc:
            raise from_transport_error(exc) from exc
        response.request = request
        return response


class _CallCounter:
    """A count that the threads of a worker and the views of a client share."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        with self._lock:
            self.value += 1


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url``, as ``httpx.Client`` would choose it.

    ``HTTPS_PROXY`` (or ``HTTP_PROXY`` for http://, or ``ALL_PROXY``), unless
    ``NO_PROXY`` covers the host.
    """
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def _encode(body: dict) -> bytes:
    """A JSON body as httpx encodes one: compact UTF-8, no NaN (Intercom's parser refuses it)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _headers(token: str) -> dict[str, str]:
    """The headers every call carries."""
    return {
        "Authorization": f"Bearer {token}",
        "Intercom-Version": INTERCOM_VERSION,
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": "intercom-relay",
    }


def _segment(value: str) -> str:
    """An id made safe as one path segment."""
    return quote(str(value), safe="")


def _json(response: httpx.Response) -> dict:
    """The parsed body of a 2xx; {} when empty (POST /events answers 202 with none)."""
    if not response.content.strip():
        return {}
    try:
        parsed = response.json()
    except ValueError:
        # A 2xx that is not JSON comes from something in between (a proxy); retry.
        raise RetryableError(
            f"{response.request.method} {response.request.url.path} -> {response.status_code} with a body that is not JSON",
            response.status_code,
        ) from None
    return parsed if isinstance(parsed, dict) else {"data": parsed}


def _scrubbed(error: IntercomError, token: str) -> IntercomError:
    """The error with any echo of the token removed from its body and message."""
    if not token or token not in f"{error.args} {json.dumps(error.body, default=str)}":
        return error
    error.args = tuple(str(arg).replace(token, "[token]") for arg in error.args)
    error.body = json.loads(json.dumps(error.body, default=str).replace(json.dumps(token)[1:-1], "[token]"))
    return error
