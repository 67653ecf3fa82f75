"""Messages no worker can read, kept as dead letters with their raw body instead of dropped.

Celery acknowledges (drops) a message whose body it cannot decode and rejects
(drops) one naming a task it does not know or malformed as a task; the door
answered 200 for what such a message carried.  worker/consumer.py keeps each
one here first: a dead letter with no delivery, whose ``message`` holds what
the worker received, so that an operator can see what came and from where:

* ``body``: the raw body, at most ``MAX_BODY_BYTES`` (``size`` is the whole
  body's, ``truncated`` says whether it was cut), as text when it is UTF-8,
  else base64 (``encoding``);
* ``headers`` (those whose name suggests a secret are left out, each value at
  most ``MAX_HEADER_CHARS``), ``content_type``, ``content_encoding``, and the
  queue it came from;
* ``detail``: what the worker could not read in it.

A replay cannot put such a letter back in a lane (it carries no delivery, and
the same bytes would fail the same way), so ``dead-letters replay`` leaves it
and says so; the operator fixes the producer and purges it.

The letter's id is ``message:<kombu delivery tag>``, the same each time the
message comes back: when a worker dies between keeping the letter and
acknowledging the message, the message is kept once, and the in-flight count
of its people released once.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections import Counter
from typing import Any, Mapping, cast

import redis as redis_lib

from worker.store import keys, scripts
from worker.store.lanes import Lanes

#: The most of a body a dead letter keeps.
MAX_BODY_BYTES = 256 * 1024

#: The most of one header's value a dead letter keeps.
MAX_HEADER_CHARS = 2048

#: The most of the error a dead letter keeps.
MAX_DETAIL_CHARS = 1000

#: Header names that may carry a credential: such headers are never kept.
SECRET_HEADER = re.compile(r"auth|token|secret|passw|api.?key|write.?key|cookie|credential|signature", re.IGNORECASE)

#: Why a message could not be read; a letter's reason starts with one of these.
UNDECODABLE = "undecodable_message"  # the body is not what its content type says (or too deeply nested)
UNKNOWN_MESSAGE = "unknown_message"  # not a Celery task message: no task named anywhere
UNKNOWN_TASK = "unknown_task"  # names a task no worker registers
INVALID_TASK = "invalid_task"  # a task message Celery refuses (content type not accepted, bad fields)


def message_letter(
    reason: str,
    *,
    body: bytes | str | None,
    headers: Mapping[str, Any] | None,
    content_type: str | None,
    content_encoding: str | None,
    queue: str | None,
    detail: str,
    letter_id: str | None = None,
) -> dict:
    """The JSON body of an unreadable message's dead letter."""
    return {
        "id": letter_id or f"message:{uuid.uuid4()}",
        "person": "",
        "reason": reason,
        "response": None,
        "attempts": 0,
        "dead_at": int(time.time() * 1000),
        "delivery": None,
        "message": {
            "queue": queue,
            "content_type": content_type,
            "content_encoding": content_encoding,
            "headers": kept_headers(headers),
            "detail": detail[:MAX_DETAIL_CHARS],
            **kept_body(body),
        },
    }


def kept_body(body: bytes | str | None) -> dict:
    """The body as a letter keeps it: bounded, as text when it is UTF-8, else base64."""
    if body is None:
        return {"body": None, "size": 0, "truncated": False, "encoding": None}
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body)
    cut = raw[:MAX_BODY_BYTES]
    try:
        text, encoding = _utf8(cut, whole=len(cut) == len(raw)), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(cut).decode("ascii"), "base64"
    return {"body": text, "size": len(raw), "truncated": len(cut) < len(raw), "encoding": encoding}


def kept_headers(headers: Mapping[str, Any] | None) -> dict:
    """The headers less any whose name suggests a secret, each value bounded."""
    if not isinstance(headers, Mapping):
        return {}
    kept = {}
    for name, value in headers.items():
        if SECRET_HEADER.search(str(name)):
            continue
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = _json_text(value)
        if isinstance(value, str) and len(value) > MAX_HEADER_CHARS:
            value = value[:MAX_HEADER_CHARS] + "…"
        kept[str(name)] = value
    return kept


class UnreadableMessages:
    """Keep unreadable messages as dead letters, releasing the in-flight count of their people."""

    def __init__(self, redis: redis_lib.Redis, lanes: Lanes) -> None:
        self.redis = redis
        self.lanes = lanes
        self._keep = scripts.MESSAGE_DEAD_LETTER.register(redis, IDENTIFY_CODE=lanes.identify_code)

    def keep(self, letter: dict, people: Counter[str] | None = None) -> list[tuple[str, str]] | None:
        """Store ``letter`` once; ``people``: the events per person it carried, no longer on their way.

        Returns the (person, head) of the lanes this woke, or None when the letter was kept already.
        """
        flat = self._keep(
            keys={
                "dead": keys.DEAD,
                "dead_index": keys.DEAD_INDEX,
                "counters": keys.COUNTERS,
                "inflight": keys.INFLIGHT,
                "leases": keys.LEASES,
                "lane_state": keys.LANE_STATE,
            },
            args={
                "letter": letter["id"],
                "letter_json": json.dumps(letter, separators=(",", ":")),
                "now": letter["dead_at"],
                "dispatch_ms": self.lanes.dispatch_ms,
                "lane_prefix": keys.lane(""),
                "people": [x for person, n in (people or Counter()).items() for x in (person, n)],
            },
        )
        if flat is None:
            return None
        texts = [x.decode() if isinstance(x, bytes) else str(x) for x in cast(list, flat)]
        return list(zip(texts[0::2], texts[1::2]))


def _utf8(data: bytes, *, whole: bool) -> str:
    """``data`` as UTF-8 text; a cut body may end inside a character, whose first bytes are left out."""
    if whole:
        return data.decode("utf-8")
    for drop in range(4):
        try:
            return data[: len(data) - drop].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8")  # not UTF-8 at all: the caller keeps it as base64


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, default=repr)
    except (ValueError, RecursionError):
        return repr(value)[:MAX_HEADER_CHARS]
