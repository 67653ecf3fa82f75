"""Running one lane head, and deciding what its outcome means.

::

    claim the head ──(stale, busy, early, gated)──▶ nothing to do: another task has it
        │
        ├─ destination paused (bad token) ───────────▶ sleep the lane, probe later
        ├─ track/group, person unknown, identify waiting further down the lane
        │                                             ▶ promote the identify, send it
        ▼
    map ▶ perform
        ├─ ok ──────────────────────────────────────▶ finish: delivered, send the next head
        ├─ RateLimited ─────────────────────────────▶ sleep until the reset (no attempt used)
        ├─ ContactNotFound (track/group) ───────────▶ park until the person's next identify
        ├─ Unauthorized ────────────────────────────▶ pause the destination, sleep the lane
        ├─ RetryableError, unexpected error ────────▶ sleep with backoff; dead letter after the retry window
        └─ PermanentError, bad mapping ─────────────▶ dead letter with the reason, send the next head

The head stays at the front of its lane through every wait, so a retry never
lets the same person's later events overtake it (DESIGN.md guarantee 6).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from celery import Celery, Task
from celery.exceptions import Retry

from worker.actions import ACTIONS, ActionContext
from worker.intercom.errors import (
    AwaitingSearch,
    ContactNotFound,
    IntercomError,
    PermanentError,
    RateLimited,
    RetryableError,
    Unauthorized,
)
from worker.mappings import MappingError
from worker.retry import backoff, out_of_window, rate_limit_wait
from worker.store.deadletters import letter
from worker.store.lanes import Claim, action_of, now_ms
from worker.store.lease import Lease, current_lease

log = logging.getLogger("worker.delivery")

#: Waits up to this long go back to Celery as a countdown (Flower shows the
#: retry); longer ones sleep in Redis and the sweep wakes them, because Celery
#: on Redis redelivers any task whose countdown outlives the broker's
#: visibility timeout (DESIGN.md).
MAX_COUNTDOWN_SECONDS = 60.0

#: How many of its lane's next heads a task may run itself, and for how long.
CHAIN_MAX = 20
CHAIN_SECONDS = 5.0


def dispatch(app: Celery, person: str, delivery: str, countdown: float | None = None) -> None:
    """Send the task that runs ``delivery``, the head of ``person``'s lane."""
    task_name = ACTIONS[action_of(delivery)].TASK_NAME
    app.send_task(task_name, args=[person, delivery], countdown=countdown)


@dataclass
class _Chain:
    """The lane a task is running, and the next head it may run itself."""

    person: str
    first: str  # the delivery the task was sent for
    deadline: float
    left: int
    next_head: str | None = None
    #: (token, claim) when closing the previous head already claimed this one.
    next_claim: tuple[str, Claim] | None = None
    delivered: Counter = field(default_factory=Counter)

    def has_room(self, person: str) -> bool:
        return person == self.person and self.left > 0 and time.monotonic() < self.deadline

    def take(self, person: str, head: str, claimed: tuple[str, Claim] | None = None) -> bool:
        """Keep ``head`` for this task instead of sending a task for it, if it fits.

        A head already claimed for this task is always kept: no other task could run it.
        """
        if claimed is None and not self.has_room(person):
            return False
        self.next_head, self.next_claim, self.left = head, claimed, self.left - 1
        return True


_chain: ContextVar[_Chain | None] = ContextVar("chain", default=None)


def deliver(task: Task, rt: Any, person: str, delivery: str) -> dict:
    """Deliver ``delivery`` and then, within limits, the same lane's next heads.

    A hop through Celery (publish, consume, ack, task events) costs more CPU
    than the delivery itself, so a task that closes a head runs the lane's
    next head itself, whatever its action, at most CHAIN_MAX times and for
    at most CHAIN_SECONDS (other lanes must not wait behind a long one).  The
    task keeps the name of the delivery it was sent for; its result counts
    what it delivered by action, and a chained head that must wait gets a
    task of its own action (see ``_wake_later``).
    """
    chain = _Chain(person, delivery, time.monotonic() + CHAIN_SECONDS, CHAIN_MAX)
    reset, reset_lease = _chain.set(chain), current_lease.set(None)
    try:
        result = _deliver_one(task, rt, person, delivery)
        _count(chain, delivery, result)
        while chain.next_head:
            head, claimed = chain.next_head, chain.next_claim
            chain.next_head = chain.next_claim = None
            try:
                result = _deliver_one(task, rt, person, head, claimed)
            finally:
                rt.budget.release_prepaid()  # a head that made no call leaves its slot unused
            _count(chain, head, result)
    finally:
        # Worker threads run task after task: no lease or chain may outlive its task.
        _chain.reset(reset)
        current_lease.reset(reset_lease)
    if sum(chain.delivered.values()) > 1:
        return {**result, "delivered_in_task": dict(chain.delivered)}
    return result


