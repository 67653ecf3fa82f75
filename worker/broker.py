"""The queue between the door and the workers: task names, broker settings, the transport.

What a producer and a worker must agree on lives here (the task names in
``worker/task_names.py``), and nothing else: a producer sends
``intercom.ingest`` by name through :func:`publisher_app`,
which needs only Redis and Celery, not the worker's tasks, actions or
runtime.  ``worker/celery_app.py`` builds the worker's app on the same
:func:`broker_config`.

The transport: Celery's Redis transport, with one Redis client per channel
instead of one per command.

kombu's Redis channel builds a new ``redis.Redis`` object for every publish,
acknowledgement and event it sends (``Channel._create_client``).  Building one
copies redis-py's table of response callbacks, which made up about a tenth of
a worker's CPU in ``bench/delivery.py`` (py-spy, GIL samples): a task costs
several such publishes and acks.  A client object holds no connection of its
own (it borrows one from the channel's pool per command) and redis-py allows
one to be shared by threads, so a channel keeps one and reuses it.

The transport is chosen by ``broker_transport`` in :func:`broker_config`;
the broker URL (redis:// or rediss://) still says where Redis is.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.transport import redis as kombu_redis

from worker.settings import Settings
from worker.task_names import INGEST_TASK, SWEEP_TASK

__all__ = ["INGEST_TASK", "SWEEP_TASK", "TRANSPORT", "broker_config", "publisher_app"]

#: A message taken by a worker that died comes back after this long.  It must
#: outlive the longest countdown and the longest task (worker/policy.py checks
#: it when a worker starts); ten minutes instead of Celery's hour bounds how
#: long a SIGKILLed worker's unacknowledged ingest messages hold their lanes.
VISIBILITY_TIMEOUT_SECONDS = 600


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    # kombu's Channel has _create_client; the stubs of celery-types leave its private methods out.
    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own client (BRPOP), built once per channel by kombu
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        # The pool is rebuilt after a fork or a lost connection; follow it.
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


#: The value of Celery's ``broker_transport`` setting that selects this transport.
TRANSPORT = f"{__name__}:Transport"


def broker_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings a producer and a worker share: where the queue is and how messages look."""
    return {
        "broker_url": settings.redis_url,
        "broker_transport": TRANSPORT,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS},
        "task_serializer": "json",
        "accept_content": ["json"],
        # No "task-sent" events: Flower shows tasks from the worker's events, and
        # a sent event would double the publishes of every lane hop.
        "task_send_sent_event": False,
    }


def publisher_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (the door, the CLI): no task is registered."""
    app = Celery("intercom_relay", set_as_current=False)
    app.conf.update(**broker_config(settings))
    return app
