"""The contact-id cache: which Intercom contact a person's ids point at.

Filled by identify responses and searches, read by the actions (an update
costs one PUT instead of a search and a write) and by the lane scheduler (a
track for a person with no cached contact waits for that person's identify).
Dropped on 404/410; moved to the user when a lead is merged into it.  A
cache miss is never wrong, only slower: an action that misses creates first
and learns the id from Intercom's 409.

Keys, all under ``relay:contact:`` (built in keys.py)::

    ext:<external_id>, email:<email, lower>, anon:<anonymous_id>   hash {id, role}
    (each hash may also hold "sent": what was last sent to the contact, see
    worker/actions/unchanged.py)
    keys:<contact id>          set of the keys above that point at it (for forget)
    companies:<contact id>     set of Intercom company ids it is attached to
    lead-note:<anonymous_id>   hash {began, lead}: a lead's creation in progress (when it
                               began, and the lead once Intercom made it; cleared once
                               the lead is cached)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis as redis_lib

from worker.store import keys as rkeys  # "keys" names lists of cache keys below
from worker.store import scripts

#: Contacts live for years, so a long TTL saves calls; but a contact deleted
#: or merged away in Intercom's UI leaves no trace here, and must not be
#: trusted forever.  A month bounds how long a stale id costs an extra call.
DEFAULT_TTL_SECONDS = 30 * 24 * 3600

#: How long the note of a lead's creation in progress is kept: far beyond any
#: redelivery of the delivery that made it.
LEAD_CREATE_NOTE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CachedContact:
    """An Intercom contact id and its role ("user" or "lead")."""

    id: str
    role: str
    #: What the relay last sent to it, where the key found has a record (worker/actions/unchanged.py);
    #: not part of which contact this is.
    sent: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LeadNote:
    """An earlier attempt to create a lead for an anonymous id, which never finished."""

    began: float
    #: The lead it made, if Intercom's answer came back before the attempt stopped.
    lead_id: str | None = None
    #: When it asked Intercom to make the lead; None: it stopped before (while it searched
    #: for an existing lead, say), so no lead of its can exist.
    sent: float | None = None

    @property
    def may_have_made_a_lead(self) -> bool:
        return self.lead_id is not None or self.sent is not None


class ContactCache:
    """Person ids -> Intercom contact, in Redis (a ``decode_responses=True`` client)."""

    def __init__(self, redis: redis_lib.Redis, *, ttl: int = DEFAULT_TTL_SECONDS) -> None:
        self.redis = redis
        self.ttl = ttl

    def get(self, *, external_id: str | None = None, email: str | None = None, anonymous_id: str | None = None) -> CachedContact | None:
        """The contact of the first id that is cached, in the order external_id, email, anonymous_id."""
        keys = _keys(external_id=external_id, email=email, anonymous_id=anonymous_id)
        if not keys:
            return None
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        for found in pipe.execute():
            if found.get("id"):
                return CachedContact(found["id"], found.get("role", "user"), found.get("sent"))
        return None

    def remember(
        self,
        contact_id: str,
        role: str,
        *,
        external_id: str | None = None,
        email: str | None = None,
        anonymous_id: str | None = None,
        sent: str | None = None,
    ) -> None:
        """Point the given ids at the contact (and refresh their TTL); ``sent``: what was just written to it."""
        if email and role == "lead" and self._user_owns(email, contact_id):
            email = None  # a user and a lead may share an email: the user wins lookups
        keys = _keys(external_id=external_id, email=email, anonymous_id=anonymous_id)
        if keys:
            pipe = self.redis.pipeline()
            self._point(pipe, keys, contact_id, role, sent)
            pipe.execute()

    def forget(self, contact_id: str) -> None:
        """Drop every key that still points at the contact, and its memberships."""
        keys = self._owned_keys(contact_id)
        self.redis.delete(rkeys.contact_keys(contact_id), rkeys.contact_companies(contact_id), *keys)

    def move(self, old_id: str, new_id: str, role: str) -> None:
        """Re-point every key and membership of a contact merged away at the one it became.

        What was last sent to the surviving contact is forgotten too: the merge
        may have changed it, and the next identify must write for certain.
        """
        keys = self._owned_keys(old_id)
        survivors = self._owned_keys(new_id)
        companies = sorted(self.redis.smembers(rkeys.contact_companies(old_id)))
        pipe = self.redis.pipeline()
        pipe.delete(rkeys.contact_keys(old_id), rkeys.contact_companies(old_id))
        for key in survivors:
            pipe.hdel(key, "sent")
        if keys:
            self._point(pipe, keys, new_id, role)
        if companies:
            pipe.sadd(rkeys.contact_companies(new_id), *companies)
            pipe.expire(rkeys.contact_companies(new_id), self.ttl)
        pipe.execute()

    def became_user(self, contact_id: str) -> None:
        """A lead was made a user in place: its keys now say so, and hold no record of what was sent.

        The record of the lead's writes says ``role: lead``; kept, it would let a later
        identify be skipped against a contact that has changed under it.
        """
        keys = self._owned_keys(contact_id)
        if keys:
            pipe = self.redis.pipeline()
            for key in keys:
                pipe.hset(key, "role", "user")
                pipe.hdel(key, "sent")
            pipe.execute()

    def link_anonymous(self, anonymous_id: str, contact_id: str, role: str, *, sent: str | None = None) -> CachedContact | None:
        """Point an anonymous id at a contact atomically; returns who held it before.

        A converted lead's events run in two lanes (its anonymousId's and its
        userId's), so its lead identify and its user identify may run at the
        same time.  A lead never takes an anonymous id from a user; a user
        always takes it.  Whoever comes second sees the other in the return
        value and merges the lead into the user, so the person ends as one
        contact whatever the interleaving.
        """
        key = rkeys.contact("anon", anonymous_id)
        before = self._link(
            keys={"anonymous": key, "contact_keys": rkeys.contact_keys(contact_id)},
            args={"contact": contact_id, "role": role, "ttl": self.ttl, "sent": sent or ""},
        )
        if not before:
            return None
        previous = CachedContact(before[0], before[1])
        return None if previous.id == contact_id else previous

    @property
    def _link(
        self,
    ) -> scripts.Registered[
        scripts.ContactLinkAnonymousKeys, scripts.ContactLinkAnonymousArgs
    ]:  # registered lazily: the cache is also built on clients that never link
        if not hasattr(self, "_link_script"):
            self._link_script = scripts.CONTACT_LINK_ANONYMOUS.register(self.redis)
        return self._link_script

    def begin_lead_create(self, anonymous_id: str, now: float) -> LeadNote | None:
        """Note that a lead is about to be created for the anonymous id.

        Returns None, or the note of an earlier attempt that never got as far
        as ``end_lead_create``: its worker died, its call timed out after
        Intercom may have made the lead, or a later call (the merge into the
        user the person became) failed.  A lead has no unique key for Intercom
        to answer 409 on, so only this note keeps a redelivery from making it
        twice, or from leaving it unmerged.
        """
        key = rkeys.lead_note(anonymous_id)
        pipe = self.redis.pipeline()
        pipe.hsetnx(key, "began", repr(now))
        pipe.hgetall(key)
        pipe.expire(key, LEAD_CREATE_NOTE_SECONDS)
        fresh, note, _ = pipe.execute()
        if fresh:
            return None
        return _lead_note(note, now)

    def lead_note(self, anonymous_id: str) -> LeadNote | None:
        """The note of an unfinished lead creation for the anonymous id, if there is one."""
        note = self.redis.hgetall(rkeys.lead_note(anonymous_id))
        return _lead_note(note, 0.0) if note.get("began") else None

    def lead_create_sent(self, anonymous_id: str, now: float) -> None:
        """The attempt is asking Intercom to make the lead: from now on a redelivery must look for it."""
        self.redis.hset(rkeys.lead_note(anonymous_id), "sent", repr(now))

    def lead_created(self, anonymous_id: str, lead_id: str) -> None:
        """Intercom made the lead: the note names it until the lead is cached."""
        self.redis.hset(rkeys.lead_note(anonymous_id), "lead", lead_id)

    def end_lead_create(self, anonymous_id: str) -> None:
        """The lead is cached now (or Intercom refused to make it): the note has done its job."""
        self.redis.delete(rkeys.lead_note(anonymous_id))

    def leads_of(self, *, anonymous_id: str | None, email: str | None) -> list[str]:
        """The person's leads this cache knows of, without repeats (one round trip).

        Those cached under the anonymous id or the email, and the lead an
        unfinished creation for the anonymous id made (not cached yet).
        """
        if not anonymous_id and not email:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in _keys(external_id=None, email=email, anonymous_id=anonymous_id):
            pipe.hgetall(key)
        if anonymous_id:
            pipe.hget(rkeys.lead_note(anonymous_id), "lead")
        leads = []
        for found in pipe.execute():
            if isinstance(found, dict):
                found = found.get("id") if found.get("role") == "lead" else None
            if found and found not in leads:
                leads.append(found)
        return leads

    def is_member(self, contact_id: str, company_intercom_id: str) -> bool:
        """Whether the contact is known to be attached to the company."""
        return bool(self.redis.sismember(rkeys.contact_companies(contact_id), company_intercom_id))

    def remember_membership(self, contact_id: str, company_intercom_id: str) -> None:
        """Record that the contact is attached to the company."""
        key = rkeys.contact_companies(contact_id)
        pipe = self.redis.pipeline()
        pipe.sadd(key, company_intercom_id)
        pipe.expire(key, self.ttl)
        pipe.execute()

    def _owned_keys(self, contact_id: str) -> list[str]:
        """The keys of the reverse index that still point at the contact."""
        keys = sorted(str(key) for key in self.redis.smembers(rkeys.contact_keys(contact_id)))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "id")
        # A key re-pointed at another contact since (a lead's anonymous id now
        # on the user it was merged into) is not this contact's any more.
        return [key for key, owner in zip(keys, pipe.execute()) if owner == contact_id]

    def _point(self, pipe: redis_lib.client.Pipeline, keys: list[str], contact_id: str, role: str, sent: str | None = None) -> None:
        """Queue: point the keys at the contact (with what was last sent to it), and list them in its reverse index."""
        for key in keys:
            pipe.hset(key, mapping={"id": contact_id, "role": role, **({"sent": sent} if sent else {})})
            pipe.expire(key, self.ttl)
        pipe.sadd(rkeys.contact_keys(contact_id), *keys)
        pipe.expire(rkeys.contact_keys(contact_id), self.ttl)

    def _user_owns(self, email: str, contact_id: str) -> bool:
        """Whether the email already points at a different contact that is a user."""
        current = self.get(email=email)
        return current is not None and current.role == "user" and current.id != contact_id


def _keys(*, external_id: str | None, email: str | None, anonymous_id: str | None) -> list[str]:
    """The cache keys of the given ids, in lookup order; blank ids have none."""
    values = (external_id, email.strip().lower() if email else None, anonymous_id)
    return [rkeys.contact(kind, value) for kind, value in zip(rkeys.CONTACT_ID_KINDS, values) if value]


def _id_or_none(value: object) -> str | None:
    """A stored contact id, or None for a missing or empty one."""
    return str(value) if value else None


def _lead_note(note: dict, now: float) -> LeadNote:
    sent = note.get("sent")
    return LeadNote(float(note.get("began") or now), _id_or_none(note.get("lead")), float(sent) if sent else None)