def _count(chain: _Chain, delivery: str, result: dict) -> None:
    if "delivered" in result:
        chain.delivered[action_of(delivery)] += 1


def _deliver_one(task: Task, rt: Any, person: str, delivery: str, claimed: tuple[str, Claim] | None = None) -> dict:
    if claimed is None:
        token = uuid.uuid4().hex
        claim = rt.lanes.claim(person, delivery, token)
    else:
        token, claim = claimed
        if claim.first_slot is not None:
            rt.budget.prepay(claim.first_slot)  # reserved in the round trip that claimed the head
    if claim.status != "ok":
        return {"skipped": claim.status}
    current_lease.set(Lease(person, token, time.monotonic()))
    record = claim.record
    action = ACTIONS[record["action"]]
    if rt.pause.is_paused():
        return _sleep(task, rt, person, delivery, rt.pause.probe_interval, why="destination paused")
    if action.NEEDS_CONTACT and claim.pending_identifies and not _contact_known_in_task() and not _known(rt, record):
        return _identify_first(task, rt, person)
    return _perform(task, rt, person, delivery, record, action, claim.attempts)


def _perform(task: Task, rt: Any, person: str, delivery: str, record: dict, action: Any, attempts: int) -> dict:
    event = record["event"]
    ctx = ActionContext(
        client=rt.client, contacts=rt.contacts, user_id=_str(event.get("userId")), anonymous_id=_str(event.get("anonymousId"))
    )
    try:
        mapping = rt.mappings.get(record["mapping"])
        if mapping is None:
            raise MappingError("this mapping is no longer configured", mapping=record["mapping"])
        result = action.perform(ctx, mapping.apply(event))
    except RateLimited as exc:
        return _sleep(task, rt, person, delivery, rate_limit_wait(exc.reset_at, time.time()), why="rate limited")
    except AwaitingSearch as exc:
        return _sleep(task, rt, person, delivery, max(1.0, exc.retry_at - time.time()), why=str(exc))
    except ContactNotFound as exc:
        return _contact_not_found(task, rt, person, delivery, record, action, exc)
    except Unauthorized:
        return _unauthorized(task, rt, person, delivery)
    except (PermanentError, MappingError) as exc:
        return _dead_letter(task, rt, person, delivery, record, exc)
    except RetryableError as exc:
        return _retry(task, rt, person, delivery, record, exc)
    except Retry:
        raise
    except Exception as exc:  # a bug must not lose the event: retry it, then dead-letter it
        log.exception("unexpected error delivering %s for %s", delivery, person)
        return _retry(task, rt, person, delivery, record, exc)
    _outcome(person, record, "delivered", attempts, calls=ctx.calls)
    _close_delivered(task, rt, person, delivery)
    if record["action"] == "identify_contact":
        _release_anonymous_lane(task, rt, person, ctx.anonymous_id)
    return {"delivered": delivery, **{k: v for k, v in result.items() if k != "calls"}, "calls": ctx.calls}


def _close_delivered(task: Task, rt: Any, person: str, delivery: str) -> None:
    """Finish the head; when this task may run the next one, claim it in the same round trip."""
    chain = _chain.get()
    if chain is None or not chain.has_room(person):
        _send_next(task, person, rt.lanes.finish(person, delivery, "delivered"))
        return
    token = uuid.uuid4().hex
    # The next head's first call is reserved in the same round trip: nearly every head makes one.
    head, claim = rt.lanes.finish_and_claim(person, delivery, "delivered", token, reserve=rt.budget.reservation())
    _send_next(task, person, head, (token, claim) if claim else None)


def _contact_known_in_task() -> bool:
    """Whether this task delivered one of its person's events: then the person has a contact."""
    chain = _chain.get()
    return chain is not None and sum(chain.delivered.values()) > 0


def _known(rt: Any, record: dict) -> bool:
    event = record["event"]
    return rt.contacts.get(external_id=_str(event.get("userId")), anonymous_id=_str(event.get("anonymousId"))) is not None


def _release_anonymous_lane(task: Task, rt: Any, person: str, anonymous_id: str | None) -> None:
    """An identify that names a user and an anonymous id makes them one person.

    The anonymous id's own lane may hold tracks parked because Intercom had
    merged its lead into this user a moment before they were sent; they can
    go now, to the user.
    """
    if anonymous_id and anonymous_id != person:
        _send_next(task, anonymous_id, rt.lanes.unpark(anonymous_id))


def _identify_first(task: Task, rt: Any, person: str) -> dict:
    """The person is unknown to Intercom and an identify waits: send it first."""
    promoted = rt.lanes.promote_identify(person)
    _send_next(task, person, promoted)
    return {"deferred_for": promoted}


