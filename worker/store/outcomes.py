"""Samples of recent delivery outcomes, for an operator to look at (the console, ``status``).

Counters say how many; these say which and why.  Each outcome a delivery
run reaches (delivered, retrying, parked, dead-lettered) is written as one
small JSON entry to two capped lists:

* the person's own (``keys.outcomes(person)``): the last PER_PERSON entries,
  kept OUTCOME_TTL_SECONDS after the person's last outcome;
* the fleet's (``keys.RECENT_OUTCOMES``): the last RECENT entries.

An entry that is not a plain delivery (a retry, a park, a dead letter) also
carries the last exchange with Intercom: the request's method, path and body
and Intercom's status and body, each cut to EXCERPT_BYTES.  Never the access
token: it travels in a header, and headers are not kept.  Bounded, so the
cost is known (docs/monitoring.md): about 200 bytes per plain entry and up to
2.3 KB with an exchange.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

import httpx
import redis as redis_lib

from worker.store import keys

#: Outcomes kept per person, and for how long after the person's last one.
PER_PERSON = 5
OUTCOME_TTL_SECONDS = 24 * 3600

#: Outcomes kept for the whole fleet.
RECENT = 500

#: The most of a request or response body kept in an entry.
EXCERPT_BYTES = 1024


def exchange_of(response: httpx.Response) -> dict[str, Any]:
    """The request and the answer of one call, cut short, without headers (the token is in one)."""
    request = response.request
    return {
        "method": request.method,
        "path": request.url.path,
        "request": _excerpt(request.content),
        "status": response.status_code,
        "response": _excerpt(response.content),
    }


class Outcomes:
    """Write and read the outcome samples."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def record(self, person: str, entry: dict[str, Any]) -> None:
        """Keep one outcome (a JSON-able dict; ``at`` is added) in the person's and the fleet's lists."""
        text = json.dumps({"at": round(time.time(), 3), "person": person, **entry}, separators=(",", ":"), default=str)
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.outcomes(person), text)
        pipe.ltrim(keys.outcomes(person), 0, PER_PERSON - 1)
        pipe.expire(keys.outcomes(person), OUTCOME_TTL_SECONDS)
        pipe.lpush(keys.RECENT_OUTCOMES, text)
        pipe.ltrim(keys.RECENT_OUTCOMES, 0, RECENT - 1)
        pipe.execute()

    def of_person(self, person: str) -> list[dict[str, Any]]:
        """The person's last outcomes, newest first."""
        return _entries(self.redis.lrange(keys.outcomes(person), 0, -1))

    def recent(self, limit: int = RECENT) -> list[dict[str, Any]]:
        """The fleet's last outcomes, newest first."""
        return _entries(self.redis.lrange(keys.RECENT_OUTCOMES, 0, limit - 1))


def _entries(raw: Any) -> list[dict[str, Any]]:
    return [json.loads(item) for item in cast(list[str], raw)]


def _excerpt(content: bytes) -> str:
    text = content[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    return text + ("…" if len(content) > EXCERPT_BYTES else "")
