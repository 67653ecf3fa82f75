"""The console's read-only lookups in Redis: every page's data, and nothing written.

Each function reads the stores' keys (worker/store/keys.py) with a bounded
number of round trips, so a page costs Redis little however large the
backlog: lanes and parked lists are read up to SHOWN items, dead letters up
to DEAD_LETTERS_SCANNED of the newest.  The client must decode responses
(``decode_responses=True``), as every client of the relay does.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, cast

import redis as redis_lib

from worker.settings import Settings
from worker.store import keys
from worker.store.attributes import Attributes
from worker.store.counters import Counters
from worker.store.deadletters import DeadLetter, load
from worker.store.deletions import Deletions
from worker.store.history import History
from worker.store.outcomes import Outcomes
from worker.store.pause import Pause

#: Deliveries listed per lane and per parked list (the count says how many there are).
SHOWN = 50

#: The newest dead letters a listing reads at most; older ones need a narrower time.
DEAD_LETTERS_SCANNED = 5000

#: Dead letters listed on one page (the groups and counts cover every one scanned).
DEAD_LETTERS_LISTED = 200


# -- the overview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Overview:
    counts: dict[str, int]
    paused: dict | None
    limit: int | None  # the rate limit per 10-s window Intercom last reported; None: not yet
    history: list[dict[str, Any]]
    dead_letters: int


def overview(redis: redis_lib.Redis, settings: Settings) -> Overview:
    """The counters now (as ``intercom-relay status`` shows them), the pause, the history."""
    limit = redis.hget(keys.budget(settings.token_id), "limit")
    return Overview(
        # As `status` shows them: the pipeline's counters, the privacy deletions done, and the
        # contacts and companies whose attribute values are held (dead letters, unknown_attribute).
        counts={
            **Counters(redis).snapshot(),
            "deletions": Deletions(redis).count_done(),
            "unknown_attribute": Attributes(redis).count_letters(),
        },
        paused=pause_reason(redis, settings),
        limit=int(cast(str, limit)) if limit else None,
        history=History(redis).entries(),
        dead_letters=int(redis.zcard(keys.DEAD_INDEX)),
    )


def pause_reason(redis: redis_lib.Redis, settings: Settings) -> dict | None:
    """{reason, since} while delivery is paused for a refused token, else None."""
    return Pause(redis, settings.token_id, settings.pause_probe_seconds).reason()


# -- a person -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    """A delivery in a lane or parked: its id, its record (event, mapping, action)."""

    delivery: str
    record: dict | None
    parked_at_ms: int | None = None
    hold_until_ms: int | None = None

    @property
    def event(self) -> dict:
        return (self.record or {}).get("event") or {}


@dataclass(frozen=True)
class Lane:
    person: str
    found_by: str
    state: str  # idle, gated, queued, running, sleeping, unscheduled
    deadline_ms: int | None
    inflight: int
    queued: list[Waiting]
    queued_total: int
    attempts: int
    first_failure_ms: int | None
    parked: list[Waiting]
    parked_total: int
    contact: dict[str, str] | None
    outcomes: list[dict[str, Any]]
    why: str | None = None  # why the head sleeps, when it does

    @property
    def head(self) -> Waiting | None:
        return self.queued[0] if self.queued else None


def find_people(redis: redis_lib.Redis, query: str) -> list[tuple[str, str]]:
    """(person, how it was found) for a userId, anonymousId or email.

    A person is a lane's name: userId, else anonymousId.  The query is one when
    anything of the relay's is kept under it; the contact-id cache then leads
    from any id or email to every person id of that contact (a converted
    lead's anonymousId and userId are two lanes of one contact).
    """
    found: dict[str, str] = {}
    if _has_traces(redis, query):
        found[query] = "person id"
    for kind, value in (("ext", query), ("anon", query), ("email", query.strip().lower())):
        contact_id = cast(str | None, redis.hget(keys.contact(kind, value), "id"))
        if contact_id:
            for person in _people_of_contact(redis, contact_id):
                found.setdefault(person, f"contact {contact_id} ({_KIND_NAMES[kind]} {value})")
    return list(found.items())


_KIND_NAMES = {"ext": "userId", "anon": "anonymousId", "email": "email"}


def _has_traces(redis: redis_lib.Redis, person: str) -> bool:
    pipe = redis.pipeline(transaction=False)
    pipe.exists(keys.lane(person), keys.parked(person), keys.outcomes(person))
    pipe.hexists(keys.LANE_STATE, person)
    pipe.hexists(keys.INFLIGHT, person)
    return any(pipe.execute())


def _people_of_contact(redis: redis_lib.Redis, contact_id: str) -> list[str]:
    """The userIds and anonymousIds the cache points at the contact (emails are not lanes)."""
    people = []
    for key in sorted(cast(set[str], redis.smembers(keys.contact_keys(contact_id)))):
        kind, _, value = key.removeprefix(keys.CONTACT_PREFIX).partition(":")
        if kind in ("ext", "anon") and redis.hget(key, "id") == contact_id:
            people.append(value)
    return people


def lane(redis: redis_lib.Redis, settings: Settings, person: str, found_by: str = "person id") -> Lane:
    """Everything the relay holds for one person: lane, head, parked, contact, last outcomes."""
    pipe = redis.pipeline(transaction=False)
    pipe.hget(keys.LANE_STATE, person)
    pipe.zscore(keys.LEASES, person)
    pipe.hget(keys.INFLIGHT, person)
    pipe.zrange(keys.lane(person), 0, SHOWN - 1)
    pipe.zcard(keys.lane(person))
    pipe.lrange(keys.parked(person), 0, SHOWN - 1)
    pipe.llen(keys.parked(person))
    state, deadline, inflight, queued_ids, queued_total, parked_raw, parked_total = pipe.execute()
    parked_entries = [_parked_entry(raw, settings) for raw in parked_raw]
    records = _records(redis, queued_ids + [delivery for delivery, _, _ in parked_entries])
    attempts, first_failure = _attempts(redis, queued_ids[0]) if queued_ids else (0, None)
    outcomes = Outcomes(redis).of_person(person)
    lane_state = _state(state, bool(queued_ids), int(inflight or 0))
    return Lane(
        person=person,
        found_by=found_by,
        state=lane_state,
        deadline_ms=int(deadline) if deadline is not None else None,
        inflight=int(inflight or 0),
        queued=[Waiting(d, records.get(d)) for d in queued_ids],
        queued_total=int(queued_total),
        attempts=attempts,
        first_failure_ms=first_failure,
        parked=[Waiting(d, records.get(d), at, until) for d, at, until in parked_entries],
        parked_total=int(parked_total),
        contact=_contact(redis, person),
        outcomes=outcomes,
        why=_why_sleeping(redis, settings, queued_ids[0], attempts, outcomes) if lane_state == "sleeping" else None,
    )


def _state(raw: str | None, has_head: bool, inflight: int) -> str:
    """The lane's state in words the page explains (see worker/store/lanes.py's life cycle)."""
    if raw == "queued":
        return "queued"
    if raw == "sleep":
        return "sleeping"
    if raw:
        return "running"  # the running task's token
    if inflight:
        return "gated"
    return "unscheduled" if has_head else "idle"


def _parked_entry(raw: str, settings: Settings) -> tuple[str, int | None, int | None]:
    """(delivery, parked at ms, dead-lettered at ms unless an identify comes) of a parked list's "id|ms"."""
    delivery, _, at = raw.partition("|")
    parked_at = int(at) if at.isdigit() else None
    return delivery, parked_at, parked_at + int(settings.park_hold * 1000) if parked_at is not None else None


