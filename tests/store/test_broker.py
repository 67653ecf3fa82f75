"""The Celery transport (worker/broker.py) against the suite's real Redis."""

from __future__ import annotations

import uuid
from typing import Any

from worker.broker import INGEST_TASK, Channel, Transport, publisher_app, restore_stale_ingests
from worker.celery_app import create_app
from worker.settings import Settings


def test_the_app_uses_the_transport_and_a_channel_reuses_its_client(redis_url):
    app = create_app(Settings(redis_url=redis_url))
    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, Transport)
        channel = connection.default_channel
        assert isinstance(channel, Channel)
        assert channel._create_client() is channel._create_client()
        # After a fork or a lost connection kombu rebuilds the pool; the client follows it.
        before = channel._create_client()
        # kombu's Channel has _disconnect_pools (its after-fork hook); the kombu-stubs of celery-types leave it out.
        channel._disconnect_pools()  # type: ignore[attr-defined]
        assert channel._create_client() is not before
        assert channel._create_client().connection_pool is channel.pool


def test_messages_published_through_it_arrive(redis_url, redis):
    app = create_app(Settings(redis_url=redis_url))
    queue = f"test-broker-{uuid.uuid4().hex}"
    try:
        for n in range(3):
            app.send_task("intercom.test", args=[n], queue=queue)
        assert redis.llen(queue) == 3
    finally:
        redis.delete(queue)


def test_an_ingest_message_taken_and_never_acknowledged_is_put_back_by_the_sweep(redis_url, redis):
    app = publisher_app(Settings(redis_url=redis_url))
    queue = f"test-ingest-{uuid.uuid4().hex}"
    try:
        app.send_task(INGEST_TASK, args=[[]], queue=queue)
        app.send_task("intercom.track_event", args=["ann", "1:0T"], queue=queue)
        with app.connection_for_write() as connection:
            channel: Any = connection.default_channel  # kombu's Redis channel (the stubs type a generic one)
            # A worker takes both messages and dies without acknowledging them.
            taken = [channel.basic_get(queue, no_ack=False) for _ in range(2)]
            assert all(taken) and redis.llen(queue) == 0
            assert restore_stale_ingests(connection, older_than=60) == 0  # not stale yet
            assert restore_stale_ingests(connection, older_than=0) == 1  # the ingest only
            assert redis.llen(queue) == 1
            assert '"task": "intercom.ingest"' in redis.lindex(queue, 0)
            # (Closing this channel cleanly restores the rest: kombu does that; a dead worker cannot.)
    finally:
        redis.delete(queue)
