"""Running one lane head, and carrying out what its outcome means.

::

    claim the head ──(stale, busy, early, gated)──▶ nothing to do: another task has it
        │
        ├─ destination paused (bad token) ───────────▶ sleep the lane, probe later
        ├─ needs a contact, person unknown, identify waiting further down the lane
        │                                             ▶ promote the identify, send it
        ▼
    map ▶ perform
        ├─ ok ─────────────▶ finish: delivered; an identify releases what was parked; the next head
        └─ an exception ───▶ the failure policy (worker/policy.py) decides: wait, pause, park,
                             retry or dead letter

The head stays at the front of its lane through every wait, so a retry never
lets the same person's later events overtake it (docs/design.md, guarantee 6).

A :class:`DeliveryRun` is one head run by one task.  It carries what every
step needs (the task, the runtime, the person, the delivery and its record,
the chain) and owns the rate slot prepaid for its first call.  The run is
the budget its Intercom calls go through (``IntercomClient.with_budget``),
which is how the slot reaches the calls without any state hidden in the
thread.  While it runs, the worker's liveness thread renews the task's lease
on the lane (``worker/liveness.py``), however long a call takes.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, Sequence

import httpx

from worker import liveness
from worker.actions import ACTIONS, ActionContext, action_of
from worker.actions.common import load_fields
from worker.intercom.errors import IntercomError, InvalidPayload
from worker.mappings import Mapping, MappingError
from worker.policy import Step, decide
from worker.runtime import Runtime
from worker.store.budget import Slot
from worker.store.deadletters import letter
from worker.store.lanes import Claim, now_ms
from worker.store.lease import Lease
from worker.store.outcomes import exchange_of
from worker.timers import CHAIN_SECONDS, MAX_COUNTDOWN_SECONDS

log = logging.getLogger("worker.delivery")

#: How many of its lane's next heads a task may run itself (for how long: CHAIN_SECONDS).
CHAIN_MAX = 20

#: How many identifies waiting behind an identify may go out in its call.
COALESCE_MAX = 20


class Sender(Protocol):
    """What sends a task: a Celery app's ``send_task``."""

    def send_task(self, name: str, *, args: Sequence[Any] | None = ..., countdown: float | None = ...) -> Any: ...


class TaskLike(Protocol):
    """What a delivery uses of the Celery task running it."""

    @property
    def app(self) -> Sender: ...

    def retry(self, *, args: tuple[Any, ...] | None = ..., countdown: float | None = ..., max_retries: int | None = ...) -> Exception: ...


def dispatch(app: Sender, person: str, delivery: str, countdown: float | None = None) -> None:
    """Send the task that runs ``delivery``, the head of ``person``'s lane."""
    app.send_task(action_of(delivery).task_name, args=[person, delivery], countdown=countdown)


#: A head claimed in the same round trip that closed the one before it: (token, claim).
Claimed = tuple[str, Claim]


@dataclass
class Chain:
    """The lane a task is running, and the next head it may run itself."""

    person: str
    first: str  # the delivery the task was sent for
    deadline: float
    left: int
    next_head: str | None = None
    #: Set when closing the previous head already claimed this one for the task.
    next_claim: Claimed | None = None
    delivered: Counter[str] = field(default_factory=Counter)

    def has_room(self) -> bool:
        return self.left > 0 and time.monotonic() < self.deadline

    def take(self, head: str, claimed: Claimed | None = None) -> bool:
        """Keep ``head`` for this task instead of sending a task for it, if it fits.

        A head already claimed for this task is always kept: no other task could run it.
        """
        if claimed is None and not self.has_room():
            return False
        self.next_head, self.next_claim, self.left = head, claimed, self.left - 1
        return True

    def pop(self) -> tuple[str, Claimed | None]:
        head, claimed = self.next_head, self.next_claim
        assert head is not None
        self.next_head = self.next_claim = None
        return head, claimed

    def count(self, delivery: str, result: dict) -> None:
        if "delivered" in result:
            self.delivered[action_of(delivery).name] += 1