def _records(redis: redis_lib.Redis, deliveries: list[str]) -> dict[str, dict]:
    if not deliveries:
        return {}
    raw = cast(list[str | None], redis.hmget(keys.DELIVERIES, deliveries))
    return {d: json.loads(r) for d, r in zip(deliveries, raw) if r}


def _attempts(redis: redis_lib.Redis, delivery: str) -> tuple[int, int | None]:
    raw = cast(str | None, redis.hget(keys.ATTEMPTS, delivery))
    if not raw:
        return 0, None
    count, _, first = raw.partition("|")
    return int(count), int(first) if first.isdigit() else None


def _contact(redis: redis_lib.Redis, person: str) -> dict[str, str] | None:
    """The Intercom contact the person's id points at in the cache ({id, role, by}), if any."""
    for kind in ("ext", "anon"):
        found = cast(dict[str, str], redis.hgetall(keys.contact(kind, person)))
        if found.get("id"):
            return {"id": found["id"], "role": found.get("role", "user"), "by": _KIND_NAMES[kind]}
    return None


def _why_sleeping(redis: redis_lib.Redis, settings: Settings, head: str, attempts: int, outcomes: list[dict]) -> str:
    """Why the head waits: the pause, a retry (and its failure), or a wait that uses no attempt."""
    paused = pause_reason(redis, settings)
    if paused:
        return f"the destination is paused: {paused.get('reason')}"
    if attempts:
        failure = next((o.get("reason") for o in outcomes if o.get("delivery") == head and o.get("status") == "retrying"), None)
        return f"retry {attempts + 1} after {attempts} failed attempt(s)" + (f": {failure}" if failure else "")
    return "a wait that uses no attempt: Intercom's rate limit, or a lead's search that may still lag"


