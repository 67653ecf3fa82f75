"""The worker's Celery application, built from settings.

Choices that keep the guarantees (docs/design.md):

* ``task_acks_late`` with ``task_reject_on_worker_lost``: a task's message
  is removed from Redis only once the task has finished, so a worker killed
  mid-call loses nothing (its message is delivered again, and the lane lease
  lets the sweep resend the lane sooner than the visibility timeout).
* ``worker_prefetch_multiplier = 1``: a worker takes only what it can run,
  so that a busy worker does not sit on other people's lanes.
* A threads pool with many slots: calls to Intercom are I/O bound (100-300 ms
  each); dozens in flight per process are needed to use the rate budget.
* Task events on, so Flower sees every task; no result backend (outcomes are
  counted in Redis and logged, and Flower reads events, not results).

The broker settings it shares with the producers are in ``worker/broker.py``.
"""

from __future__ import annotations

from celery import Celery

from worker.broker import SWEEP_TASK, broker_config
from worker.liveness import install as install_liveness
from worker.settings import Settings
from worker.tasks import register_tasks
from worker.timers import check_timers

#: Threads per worker process: enough calls in flight to fill Intercom's budget
#: (166 calls/s at ~150 ms each needs ~25) with room for slower answers.
DEFAULT_CONCURRENCY = 32

#: How often beat runs the sweep: a retry or lost lane waits at most this long
#: beyond its due time.
SWEEP_INTERVAL_SECONDS = 1.0


def create_app(settings: Settings) -> Celery:
    app = Celery("intercom_relay", set_as_current=False)
    check_timers(settings)  # refuses timers that would let a task run twice or a living worker be taken for dead
    app.conf.update(
        **broker_config(settings),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=DEFAULT_CONCURRENCY,
        worker_hijack_root_logger=False,
        # A message no worker can read is kept as a dead letter, not dropped (worker/consumer.py).
        worker_consumer="worker.consumer:Consumer",
        beat_schedule={"sweep": {"task": SWEEP_TASK, "schedule": SWEEP_INTERVAL_SECONDS}},
    )
    register_tasks(app)
    install_liveness(app)  # a worker beats and notes what it holds, so that the sweep frees it at its death
    return app
