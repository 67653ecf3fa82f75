"""Who may open the console, and proof that a form was sent from it.

* **Basic auth** against ADMIN_KEYS (``user:password`` pairs, worker/settings.py).
  Every pair is compared, in constant time, whatever matched first.  A write key
  never opens the console: a Segment client sends its write key as the *user*
  with an empty password, and no admin password may equal a write key.
* **CSRF**: a browser sends Basic credentials with any request to the site,
  including a form another site makes it post.  Every POST that changes
  something carries a token only the console's own pages hold (an HMAC of the
  admin's password, the user and the time it was issued: no server state, so
  any web process answers), and a POST whose ``Origin`` or ``Sec-Fetch-Site``
  names another site is refused before the token is even read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from urllib.parse import urlsplit

from starlette.datastructures import Headers

#: How long a page's form token is accepted: a working day.
CSRF_TOKEN_SECONDS = 12 * 3600

#: What the browser's sign-in prompt names.
REALM = 'Basic realm="Intercom Relay console", charset="UTF-8"'


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(user, password) of an HTTP Basic ``Authorization`` header, or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class Admins:
    """The ADMIN_KEYS pairs: who is signed in, and their form tokens."""

    def __init__(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self._pairs = [(user.encode(), password.encode()) for user, password in pairs]

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def user_of(self, authorization: str | None) -> str | None:
        """The admin an ``Authorization`` header signs in, or None."""
        given = basic_credentials(authorization)
        if given is None:
            return None
        user, password = given[0].encode(), given[1].encode()
        found = None
        for known_user, known_password in self._pairs:  # no early exit: the time says nothing
            if hmac.compare_digest(user, known_user) & hmac.compare_digest(password, known_password):
                found = known_user.decode()
        return found

    def csrf_token(self, user: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(user, issued)}"

    def csrf_valid(self, user: str, token: str | None, *, now: float | None = None) -> bool:
        issued_text, _, mac = (token or "").partition(".")
        if not issued_text.isdigit():
            return False
        age = (time.time() if now is None else now) - int(issued_text)
        return 0 <= age <= CSRF_TOKEN_SECONDS and hmac.compare_digest(mac, self._mac(user, int(issued_text)))

    def _mac(self, user: str, issued: int) -> str:
        # Keyed by the user's own password: a token is worthless to anyone who lacks it,
        # and every web process computes the same one.
        secret = next((p for u, p in self._pairs if u == user.encode()), b"")
        key = hashlib.sha256(b"intercom-relay console csrf\0" + secret).digest()
        return hmac.new(key, f"{user}\0{issued}".encode(), hashlib.sha256).hexdigest()


def cross_site(headers: Headers) -> str | None:
    """Why a state-changing request looks sent by another site, or None if it does not."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return f"the browser says this request came from a {fetch_site} page"
    origin = headers.get("origin")
    # "null" is a hidden origin (a privacy setting, a sandboxed frame): the form token decides.
    # Compared by host only: behind a proxy that ends TLS the scheme may differ.
    if origin and origin != "null" and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
        return "the request's Origin is not this console"
    return None
