"""Every Redis key the relay uses, in one place.

All keys start with ``relay:`` so that an operator can find (and a test can
clean up) exactly what the relay wrote, and nothing else.
"""

PREFIX = "relay:"

#: Global acceptance sequence; the door stamps each event with the next value,
#: and a person's lane is ordered by it.
SEQ = PREFIX + "seq"

#: Hash person -> number of events accepted at the door and not yet ingested
#: into the person's lane.  While it is above zero the lane does not run, so an
#: identify still on its way from the door is never overtaken.
INFLIGHT = PREFIX + "inflight"

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

#: Sorted set person -> earliest hold deadline of its parked deliveries (ms).
PARKED_INDEX = PREFIX + "parked_index"

#: Hash delivery id -> JSON dead letter; sorted set id -> time (ms).
DEAD = PREFIX + "dead"
DEAD_INDEX = PREFIX + "dead_index"


def lane(person: str) -> str:
    """The sorted set of a person's waiting deliveries, ordered by acceptance."""
    return f"{PREFIX}lane:{person}"


def parked(person: str) -> str:
    """The list of a person's parked deliveries, in the order they were parked."""
    return f"{PREFIX}parked:{person}"


def seen(message_id: str) -> str:
    """Remembers a messageId (and the sequence it was accepted with) for de-duplication."""
    return f"{PREFIX}seen:{message_id}"
