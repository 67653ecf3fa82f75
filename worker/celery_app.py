"""The Celery application, built from settings.

Choices that keep the guarantees (DESIGN.md):

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
"""

from __future__ import annotations

from celery import Celery

from worker.broker import TRANSPORT
from worker.settings import Settings
from worker.tasks import SWEEP_TASK, register_tasks

#: Threads per worker process: enough calls in flight to fill Intercom's budget
#: (166 calls/s at ~150 ms each needs ~25) with room for slower answers.
DEFAULT_CONCURRENCY = 32

#: How often beat runs the sweep: a retry or lost lane waits at most this long
#: beyond its due time.
SWEEP_INTERVAL_SECONDS = 1.0


def create_app(settings: Settings) -> Celery:
    app = Celery("intercom_relay", set_as_current=False)
    app.conf.update(
        broker_url=settings.redis_url,
        broker_transport=TRANSPORT,  # kombu's Redis transport, reusing its clients (worker/broker.py)
        broker_connection_retry_on_startup=True,
        # A message taken by a worker that died comes back after this long.
        # It must outlive our longest countdown (60 s; longer waits sleep in
        # Redis) and our longest task (a few calls of at most 30 s each); ten
        # minutes instead of Celery's hour bounds how long a SIGKILLed worker's
        # unacknowledged ingest messages hold their people's lanes.
        broker_transport_options={"visibility_timeout": 600},
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        # No "task-sent" events: Flower shows tasks from the worker's events, and
        # a sent event would double the publishes of every lane hop.
        task_send_sent_event=False,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=DEFAULT_CONCURRENCY,
        worker_hijack_root_logger=False,
        beat_schedule={"sweep": {"task": SWEEP_TASK, "schedule": SWEEP_INTERVAL_SECONDS}},
    )
    register_tasks(app)
    return app
