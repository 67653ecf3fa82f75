"""CORS for the ingestion routes: which web pages may send events from the browser.

analytics.js posts from the page's origin to the relay's, with a ``text/plain``
body, an ``Authorization`` header and, on retries, ``X-Retry-Count``: the
browser first asks with a preflight (``OPTIONS``), answered here for the
origins in ``CORS_ORIGINS`` (or any, with ``*``).  With no origin configured
(the default) no CORS header is ever sent.

The browser only stops a page from *reading* an answer its origin may not
have; a simple request (an older analytics.js posts ``text/plain`` with the
write key in the body, without a preflight) still reaches the server.  So a
request whose ``Origin`` is not allowed is refused here too, before its body
is read: nothing it carries is accepted.  A request without ``Origin`` (a
server-side library) is not a browser's and passes.

Credentials (cookies) are never allowed: no ``Access-Control-Allow-Credentials``.
The write key travels in the body or the ``Authorization`` header, which needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

#: What analytics.js and analytics-node send besides the CORS-safelisted headers.
ALLOWED_HEADERS = ("Content-Type", "Authorization", "Content-Encoding", "X-Retry-Count")

#: Every ingestion route takes POST only.
ALLOWED_METHOD = "POST"

#: How long a browser may reuse a preflight's answer; Chromium caps it at 2 hours.
MAX_AGE_SECONDS = 7200

#: Readable by the page: when to send again after a 503 (or a 429 from a proxy).
EXPOSED_HEADERS = "Retry-After"

_ALLOWED_LOWER = frozenset(h.lower() for h in ALLOWED_HEADERS)


@dataclass(frozen=True)
class Cors:
    """The origins allowed to send; ``origins`` as browsers write them (``scheme://host[:port]``)."""

    origins: frozenset[str]
    any_origin: bool

    @classmethod
    def from_setting(cls, origins: Iterable[str]) -> Cors:
        """From CORS_ORIGINS as Settings parsed it; ``*`` among them allows every origin."""
        listed = frozenset(o.lower() for o in origins)
        return cls(origins=listed - {"*"}, any_origin="*" in listed)

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin.lower() in self.origins

    def refusal(self, origin: str | None) -> str | None:
        """Why a request with this ``Origin`` is refused, or None when it may go on."""
        if origin is None or self.allows(origin):
            return None
        shown = origin[:100]
        if not self.origins and not self.any_origin:
            return f"Origin {shown!r}: requests from web pages are not enabled; list the page's origin in CORS_ORIGINS"
        return f"Origin {shown!r} is not in CORS_ORIGINS"

    def preflight_refusal(self, method: str, requested_headers: str | None) -> str | None:
        """Why a preflight from an allowed origin is refused, or None to answer it."""
        if method != ALLOWED_METHOD:
            return f"Access-Control-Request-Method {method[:20]!r}: only POST is allowed"
        unknown = [h for h in _header_names(requested_headers) if h not in _ALLOWED_LOWER]
        if unknown:
            allowed = ", ".join(ALLOWED_HEADERS)
            return f"Access-Control-Request-Headers: {', '.join(unknown)[:200]} not allowed; allowed are {allowed}"
        return None

    def preflight_headers(self, origin: str) -> dict[str, str]:
        """The answer to an allowed preflight."""
        return {
            **self.response_headers(origin),
            "Access-Control-Allow-Methods": ALLOWED_METHOD,
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        }

    def response_headers(self, origin: str | None) -> dict[str, str]:
        """The CORS headers of any answer (success or error) to an allowed origin; none without one."""
        if origin is None or not self.allows(origin):
            return {}
        if self.any_origin:
            return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSED_HEADERS}
        # The answer names the origin it was asked from: caches must keep one per origin.
        return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED_HEADERS, "Vary": "Origin"}


def _header_names(value: str | None) -> list[str]:
    return [name.strip().lower() for name in (value or "").split(",") if name.strip()]