def deliver(task: TaskLike, rt: Runtime, person: str, delivery: str) -> dict:
    """Deliver ``delivery`` and then, within limits, the same lane's next heads.

    A hop through Celery (publish, consume, ack, task events) costs more CPU
    than the delivery itself, so a task that closes a head runs the lane's
    next head itself, whatever its action, at most CHAIN_MAX times and for
    at most CHAIN_SECONDS (other lanes must not wait behind a long one).  The
    task keeps the name of the delivery it was sent for; its result counts
    what it delivered by action, and a chained head that must wait gets a
    task of its own action (see ``DeliveryRun._wake_later``).
    """
    chain = Chain(person, delivery, time.monotonic() + CHAIN_SECONDS, CHAIN_MAX)
    result = _run_head(task, rt, chain, delivery, None)
    while chain.next_head:
        head, claimed = chain.pop()
        result = _run_head(task, rt, chain, head, claimed)
    if sum(chain.delivered.values()) > 1:
        return {**result, "delivered_in_task": dict(chain.delivered)}
    return result


def _run_head(task: TaskLike, rt: Runtime, chain: Chain, delivery: str, claimed: Claimed | None) -> dict:
    if claimed is None:
        token = liveness.token()
        claim, prepaid = rt.lanes.claim(chain.person, delivery, token), None
    else:
        token, claim = claimed
        # Its first call was reserved in the round trip that claimed it.
        prepaid = rt.budget.slot_of(claim.first_slot) if claim.first_slot is not None else None
    if claim.status != "ok" or claim.record is None:
        return {"skipped": claim.status}
    run = DeliveryRun(task, rt, chain, delivery, claim, prepaid)
    try:
        with liveness.holding(Lease(chain.person, token)):
            result = run.run()
    finally:
        run.release_prepaid()  # a head that made no call leaves its slot unused
    chain.count(delivery, result)
    return result


