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
the broker URL (redis:// or rediss://) still says where Redis is.  For a
``sentinel://`` REDIS_URL (worker/store/connect.py) it is the same channel on
kombu's Sentinel transport, which asks the Sentinels for the master whenever
it connects, so the door and the workers follow a failover.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from celery import Celery
from kombu import Connection
from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps as kombu_dumps
from redis.sentinel import Sentinel

from worker.settings import Settings
from worker.store.connect import MasterConnection, celery_broker_url, is_sentinel, parse_sentinel
from worker.task_names import INGEST_TASK, SWEEP_TASK
from worker.timers import VISIBILITY_TIMEOUT_SECONDS

__all__ = [
    "INGEST_TASK",
    "SENTINEL_TRANSPORT",
    "SWEEP_TASK",
    "TRANSPORT",
    "ClosedChannelError",
    "PutCollector",
    "broker_config",
    "publisher_app",
]


class ClosedChannelError(redis.ConnectionError):
    """A command on a channel its transport has closed (the connection to Redis was lost).

    A redis-py ``ConnectionError``, so one of kombu's connection errors: what
    Celery expects of a lost connection (an acknowledgement is logged as not
    made, a publish is retried on a new channel), not a crash.
    """


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    # kombu's private method; the stubs of celery-types leave it out.
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        """kombu's connection parameters, or ClosedChannelError once the channel or its transport is closed.

        When the connection is lost, Celery's consumer closes its connection:
        kombu sets each channel's ``connection`` to None, or, when closing a
        channel failed for want of Redis, the transport's ``client``.  A late
        acknowledgement (a task that finished meanwhile: Celery runs its ack in
        the worker's event loop) then asks the closed channel for a new pool,
        and kombu's ``_connparams`` raised AttributeError on ``None.hostname``,
        which Celery takes for an unrecoverable error: the worker exited.  As a
        connection error, Celery logs the ack as not made; the message stays in
        kombu's ``unacked`` hash (or was put back on the queue when the channel
        closed) and is delivered again, where the delivery's claim or the
        ingest's messageId makes the second run a no-op.
        """
        transport = self.connection
        if transport is None or transport.client is None:
            raise ClosedChannelError("the broker channel is closed: its connection to Redis was lost")
        return super()._connparams(asynchronous)  # type: ignore[misc]

    def close(self) -> None:
        """kombu's close, and the channel's connections let go of even when that close fails.

        kombu's close stops at the first command Redis does not answer (reading
        the BRPOP in flight, deleting the remote-control queue) before it
        disconnects the channel's pools: while Redis was away each of the
        consumer's many reconnects left its connections open (CLOSE-WAIT to the
        dead server and, on Sentinel, ESTABLISHED to the Sentinels), about 150
        descriptors per failover in the soak, which ends in "Too many open
        files", a worker Celery stops.
        """
        try:
            super().close()
        finally:
            self._disconnect_pools()  # type: ignore[attr-defined]  # kombu's; the stubs leave it out
            self._close_clients()  # type: ignore[attr-defined]

    # kombu's Channel has _create_client; the stubs of celery-types leave its private methods out.
    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own client (BRPOP), built once per channel by kombu
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        client = self._sync_client
        # The pool is rebuilt after a fork or a lost connection; follow it.
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()  # type: ignore[misc]
        return client


class ClosingTransport:
    """What the relay's transports add to kombu's: the channels of a connection Celery failed to set up are closed."""

    # kombu's Redis transport method; the stubs of celery-types leave it out.
    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """kombu's registration, closing the connection's channels when it fails.

        Registering restores the visible messages, which takes a lock (a
        write).  During a failover the master refuses writes (NOREPLICAS)
        and Celery's consumer fails to connect dozens of times over; it never
        got the connection, so never closed it, and each failed attempt kept
        its channel's pools and Sentinel clients open: about 120 descriptors
        per Sentinel failover, a worker out of descriptors after a dozen.
        """
        try:
            super().register_with_event_loop(connection, loop)  # type: ignore[misc]
        except Exception:
            self.close_connection(connection)
            raise

    def close_connection(self, connection: Any) -> None:
        """kombu's, with every channel closed even when closing one fails for want of Redis (the first error raised after)."""
        kombu_transport: Any = self
        kombu_transport.cycle.close()
        failed: Exception | None = None
        for channels in (kombu_transport._avail_channels, kombu_transport.channels):
            while channels:
                try:
                    channels.pop().close()
                except Exception as exc:  # noqa: BLE001 - the others are closed all the same
                    failed = failed or exc
        if failed is not None:
            raise failed


class Transport(ClosingTransport, kombu_redis.Transport):
    Channel = Channel


class PutCollector:
    """While open, the messages a kombu Redis channel would LPUSH are kept here instead.

    ``puts`` holds ``(queue key, payload)`` in publishing order, with the key
    and payload kombu's ``_put`` would have used (the queue's priority step,
    kombu's JSON), so that the caller can store them together with other
    writes in one atomic step.  Nothing is sent to Redis for them.

    It works on any kombu Redis channel (the door may be given a Celery app on
    kombu's own transport) by shadowing ``_put`` on that one channel object,
    so the channel must be held by this thread alone while it is open (a
    producer taken from the app's pool is).  Publish with ``retry=False``: a
    publish kombu retries may move to a revived channel, which would push.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.puts: list[tuple[str, str]] = []

    def __enter__(self) -> PutCollector:
        self.channel._put = self._put  # the instance attribute hides the class's method
        return self

    def __exit__(self, *exc: object) -> None:
        del self.channel._put

    def _put(self, queue: str, message: dict, **kwargs: Any) -> None:
        channel = self.channel
        if queue in (getattr(channel, "_expires", None) or {}):
            # kombu also renews an expiring queue's TTL on every push; no relay queue expires.
            raise NotImplementedError(f"queue {queue!r} expires; its messages can't be collected")
        key = channel._q_for_pri(queue, channel._get_message_priority(message, reverse=False))
        self.puts.append((key, kombu_dumps(message)))  # the JSON kombu's _put writes


#: The value of Celery's ``broker_transport`` setting that selects this transport.
TRANSPORT = f"{__name__}:Transport"


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The channel above on the master a group of Sentinels names (a ``sentinel://`` REDIS_URL).

    Its connections let go of a master that refuses writes for want of
    replicas, as the door's and the stores' do (worker/store/connect.py).
    The Sentinels are the transport option ``sentinels``, not a
    ``;``-separated broker URL, which kombu would leave for its own transport
    at the first lost connection (``celery_broker_url``).
    """

    from_transport_options = kombu_redis.SentinelChannel.from_transport_options + ("sentinels",)
    connection_class = MasterConnection
    # Set from the transport options by kombu's Channel.
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = ""

    # As kombu's own, with the Sentinels taken from the transport option.
    def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
        params = self._connparams(asynchronous)  # our Channel declares kombu's private _connparams
        params.pop("host", None)
        params.pop("port", None)
        addresses = [(host, port) for host, port in self.sentinels]
        sentinel = Sentinel(addresses, sentinel_kwargs=getattr(self, "sentinel_kwargs", None), **params)
        if asynchronous:  # kombu closes them with the pools (_disconnect_pools)
            self._async_sentinel_manager = sentinel
        else:
            self._sentinel_manager = sentinel
        credentials = {key: params[key] for key in ("username", "password") if key in params}
        return sentinel.master_for(self.master_name, redis.Redis, **credentials).connection_pool


class SentinelTransport(ClosingTransport, kombu_redis.SentinelTransport):
    Channel = SentinelChannel


#: ``broker_transport`` for a REDIS_URL that names a Sentinel group.
SENTINEL_TRANSPORT = f"{__name__}:SentinelTransport"


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
    sentinel = is_sentinel(settings.redis_url)
    return {
        "broker_url": celery_broker_url(settings.redis_url),
        "broker_transport": SENTINEL_TRANSPORT if sentinel else TRANSPORT,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": _transport_options(settings.redis_url),
        "task_serializer": "json",
        "accept_content": ["json"],
        # No "task-sent" events: Flower shows tasks from the worker's events, and
        # a sent event would double the publishes of every lane hop.
        "task_send_sent_event": False,
    }


#: A broker connection whose Redis does not answer for this long is taken for lost.  kombu's
#: default is to wait forever: a worker whose consumer sent a command to a master that then
#: hung (or vanished without closing the connection) stopped taking messages for good, while
#: its liveness thread, on another client, kept telling the sweep it was alive.  As a timeout
#: (one of kombu's connection errors) Celery reconnects, asking the Sentinels again.  Far
#: above any command's time (the consumer's BRPOP waits 1 s).
BROKER_SOCKET_TIMEOUT = 10.0


def _transport_options(redis_url: str) -> dict[str, Any]:
    """The visibility timeout and socket timeouts; for a Sentinel group, the master's name and how to ask the Sentinels."""
    options: dict[str, Any] = {
        "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
        "socket_timeout": BROKER_SOCKET_TIMEOUT,
        "socket_connect_timeout": BROKER_SOCKET_TIMEOUT,
    }
    if is_sentinel(redis_url):
        group = parse_sentinel(redis_url)
        options["master_name"] = group.master
        options["sentinels"] = [list(address) for address in group.sentinels]
        options["sentinel_kwargs"] = group.sentinel_kwargs()
    return options


def publisher_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name (the door, the CLI): no task is registered."""
    app = Celery("intercom_relay", set_as_current=False)
    app.conf.update(**broker_config(settings))
    return app
