"""Every Redis key the relay uses, in one place.

All keys start with ``relay:`` so that an operator can find (and a test can
clean up) exactly what the relay wrote, and nothing else.  The Lua scripts in
``lua/`` receive their keys from the modules that call them, which build them
here; the two prefixes passed as ARGV (``lane("")``, ``parked("")``) are the
only keys a script completes itself.
"""

PREFIX = "relay:"

# -- the door and the lanes -------------------------------------------------------

#: Global acceptance sequence; the door stamps each event with the next value,
#: and a person's lane is ordered by it.
SEQ = PREFIX + "seq"

#: Hash person -> number of events accepted at the door and not yet ingested
#: into the person's lane.  While it is above zero the lane does not run, so an
#: identify still on its way from the door is never overtaken.
INFLIGHT = PREFIX + "inflight"

#: Hash person -> "<inflight count>|<ms first seen at that count>": how long each count has
#: stood still, so that the sweep recounts only those stuck for a while (inflight.py).
INFLIGHT_SEEN = PREFIX + "inflight:seen"

#: Set (NX, with an expiry) by the one sweep that checks the inflight counts in a window.
INFLIGHT_CHECK = PREFIX + "inflight:check"

#: Hash of pipeline counters (accepted, delivered, ...): see counters.py.
COUNTERS = PREFIX + "counters"

#: Hash delivery id -> JSON record of a delivery waiting in a lane or parked.
DELIVERIES = PREFIX + "deliveries"

#: Sorted set person -> lease deadline (ms); a person is here while its lane
#: is dispatched, running, or sleeping until a retry.
LEASES = PREFIX + "leases"

#: Hash person -> lane state: "queued", "sleep" or the running task's token.
LANE_STATE = PREFIX + "lane_state"

#: Hash person -> number of identify deliveries waiting in the lane.
LANE_IDENTIFIES = PREFIX + "lane_identifies"

#: Hash delivery id -> "attempts|first failure ms" while a delivery is retrying.
ATTEMPTS = PREFIX + "attempts"

#: Sorted set person -> earliest hold deadline of its parked deliveries (ms).
PARKED_INDEX = PREFIX + "parked_index"

#: List of the fleet's last delivery outcomes, newest first (outcomes.py).
RECENT_OUTCOMES = PREFIX + "outcomes"

#: Hash delivery id -> JSON dead letter; sorted set id -> time (ms).
DEAD = PREFIX + "dead"
DEAD_INDEX = PREFIX + "dead_index"

#: List of counter snapshots, one per 10-s window, newest first (history.py).
HISTORY = PREFIX + "history"

#: Sorted set worker process id -> when it last beat (ms); the sweep frees what a silent one held (liveness.py).
WORKERS = PREFIX + "workers"


def held(worker: str) -> str:
    """Set of the delivery tags of the queue messages a worker process took and has not acknowledged."""
    return f"{PREFIX}worker:{worker}:held"


def lane(person: str) -> str:
    """The sorted set of a person's waiting deliveries, ordered by acceptance."""
    return f"{PREFIX}lane:{person}"


def parked(person: str) -> str:
    """The list of a person's parked deliveries, in the order they were parked."""
    return f"{PREFIX}parked:{person}"


def outcomes(person: str) -> str:
    """List of a person's last delivery outcomes, newest first (outcomes.py)."""
    return f"{PREFIX}outcomes:{person}"


def history_taken(window: int) -> str:
    """Set (NX, with an expiry) by the one sweep that snapshots the counters in a 10-s window."""
    return f"{HISTORY}:taken:{window}"


def seen(message_id: str) -> str:
    """Remembers a messageId (and the sequence it was accepted with) for de-duplication."""
    return f"{PREFIX}seen:{message_id}"


# -- per access token (named by Settings.token_id, a digest, never the token) -------


def budget(token_id: str) -> str:
    """Hash {tat, limit}: the fleet's rate schedule for one access token (budget.py)."""
    return f"{PREFIX}budget:{token_id}"


def paused(token_id: str) -> str:
    """JSON {reason, since} while delivery is paused because Intercom refuses the token."""
    return f"{PREFIX}paused:{token_id}"


def pause_probe(token_id: str) -> str:
    """Set for one probe interval: the fleet probes a paused token at most that often."""
    return paused(token_id) + ":probe"


# -- the contact-id cache (contacts.py) ---------------------------------------------

CONTACT_PREFIX = PREFIX + "contact:"

#: The person ids the cache knows a contact by, in lookup order.
CONTACT_ID_KINDS = ("ext", "email", "anon")


def contact(kind: str, value: str) -> str:
    """Hash {id, role}: the contact an external_id ("ext"), email or anonymous id points at."""
    return f"{CONTACT_PREFIX}{kind}:{value}"


def contact_keys(contact_id: str) -> str:
    """The set of cache keys that point at a contact (so that forgetting it finds them)."""
    return f"{CONTACT_PREFIX}keys:{contact_id}"


def contact_companies(contact_id: str) -> str:
    """The set of Intercom company ids a contact is known to be attached to."""
    return f"{CONTACT_PREFIX}companies:{contact_id}"


def company(company_id: str) -> str:
    """Hash {id, sent}: a company's Intercom id and what was last sent for it (companies.py)."""
    return f"{PREFIX}company:{company_id}"


def lead_note(anonymous_id: str) -> str:
    """Hash {began, lead}: a lead's creation in progress for an anonymous id."""
    return f"{CONTACT_PREFIX}lead-note:{anonymous_id}"


#: Hash "action.field" -> how many times a mapped value that could not be converted was
#: dropped from its event (dropped.py; STRICT_FIELDS=false).
DROPPED_FIELDS = PREFIX + "dropped_fields"


def attributes_known(model: str) -> str:
    """Hash name -> data_type: the workspace's custom attributes of a model ("contact", "company"),
    as GET /data_attributes last listed them, plus those created since (attributes.py)."""
    return f"{PREFIX}attributes:known:{model}"


#: Hash "model:name" -> how many values were held because the attribute is unknown (attributes.py).
ATTRIBUTES_UNKNOWN = PREFIX + "attributes:unknown"

#: Hash "model:name" -> JSON of the latest value held for it, an example for `attributes list`.
ATTRIBUTES_EXAMPLE = PREFIX + "attributes:example"

#: Counter of attributes the relay created itself (UNKNOWN_ATTRIBUTES=create).
ATTRIBUTES_CREATED = PREFIX + "attributes:created"


def attributes_held(model: str, target: str) -> str:
    """Hash name -> JSON value: the attribute values held for one contact id or company_id, the
    content of its ``unknown_attribute`` dead letter (attributes.py)."""
    return f"{PREFIX}attributes:held-for:{model}:{target}"


#: Set of the ids of the ``unknown_attribute`` dead letters ("attr:<model>:<target>") kept now.
ATTRIBUTES_LETTERS = PREFIX + "attributes:letters"


def deletion(deletion_id: str) -> str:
    """Hash: one deletion request and, once done, its audit record (deletions.py); no traits."""
    return f"{PREFIX}deletion:{deletion_id}"


#: Counter of deletion requests done.
DELETIONS_DONE = PREFIX + "deletions:done"


def deleting(person: str) -> str:
    """String "<sequence>:<deletion id>": the person's deliveries accepted up to that sequence are dropped."""
    return f"{PREFIX}deleting:{person}"
