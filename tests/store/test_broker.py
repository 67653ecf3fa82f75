"""The Celery transport (worker/broker.py) against the suite's real Redis."""

from __future__ import annotations

import uuid

from worker.broker import Channel, Transport
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