# -- dead letters ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterFilter:
    reason: str | None = None
    action: str | None = None
    person: str | None = None
    since_ms: int | None = None


@dataclass
class DeadLetterListing:
    letters: list[DeadLetter] = field(default_factory=list)  # newest first, at most DEAD_LETTERS_LISTED
    matched: int = 0
    groups: list[tuple[str, int]] = field(default_factory=list)  # (reason, count), largest first
    actions: list[str] = field(default_factory=list)  # the actions among the letters scanned
    scanned: int = 0
    total: int = 0  # every dead letter kept
    truncated: bool = False  # more letters in the time range than DEAD_LETTERS_SCANNED


def dead_letters(redis: redis_lib.Redis, wanted: DeadLetterFilter) -> DeadLetterListing:
    """The newest dead letters in the time range, filtered, with the matches grouped by reason."""
    low = wanted.since_ms if wanted.since_ms is not None else "-inf"
    ids = cast(list[str], redis.zrevrangebyscore(keys.DEAD_INDEX, "+inf", low, start=0, num=DEAD_LETTERS_SCANNED + 1))
    listing = DeadLetterListing(total=int(redis.zcard(keys.DEAD_INDEX)), truncated=len(ids) > DEAD_LETTERS_SCANNED)
    ids = ids[:DEAD_LETTERS_SCANNED]
    groups: dict[str, int] = {}
    actions: set[str] = set()
    for dead in letters_by_id(redis, ids):
        listing.scanned += 1
        actions.add(dead.action or "")
        if not _matches(dead, wanted):
            continue
        listing.matched += 1
        groups[dead.reason] = groups.get(dead.reason, 0) + 1
        if len(listing.letters) < DEAD_LETTERS_LISTED:
            listing.letters.append(dead)
    listing.groups = sorted(groups.items(), key=lambda item: (-item[1], item[0]))
    listing.actions = sorted(a for a in actions if a)
    return listing


def letters_by_id(redis: redis_lib.Redis, ids: list[str], chunk: int = 500) -> list[DeadLetter]:
    """The dead letters of ``ids`` still kept, in the order given (held attribute values with their values)."""
    found = []
    for start in range(0, len(ids), chunk):
        found += load(redis, ids[start : start + chunk])
    return found


def dead_letter(redis: redis_lib.Redis, letter_id: str) -> dict[str, Any] | None:
    """One dead letter as stored (with its first failure and parking times), and its last exchange if still sampled."""
    raw = cast(str | None, redis.hget(keys.DEAD, letter_id))
    if raw is None:
        return None
    data = json.loads(raw)
    if data.get("held"):  # unknown_attribute: the values held, and the reason naming them
        found = load(redis, [letter_id])
        if not found:
            return None
        data["held"], data["reason"] = found[0].held, found[0].reason
    person = str(data.get("person") or "")
    sampled = [o for o in Outcomes(redis).of_person(person) if o.get("delivery") == letter_id and o.get("exchange")] if person else []
    data["exchange"] = sampled[0]["exchange"] if sampled else None
    return data


def _matches(dead: DeadLetter, wanted: DeadLetterFilter) -> bool:
    if wanted.action and dead.action != wanted.action:
        return False
    if wanted.person and dead.person != wanted.person:
        return False
    return not wanted.reason or wanted.reason.lower() in dead.reason.lower()


# -- recent deliveries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recent:
    outcomes: list[dict[str, Any]]
    by_status: dict[str, int]
    latency: dict[str, float] | None  # p50, p95, max of the delivered ones in the sample, seconds


def recent(redis: redis_lib.Redis, limit: int, status: str | None = None) -> Recent:
    """The fleet's last outcomes (the whole sample is counted; ``limit`` of them listed)."""
    sample = Outcomes(redis).recent()
    by_status: dict[str, int] = {}
    for o in sample:
        by_status[str(o.get("status"))] = by_status.get(str(o.get("status")), 0) + 1
    shown = [o for o in sample if status is None or o.get("status") == status][:limit]
    latencies = sorted(float(o["latency_s"]) for o in sample if o.get("status") == "delivered" and o.get("latency_s") is not None)
    return Recent(shown, by_status, _percentiles(latencies))


def _percentiles(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None

    def at(q: float) -> float:
        return values[min(len(values) - 1, int(q * len(values)))]

    return {"p50": at(0.5), "p95": at(0.95), "max": values[-1], "n": float(len(values))}


# -- input ----------------------------------------------------------------------------------

#: Person ids and emails longer than this are not looked up (Segment caps ids far below).
MAX_QUERY = 512

_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def is_action_name(value: str) -> bool:
    return bool(_ACTION_NAME.match(value))


def now_ms() -> int:
    return int(time.time() * 1000)
