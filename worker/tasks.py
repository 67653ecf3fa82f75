"""The Celery tasks: thin, like a web view: they read arguments and call the code that decides.

* ``intercom.ingest``: moves accepted events from the queue into their
  people's lanes, one delivery per triggered mapping.
* ``intercom.identify_contact``, ``intercom.track_event``,
  ``intercom.identify_company``, ``intercom.delete_person``: one task per
  action of the table (worker/actions), each running the head of one lane
  through its action and deciding what happens next from the outcome.  Their arguments are the
  person and the delivery id only, so Flower shows who and what, and no
  secret ever travels in a task.
* ``intercom.sweep`` (celery beat): resends lanes whose worker died or whose
  retry is due, dead-letters parked events past the hold time, trims dead
  letters, probes a paused destination, and snapshots the counters for the
  console's charts (store/history.py).

The decisions (which outcome leads where) live in ``delivery.py``.
"""

from __future__ import annotations

import logging
import time

from celery import Celery, Task
from redis.exceptions import RedisError

from worker.actions import ACTIONS
from worker.broker import INGEST_TASK, SWEEP_TASK, restore_stale_ingests
from worker.delivery import TaskLike, deliver, dispatch
from worker.liveness import reap_silent_workers
from worker.mappings import select
from worker.runtime import Runtime, get_runtime
from worker.store.connect import check_replicated, replicas_to_wait_for, wait_for_replicas
from worker.store.history import History
from worker.store.inflight import InflightGuard, broker_keys
from worker.store.lanes import person_of

log = logging.getLogger("worker.tasks")

#: The longest an ingest task waits between two tries while Redis does not answer.
INGEST_RETRY_CAP_SECONDS = 10.0


def register_tasks(app: Celery) -> None:
    """Register every task on ``app`` (explicitly, no import-time registration)."""
    app.task(name=INGEST_TASK, bind=True, acks_late=True)(ingest)
    for action in ACTIONS.values():
        app.task(name=action.task_name, bind=True, acks_late=True, max_retries=None)(run_action)
    app.task(name=SWEEP_TASK, bind=True, ignore_result=True)(sweep)


def ingest(task: TaskLike, envelopes: list[dict]) -> dict:
    """Append each accepted event to its person's lane; send the lanes this woke.

    A Redis that does not answer is waited for, never given up on: a failed
    ingest task would be acknowledged as done once Redis answers again, and
    its events would never reach their lanes.  Appending is idempotent (an
    acceptance seen again changes nothing), so trying again is safe.
    """
    wait = 0.5
    while True:
        try:
            return _ingest(task, envelopes)
        except RedisError as exc:
            log.warning("ingest: Redis does not answer (%s); trying again in %.0f s", type(exc).__name__, wait)
            time.sleep(wait)
            wait = min(wait * 2, INGEST_RETRY_CAP_SECONDS)


def _ingest(task: TaskLike, envelopes: list[dict]) -> dict:
    rt = get_runtime()
    mappings = list(rt.mappings.values())
    pipe = rt.redis.pipeline(transaction=False)
    people = []
    for envelope in envelopes:
        seq, event = envelope["seq"], envelope["event"]
        person = person_of(event)
        chosen = select(mappings, event)
        deliveries = [(rt.lanes.delivery_id(seq, i, m.action), _record(person, seq, m.name, m.action, event)) for i, m in enumerate(chosen)]
        rt.lanes.ingest(seq, person, str(event.get("messageId") or seq), deliveries, pipe=pipe)
        people.append(person)
    # On a Sentinel group, done only once a replica holds it: the old master's last writes are lost in a failover.
    replicas = replicas_to_wait_for(rt.settings.redis_url)
    wait_for_replicas(pipe, replicas)
    woken = [(person, head) for person, head in zip(people, check_replicated(pipe.execute(), replicas)) if head]
    for person, head in woken:
        dispatch(task.app, person, head)
    return {"events": len(envelopes), "lanes_woken": len(woken)}


def run_action(task: TaskLike, person: str, delivery: str) -> dict:
    """Deliver the head of ``person``'s lane, if ``delivery`` is still it."""
    return deliver(task, get_runtime(), person, delivery)


def sweep(task: Task) -> dict:
    """Periodic housekeeping; safe to run on any number of beat ticks at once."""
    rt = get_runtime()
    woken = rt.lanes.sweep()
    for person, head in woken:
        dispatch(task.app, person, head)
    with task.app.connection_for_write() as connection:
        # A dead worker's messages back on the queue and its lanes' leases ended (sent again next tick).
        reap_silent_workers(connection, rt.redis, rt.settings)
        restored = restore_stale_ingests(connection)
        # In-flight counts stuck above zero (or below it) set to what is really on its way, every ~30 s.
        InflightGuard(rt.redis, rt.lanes).repair_if_due(broker_keys(connection), wake=lambda person, head: dispatch(task.app, person, head))
    expired = rt.lanes.expire_parked()
    trimmed = rt.dead_letters.trim()
    resumed = _probe_pause(rt)
    History(rt.redis).snapshot_if_due(rt.budget.key)  # the console's charts: once per 10-s window
    if woken or restored or expired or trimmed or resumed:
        log.info(
            "sweep: resent %d lanes, restored %d ingest messages, dead-lettered %d parked, trimmed %d dead letters%s",
            len(woken),
            restored,
            expired,
            trimmed,
            ", destination resumed" if resumed else "",
        )
    return {"resent": len(woken), "restored_ingests": restored, "expired_parked": expired, "trimmed": trimmed}


def _record(person: str, seq: int, mapping: str, action: str, event: dict) -> dict:
    return {"person": person, "seq": seq, "mapping": mapping, "action": action, "event": event}


def _probe_pause(rt: Runtime) -> bool:
    """While the destination is paused for a bad token, check whether it works again."""
    paused = rt.pause.reason()
    if not paused or not rt.pause.probe_due():
        return False
    try:
        rt.client.me()
    except Exception as exc:  # any failure: still paused; say so once per probe
        log.error("destination still paused: Intercom refuses the access token (%s)", type(exc).__name__)
        return False
    rt.pause.resume()
    return True