def _contact_not_found(task: Task, rt: Any, person: str, delivery: str, record: dict, action: Any, exc: ContactNotFound) -> dict:
    if not action.NEEDS_CONTACT:  # an identify never answers "no such contact"; treat as a retry
        return _retry(task, rt, person, delivery, record, exc)
    if rt.lanes.pending_identifies(person):
        return _identify_first(task, rt, person)
    if _known(rt, record):
        # The action dropped the id that failed, yet the person still points at
        # a contact: the lead was merged into its user meanwhile (its other
        # lane converted it). Try again on the contact it became.
        return _retry(task, rt, person, delivery, record, exc)
    _outcome(person, record, "parked", 0, reason="contact not found")
    _send_next(task, person, rt.lanes.park(person, delivery))
    return {"parked": delivery}


def _unauthorized(task: Task, rt: Any, person: str, delivery: str) -> dict:
    if rt.pause.pause("Intercom answered 401: the access token is invalid or revoked"):
        log.error(
            "PAUSED: Intercom refuses the access token (401). No event is lost: delivery "
            "resumes once INTERCOM_ACCESS_TOKEN works again (intercom-relay check)."
        )
    return _sleep(task, rt, person, delivery, rt.pause.probe_interval, why="destination paused")


def _retry(task: Task, rt: Any, person: str, delivery: str, record: dict, exc: Exception) -> dict:
    attempts, first = rt.lanes.attempts(delivery)
    now = now_ms()
    first = first or now
    if out_of_window(first / 1000, now / 1000, rt.settings.retry_window):
        return _dead_letter(
            task, rt, person, delivery, record, exc, attempts=attempts, first=first, reason=f"gave up after {attempts} attempts: {exc}"
        )
    delay = backoff(attempts + 1)
    rt.lanes.sleep(person, delivery, now + int(delay * 1000), attempt=(attempts + 1, first))
    _outcome(person, record, "retrying", attempts + 1, reason=str(exc))
    return _wake_later(task, person, delivery, delay)


def _sleep(task: Task, rt: Any, person: str, delivery: str, delay: float, *, why: str) -> dict:
    """Hold the lane for ``delay`` seconds without using up an attempt."""
    rt.lanes.sleep(person, delivery, now_ms() + int(delay * 1000))
    log.debug("%s: %s waits %.1fs (%s)", person, delivery, delay, why)
    return _wake_later(task, person, delivery, delay)


def _wake_later(task: Task, person: str, delivery: str, delay: float) -> dict:
    if delay <= MAX_COUNTDOWN_SECONDS:
        chain = _chain.get()
        if chain is None or chain.first == delivery:
            # A Celery retry of this very task: Flower shows it as RETRY.
            raise task.retry(args=[person, delivery], countdown=delay, max_retries=None)
        # A head this task ran after its own: its wait is a task of its own
        # action, so that Flower never shows one action retrying another's event.
        dispatch(task.app, person, delivery, countdown=delay)
        return {"waiting": delivery, "seconds": round(delay, 1)}
    return {"sleeping": delivery, "seconds": round(delay, 1)}


def _dead_letter(
    task: Task,
    rt: Any,
    person: str,
    delivery: str,
    record: dict,
    exc: Exception,
    *,
    attempts: int | None = None,
    first: int | None = None,
    reason: str | None = None,
) -> dict:
    if attempts is None:
        attempts, first = rt.lanes.attempts(delivery)
    body = letter(delivery, record, reason or _reason(exc), response=_response(exc), attempts=attempts + 1, first_failure_ms=first)
    _outcome(person, record, "dead_lettered", attempts + 1, reason=body["reason"])
    _send_next(task, person, rt.lanes.finish(person, delivery, "dead_lettered", body))
    return {"dead_lettered": delivery, "reason": body["reason"]}


def _send_next(task: Task, person: str, head: str | None, claimed: tuple[str, Claim] | None = None) -> None:
    """Run ``head`` in this task if its chain takes it (always, if claimed for it), else send a task."""
    chain = _chain.get()
    if head and not (chain and chain.take(person, head, claimed)):
        dispatch(task.app, person, head)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _response(exc: Exception) -> dict | None:
    if isinstance(exc, IntercomError) and exc.status is not None:
        return {"status": exc.status, "body": exc.body}
    return None


def _outcome(person: str, record: dict, status: str, attempts: int, *, reason: str | None = None, calls: int | None = None) -> None:
    """One log line per delivery outcome: person, action, status, attempts."""
    extra = {
        "person": person,
        "action": record["action"],
        "status": status,
        "attempts": attempts,
        "message_id": record["event"].get("messageId"),
        "reason": reason,
        "calls": calls,
    }
    level = logging.WARNING if status in ("dead_lettered",) else logging.INFO
    log.log(
        level,
        "%s %s %s (attempts=%d)%s",
        status,
        record["action"],
        person,
        attempts,
        f": {reason}" if reason else "",
        extra={"delivery": extra},
    )


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