class DeliveryRun:
    """One head of one lane, run by one task; see the module docstring."""

    def __init__(self, task: TaskLike, rt: Runtime, chain: Chain, delivery: str, claim: Claim, prepaid: Slot | None) -> None:
        assert claim.record is not None
        self.task, self.rt, self.chain = task, rt, chain
        self.person, self.delivery = chain.person, delivery
        self.record: dict = claim.record
        self.action = ACTIONS[self.record["action"]]
        self.attempts = claim.attempts
        self.pending_identifies = claim.pending_identifies
        self.prepaid = prepaid
        #: Intercom's last answer to this run, kept for the outcome samples.
        self.last_response: httpx.Response | None = None

    # -- the budget of this run's Intercom calls ------------------------------------

    def acquire(self) -> float:
        """Before each call: take the prepaid slot or reserve one."""
        slot, self.prepaid = self.prepaid, None
        return self.rt.budget.acquire(slot)

    def observe(self, response: httpx.Response, slot: float | None = None) -> None:
        self.last_response = response
        self.rt.budget.observe(response, slot)

    def release_prepaid(self) -> None:
        """The call the slot was prepaid for was not made: uncount it."""
        if self.prepaid is not None:
            self.prepaid = None
            self.rt.budget.uncount()

    # -- running the head -----------------------------------------------------------

    def run(self) -> dict:
        deletion = self._deletion_dropping()
        if deletion is not None:
            return self._drop(deletion)
        if self.rt.pause.is_paused():
            return self._sleep(self.rt.policy.probe_interval, why="destination paused")
        if self.action.needs_contact and self.pending_identifies and not self._contact_known():
            return self._identify_first()
        return self._perform()

    def _perform(self) -> dict:
        event = self.record["event"]
        mapping = self.rt.mappings.get(self.record["mapping"])
        ctx = ActionContext(
            client=self.rt.client.with_budget(self),
            contacts=self.rt.contacts,
            user_id=_str(event.get("userId")),
            anonymous_id=_anonymous_id(event),
            companies=self.rt.companies,
            skip=self.rt.skip,
            mapping_version=mapping.fingerprint if mapping else "",
            workspace=self.rt.workspace,
            strict_fields=self.rt.settings.strict_fields,
            drops=self.rt.dropped_fields,
            attributes=self.rt.attributes,
            unknown_attributes=self.rt.settings.unknown_attributes,
            max_created_attributes=self.rt.settings.max_created_attributes,
        )
        absorbed: list[str] = []
        try:
            if mapping is None:
                raise MappingError("this mapping is no longer configured", mapping=self.record["mapping"])
            fields, absorbed = self._coalesce(mapping, mapping.apply(event))
            result = self.action.run(ctx, fields)
        except Exception as exc:  # noqa: BLE001 - every failure goes to the policy; a bug is retried, then dead-lettered
            if not isinstance(exc, (IntercomError, MappingError)):
                log.exception("unexpected error delivering %s for %s", self.delivery, self.person)
            return self._failed(exc)
        self._outcome("delivered", self.attempts, calls=ctx.calls)
        if ctx.calls == 0:  # Intercom already held what it carried (SKIP_UNCHANGED)
            self.rt.counters.incr("unchanged")
        if absorbed:
            self.rt.lanes.absorb(self.person, absorbed)
            log.info("delivered %s %s: %d later identifies coalesced into its call", self.action.name, self.person, len(absorbed))
        self._close_and_hand_on("delivered")
        if self.action.identifies:
            self._release_anonymous_lane(ctx.anonymous_id)
        coalesced = {"coalesced": absorbed} if absorbed else {}
        return {"delivered": self.delivery, **{k: v for k, v in result.items() if k != "calls"}, **coalesced, "calls": ctx.calls}

    def _coalesce(self, mapping: Mapping, fields: dict) -> tuple[dict, list[str]]:
        """The head's fields with those of the identifies waiting right behind it, later values winning.

        Identifies of one person that wait next to each other go out as one
        call: sent one by one, they would leave Intercom in the same state.
        Only those of the same mapping and the same ids are taken, and only
        while their fields are valid (a bad one fails on its own, as it would
        have).  Returns the fields to send and the deliveries taken along.
        """
        if not (self.action.identifies and self.pending_identifies > 1):
            return fields, []
        merged, absorbed = dict(fields), []
        for delivery, record in self.rt.lanes.following_identifies(self.person, self.delivery, COALESCE_MAX):
            if record.get("mapping") != self.record["mapping"] or _ids(record["event"]) != _ids(self.record["event"]):
                break
            later = mapping.apply(record["event"])
            try:
                load_fields(self.action.fields, later)
            except InvalidPayload:
                break
            merged = _merge_fields(merged, later)
            absorbed.append(delivery)
        return merged, absorbed

    def _failed(self, exc: Exception) -> dict:
        """Carry out what the failure policy decides for ``exc``."""
        decision = decide(exc, parks_on_404=self.action.parks_on_404, now=time.time())
        if decision.step is Step.WAIT:
            return self._sleep(decision.delay, why=_reason(exc))
        if decision.step is Step.PAUSE:
            return self._pause()
        if decision.step is Step.PARK:
            return self._park(exc)
        if decision.step is Step.RETRY:
            return self._retry(exc)
        return self._dead_letter(exc)

    def _contact_known(self) -> bool:
        """Whether the person has an Intercom contact: this task delivered one of its events, or it is cached."""
        return sum(self.chain.delivered.values()) > 0 or self._contact_cached()

    def _contact_cached(self) -> bool:
        event = self.record["event"]
        found = self.rt.contacts.get(external_id=_str(event.get("userId")), anonymous_id=_str(event.get("anonymousId")))
        return found is not None

    # -- outcomes -------------------------------------------------------------------

    def _deletion_dropping(self) -> str | None:
        """The deletion of this person that this delivery, accepted before it, must not outrun."""
        if self.action.deletes_person:
            return None
        return self.rt.deletions.dropping(self.person, int(self.delivery.split(":", 1)[0]))

    def _drop(self, deletion: str) -> dict:
        """Close the head unsent, counted as deleted (a privacy request came after it)."""
        self.rt.deletions.dropped(deletion)
        self._close_and_hand_on("deleted")
        return {"deleted": self.delivery, "deletion": deletion}

    def _close_and_hand_on(self, outcome: str) -> None:
        """Finish the head as ``outcome`` (delivered, or deleted: dropped unsent) and hand the lane on.

        When this task may run the next head, it claims it in the same round trip; else it sends it a task.
        """
        if not self.chain.has_room():
            self._send_next(self.rt.lanes.finish(self.person, self.delivery, outcome))
            return
        token = liveness.token()
        # The next head's first call is reserved in the same round trip: nearly every head makes one.
        head, claim = self.rt.lanes.finish_and_claim(self.person, self.delivery, outcome, token, reserve=self.rt.budget.reservation())
        self._send_next(head, (token, claim) if claim else None)

    def _release_anonymous_lane(self, anonymous_id: str | None) -> None:
        """An identify that names a user and an anonymous id makes them one person.

        The anonymous id's own lane may hold tracks parked because Intercom had
        merged its lead into this user a moment before they were sent; they can
        go now, to the user.
        """
        if anonymous_id and anonymous_id != self.person:
            head = self.rt.lanes.unpark(anonymous_id)
            if head:
                dispatch(self.task.app, anonymous_id, head)

    def _identify_first(self) -> dict:
        """The person is unknown to Intercom and an identify waits: send it first."""
        promoted = self.rt.lanes.promote_identify(self.person)
        self._send_next(promoted)
        return {"deferred_for": promoted}

    def _park(self, exc: Exception) -> dict:
        if self.rt.lanes.pending_identifies(self.person):
            return self._identify_first()
        if self._contact_cached():
            # The action dropped the id that failed, yet the person still points at
            # a contact: the lead was merged into its user meanwhile (its other
            # lane converted it). Try again on the contact it became.
            return self._retry(exc)
        self._outcome("parked", 0, reason="contact not found")
        self._send_next(self.rt.lanes.park(self.person, self.delivery))
        return {"parked": self.delivery}

    def _pause(self) -> dict:
        if self.rt.pause.pause("Intercom answered 401: the access token is invalid or revoked"):
            log.error(
                "PAUSED: Intercom refuses the access token (401). No event is lost: delivery "
                "resumes once INTERCOM_ACCESS_TOKEN works again (intercom-relay check)."
            )
        return self._sleep(self.rt.policy.probe_interval, why="destination paused")

    def _retry(self, exc: Exception) -> dict:
        attempts, first = self.rt.lanes.attempts(self.delivery)
        now = now_ms()
        first = first or now
        if self.rt.policy.gives_up(first / 1000, now / 1000):
            return self._dead_letter(exc, attempts=attempts, first=first, reason=f"gave up after {attempts} attempts: {exc}")
        delay = self.rt.policy.backoff(attempts + 1)
        self.rt.lanes.sleep(self.person, self.delivery, now + int(delay * 1000), attempt=(attempts + 1, first))
        self._outcome("retrying", attempts + 1, reason=str(exc))
        return self._wake_later(delay)

    def _sleep(self, delay: float, *, why: str) -> dict:
        """Hold the lane for ``delay`` seconds without using up an attempt."""
        self.rt.lanes.sleep(self.person, self.delivery, now_ms() + int(delay * 1000))
        log.debug("%s: %s waits %.1fs (%s)", self.person, self.delivery, delay, why)
        return self._wake_later(delay)

    def _wake_later(self, delay: float) -> dict:
        if delay > MAX_COUNTDOWN_SECONDS:
            return {"sleeping": self.delivery, "seconds": round(delay, 1)}  # the sweep wakes it
        if self.chain.first == self.delivery:
            # A Celery retry of this very task: Flower shows it as RETRY.
            raise self.task.retry(args=(self.person, self.delivery), countdown=delay, max_retries=None)
        # A head this task ran after its own: its wait is a task of its own
        # action, so that Flower never shows one action retrying another's event.
        dispatch(self.task.app, self.person, self.delivery, countdown=delay)
        return {"waiting": self.delivery, "seconds": round(delay, 1)}

    def _dead_letter(self, exc: Exception, *, attempts: int | None = None, first: int | None = None, reason: str | None = None) -> dict:
        if attempts is None:
            attempts, first = self.rt.lanes.attempts(self.delivery)
        body = letter(
            self.delivery, self.record, reason or _reason(exc), response=_response(exc), attempts=attempts + 1, first_failure_ms=first
        )
        self._outcome("dead_lettered", attempts + 1, reason=body["reason"])
        if self.action.deletes_person:  # its requester learns that it failed, and why
            self.rt.deletions.failed(self.record, body["reason"], self.delivery)
        self._send_next(self.rt.lanes.finish(self.person, self.delivery, "dead_lettered", body))
        return {"dead_lettered": self.delivery, "reason": body["reason"]}

    def _send_next(self, head: str | None, claimed: Claimed | None = None) -> None:
        """Run ``head`` in this task if its chain takes it (always, if claimed for it), else send a task."""
        if head and not self.chain.take(head, claimed):
            dispatch(self.task.app, self.person, head)

    def _outcome(self, status: str, attempts: int, *, reason: str | None = None, calls: int | None = None) -> None:
        """One log line per delivery outcome (person, action, status, attempts), and its sample (store/outcomes.py)."""
        self._sample(status, attempts, reason, calls)
        extra = {
            "person": self.person,
            "action": self.action.name,
            "status": status,
            "attempts": attempts,
            "message_id": self.record["event"].get("messageId"),
            "reason": reason,
            "calls": calls,
        }
        level = logging.WARNING if status == "dead_lettered" else logging.INFO
        log.log(
            level,
            "%s %s %s (attempts=%d)%s",
            status,
            self.action.name,
            self.person,
            attempts,
            f": {reason}" if reason else "",
            extra={"delivery": extra},
        )

    def _sample(self, status: str, attempts: int, reason: str | None, calls: int | None) -> None:
        event = self.record["event"]
        entry: dict[str, Any] = {
            "delivery": self.delivery,
            "action": self.action.name,
            "mapping": self.record.get("mapping"),
            "message_id": event.get("messageId"),
            "status": status,
            "attempts": attempts,
            "reason": reason,
            "calls": calls,
            "latency_s": _since(event.get("receivedAt")),
        }
        if status != "delivered" and self.last_response is not None:
            entry["exchange"] = exchange_of(self.last_response)
        self.rt.outcomes.record(self.person, entry)


def _since(received_at: Any) -> float | None:
    """Seconds from the event's acceptance until now."""
    try:
        return round(time.time() - datetime.fromisoformat(str(received_at).replace("Z", "+00:00")).timestamp(), 3)
    except ValueError:
        return None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _response(exc: Exception) -> dict | None:
    if isinstance(exc, IntercomError) and exc.status is not None:
        return {"status": exc.status, "body": exc.body}
    return None


def _ids(event: dict) -> tuple[Any, Any]:
    return event.get("userId"), _anonymous_id(event)


def _merge_fields(earlier: dict, later: dict) -> dict:
    """Field by field, later values winning; custom attributes key by key, as Intercom keeps them."""
    merged = {**earlier, **later}
    before, after = earlier.get("custom_attributes"), later.get("custom_attributes")
    if isinstance(before, dict) and isinstance(after, dict):
        merged["custom_attributes"] = {**before, **after}
    return merged


def _anonymous_id(event: dict) -> str | None:
    """The anonymous id an event ties to its person: an alias's previousId counts as one."""
    if event.get("type") == "alias" and not event.get("anonymousId"):
        return _str(event.get("previousId"))
    return _str(event.get("anonymousId"))


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
