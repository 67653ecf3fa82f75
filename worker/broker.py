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

import json
import time
from typing import Any

from celery import Celery
from kombu import Connection
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


#: An ingest message a worker took and has not acknowledged after this long is
#: put back on the queue by the sweep: its worker died (or lost Redis) while
#: holding it.  An ingest takes milliseconds, and appending twice is harmless,
#: so this need not wait for the visibility timeout, while the people in it
#: wait for their events to reach their lanes.
STALE_INGEST_SECONDS = 20.0


def restore_stale_ingests(connection: Connection, older_than: float = STALE_INGEST_SECONDS, limit: int = 100) -> int:
    """Put back on the queue the ingest messages taken more than ``older_than`` s ago and never acknowledged.

    Celery's Redis transport keeps a taken message in its ``unacked`` hash,
    indexed by when it was taken, until the task acknowledges it; it restores
    the forgotten ones only after the visibility timeout (ten minutes here).
    Returns how many were restored.
    """
    channel: Any = connection.default_channel  # kombu's Redis channel: its unacked keys and QoS
    client = channel.client
    tags = client.zrangebyscore(channel.unacked_index_key, "-inf", time.time() - older_than, start=0, num=limit)
    restored = 0
    for tag in tags:
        raw = client.hget(channel.unacked_key, tag)
        if raw and json.loads(raw)[0].get("headers", {}).get("task") == INGEST_TASK:
            channel.qos.restore_by_tag(tag, client)
            restored += 1
    return restored


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
