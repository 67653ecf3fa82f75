"""Celery's Redis transport, with one Redis client per channel instead of one per command.

kombu's Redis channel builds a new ``redis.Redis`` object for every publish,
acknowledgement and event it sends (``Channel._create_client``).  Building one
copies redis-py's table of response callbacks, which made up about a tenth of
a worker's CPU in ``bench/delivery.py`` (py-spy, GIL samples): a task costs
several such publishes and acks.  A client object holds no connection of its
own (it borrows one from the channel's pool per command) and redis-py allows
one to be shared by threads, so a channel keeps one and reuses it.

The transport is chosen by ``broker_transport`` in ``worker/celery_app.py``;
the broker URL (redis:// or rediss://) still says where Redis is.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the consumer's own client (BRPOP), built once per channel by kombu
            return super()._create_client(asynchronous=True)
        client = self._sync_client
        # The pool is rebuilt after a fork or a lost connection; follow it.
        if client is None or client.connection_pool is not self.pool:
            client = self._sync_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


#: The value of Celery's ``broker_transport`` setting that selects this transport.
TRANSPORT = f"{__name__}:Transport"
