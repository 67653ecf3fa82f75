"""Deletion requests (privacy requests; Segment's user deletion) and their audit records.

One hash per deletion, ``relay:deletion:<id>``, kept DELETION_AUDIT_DAYS from the request:
``state`` (pending, done, failed), ``requested_at``, ``done_at``, ``contacts_deleted`` and
``events_dropped``; while failed, ``failed_at``, ``reason`` (why its delivery became a dead
letter: Intercom refused it with a 4xx, or the retry window ran out) and ``dead_letter``
(the id ``intercom-relay dead-letters replay --id`` takes; a replay that succeeds makes it
done).  It holds no traits and none of the person's ids: the audit says that a deletion was
asked for and carried out, not whom it concerned.

A deletion by user id covers the anonymous ids the contact cache links to that user
(worker/store/contacts.py: the ``anon:`` keys pointing at the user's contact): their lanes
are marked too, so what they hold from before the request is dropped as well.  An anonymous
id the cache does not link (never identified with the user id, or its link expired with
the cache's 30 days) is not covered: name it with ``anonymousId``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, cast

import redis as redis_lib

from worker.store import keys, scripts
from worker.store.contacts import ContactCache

DEFAULT_AUDIT_DAYS = 365

#: What a failed deletion's record says about the failure; a replay that succeeds clears them.
FAILURE_FIELDS = ("failed_at", "reason", "dead_letter")

#: The action that carries a deletion out (worker/actions/delete_person.py); named here so
#: that the dead-letter store can tell its deliveries without importing the actions.
DELETE_ACTION = "delete_person"

#: How long a person's mark drops deliveries accepted before their deletion: beyond
#: PARK_HOLD_SECONDS (24 h), after which nothing parked before the deletion remains.
MARK_SECONDS = 3 * 24 * 3600


class Deletions:
    """Deletion records in Redis (a ``decode_responses=True`` client)."""

    def __init__(self, redis: redis_lib.Redis) -> None:
        self.redis = redis

    def request(self, deletion_id: str, *, audit_days: float = DEFAULT_AUDIT_DAYS) -> None:
        """A new request, pending until the person's lane reaches it."""
        pipe = self.redis.pipeline()
        pipe.hset(keys.deletion(deletion_id), mapping={"id": deletion_id, "state": "pending", "requested_at": repr(time.time())})
        pipe.hset(keys.deletion(deletion_id), "events_dropped", 0)
        pipe.expire(keys.deletion(deletion_id), int(audit_days * 86400))
        pipe.execute()

    def done(self, deletion_id: str, contacts_deleted: int) -> None:
        """Carried out (HSET keeps the key's expiry: the audit lives as long as the request said)."""
        key = keys.deletion(deletion_id)
        first = self.redis.hget(key, "state") != "done"
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "done", "done_at": repr(time.time())})
        pipe.hset(key, "contacts_deleted", contacts_deleted)
        pipe.hdel(key, *FAILURE_FIELDS)  # a replayed deletion that succeeded failed no more
        if first:  # a redelivered deletion is one deletion
            pipe.incr(keys.DELETIONS_DONE)
        pipe.execute()

    def failed(self, record: dict, reason: str, dead_letter: str) -> None:
        """The deletion's delivery (``record``) became a dead letter: the request failed, and why."""
        deletion_id = _deletion_id(record)
        key = keys.deletion(str(deletion_id))
        if not deletion_id or self.redis.hget(key, "state") not in ("pending", "failed"):
            return  # its audit record expired, or it was done meanwhile
        fields = {"state": "failed", "failed_at": repr(time.time()), "reason": reason, "dead_letter": dead_letter}
        self.redis.hset(key, mapping=cast(Any, fields))

    def replayed(self, record: dict) -> None:
        """The failed deletion's dead letter was replayed: it is pending again until its delivery runs."""
        deletion_id = _deletion_id(record)
        key = keys.deletion(str(deletion_id))
        if not deletion_id or self.redis.hget(key, "state") != "failed":
            return
        pipe = self.redis.pipeline()
        pipe.hset(key, "state", "pending")
        pipe.hdel(key, *FAILURE_FIELDS)
        pipe.execute()

    def mark(self, person: str, deletion_id: str, *, user_id: str | None = None, anonymous_id: str | None = None) -> list[str]:
        """Before the request's event is accepted: the person's deliveries accepted so far are to be dropped.

        The mark holds the acceptance sequence reached now (relay:seq): every event
        accepted before the request has a sequence at most that.  It stays for
        MARK_SECONDS, past the parking hold, so that a delivery parked or dead-lettered
        before the deletion and sent again later is dropped too.  The lanes of the
        anonymous id named, and of those the cache links to the user id, are marked
        alike; returns every lane marked.
        """
        boundary = int(self.redis.get(keys.SEQ) or 0)
        lanes = list(dict.fromkeys([person, *([anonymous_id] if anonymous_id else []), *self.linked_anonymous_ids(user_id)]))
        pipe = self.redis.pipeline()
        for lane in lanes:
            pipe.set(keys.deleting(lane), f"{boundary}:{deletion_id}", ex=MARK_SECONDS)
        pipe.execute()
        return lanes

    def linked_anonymous_ids(self, user_id: str | None) -> list[str]:
        """The anonymous ids the contact cache points at the user's contact (their lanes are the person's too)."""
        cached = ContactCache(self.redis).get(external_id=user_id) if user_id else None
        if cached is None:
            return []
        prefix = keys.contact("anon", "")
        linked = sorted(str(k) for k in self.redis.smembers(keys.contact_keys(cached.id)) if str(k).startswith(prefix))
        pipe = self.redis.pipeline(transaction=False)
        for key in linked:
            pipe.hget(key, "id")
        # A key re-pointed at another contact since is not this person's any more.
        return [key.removeprefix(prefix) for key, owner in zip(linked, pipe.execute()) if owner == cached.id]

    def dropping(self, person: str, seq: int) -> str | None:
        """The deletion that drops a delivery of this person with this acceptance sequence, if any."""
        mark = cast(str | None, self.redis.get(keys.deleting(person)))
        if not mark:
            return None
        boundary, _, deletion_id = mark.partition(":")
        return deletion_id if seq <= int(boundary) else None

    def dropped(self, deletion_id: str) -> None:
        """One delivery dropped unsent by the deletion (for its audit record)."""
        self.redis.hincrby(keys.deletion(deletion_id), "events_dropped", 1)

    def drop_parked(self, person: str, deletion_id: str) -> int:
        """Drop, unsent, the person's parked deliveries accepted before the deletion; how many.

        Parked, they would wait for an identify (then be dropped at the head anyway) or
        become dead letters, traits and all, once the parking hold ran out.
        """
        mark = cast(str | None, self.redis.get(keys.deleting(person)))
        boundary, _, marked_for = (mark or "").partition(":")
        if marked_for != deletion_id:
            return 0
        if not hasattr(self, "_drop_parked_script"):
            self._drop_parked_script = scripts.LANE_DROP_PARKED.register(self.redis)
        found = self._drop_parked_script(
            keys={
                "parked": keys.parked(person),
                "parked_index": keys.PARKED_INDEX,
                "deliveries": keys.DELIVERIES,
                "counters": keys.COUNTERS,
            },
            args={"person": person, "boundary": int(boundary)},
        )
        dropped = int(found)
        if dropped:
            self.redis.hincrby(keys.deletion(deletion_id), "events_dropped", dropped)
        return dropped

    def get(self, deletion_id: str) -> dict[str, str] | None:
        found = cast(dict[str, str], self.redis.hgetall(keys.deletion(deletion_id)))
        return found or None

    def count_done(self) -> int:
        return int(self.redis.get(keys.DELETIONS_DONE) or 0)


def _deletion_id(record: dict) -> str | None:
    """The deletion a delete_person delivery's record carries out."""
    return ((record.get("event") or {}).get("properties") or {}).get("deletion_id")


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
