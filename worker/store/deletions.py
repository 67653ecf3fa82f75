"""Deletion requests (privacy requests; Segment's user deletion) and their audit records.

One hash per deletion, ``relay:deletion:<id>``, kept DELETION_AUDIT_DAYS from the request:
``state`` (pending, done), ``requested_at``, ``done_at``, ``contacts_deleted`` and
``events_dropped``.  It holds no traits and none of the person's ids: the audit says that a
deletion was asked for and carried out, not whom it concerned.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import cast

import redis as redis_lib

from worker.store import keys

DEFAULT_AUDIT_DAYS = 365


class Deletions:
    """Deletion records in Redis (a ``decode_responses=True`` client)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def request(self, deletion_id: str, *, audit_days: float = DEFAULT_AUDIT_DAYS) -> None:
        """A new request, pending until the person's lane reaches it."""
        pipe = self.redis.pipeline()
        pipe.hset(keys.deletion(deletion_id), mapping={"id": deletion_id, "state": "pending", "requested_at": repr(time.time())})
        pipe.expire(keys.deletion(deletion_id), int(audit_days * 86400))
        pipe.execute()

    def done(self, deletion_id: str, contacts_deleted: int, events_dropped: int = 0) -> None:
        """Carried out (HSET keeps the key's expiry: the audit lives as long as the request said)."""
        key = keys.deletion(deletion_id)
        first = self.redis.hget(key, "state") != "done"
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "done", "done_at": repr(time.time())})
        pipe.hset(key, mapping={"contacts_deleted": contacts_deleted, "events_dropped": events_dropped})
        if first:  # a redelivered deletion is one deletion
            pipe.incr(keys.DELETIONS_DONE)
        pipe.execute()

    def get(self, deletion_id: str) -> dict[str, str] | None:
        found = cast(dict[str, str], self.redis.hgetall(keys.deletion(deletion_id)))
        return found or None

    def count_done(self) -> int:
        return int(self.redis.get(keys.DELETIONS_DONE) or 0)


def deletion_event(deletion_id: str, user_id: str | None, email: str | None, anonymous_id: str | None) -> dict:
    """The "delete" event the Delete Person mapping takes (worker/actions/delete_person.py).

    It runs in the person's lane (userId's, else anonymousId's; an email-only deletion in a
    lane of its own).  The ingestion door never accepts the type: only the CLI and the
    admin route (producers/deletions.py) make one.
    """
    person = {"userId": user_id} if user_id else {"anonymousId": anonymous_id or f"deletion:{deletion_id}"}
    ids = {"user_id": user_id, "email": email, "anonymous_id": anonymous_id}
    return {
        "type": "delete",
        "messageId": f"deletion-{deletion_id}",
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        **person,
        "properties": {"deletion_id": deletion_id, **{k: v for k, v in ids.items() if v}},
    }
