"""The Celery transport (worker/broker.py) against the suite's real Redis."""

from __future__ import annotations

import logging
import socket
import uuid
from typing import Any

import pytest
import redis as redis_lib
from kombu.exceptions import OperationalError

from worker.broker import INGEST_TASK, Channel, ClosedChannelError, Transport, publisher_app, restore_stale_ingests
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


# -- a lost connection: what runs late on the channel Celery closed ----------------------


def taken_on_a_closed_channel(connection: Any, queue: str, redis: Any, teardown: str) -> Any:
    """A message a worker took, on a channel then torn down as Celery's consumer does when Redis goes away.

    ``teardown``: "closed", the channel closed while Redis answered (kombu put
    the unacknowledged message back on the queue); "forgotten", Redis away, so
    only the transport's part ran (the pools dropped, the channel's connection
    None) and the message stays in the ``unacked`` hash; "transport", closing
    the channel failed and the connection's transport was let go (its client None).
    """
    channel: Any = connection.channel()
    message = channel.basic_get(queue, no_ack=False)
    assert message is not None and redis.llen(queue) == 0
    if teardown == "closed":
        channel.close()
    else:
        channel._disconnect_pools()  # kombu's close: the pools go first
        if teardown == "forgotten":
            connection.transport.close_channel(channel)  # and the channel forgets its connection last
        else:
            connection._do_close_transport()  # kombu's Connection.collect, last: the transport forgets its client
    return message


@pytest.mark.parametrize("teardown", ["forgotten", "transport"])
def test_a_late_ack_on_a_closed_channel_is_a_connection_error_and_the_message_comes_back(redis_url, redis, teardown):
    app = publisher_app(Settings(redis_url=redis_url))
    queue = f"test-closed-{uuid.uuid4().hex}"
    try:
        app.send_task(INGEST_TASK, args=[[]], queue=queue)
        with app.connection_for_write() as connection:
            errors = connection.connection_errors
            message = taken_on_a_closed_channel(connection, queue, redis, teardown)
            # kombu's own _connparams raised AttributeError ('NoneType' has no 'hostname'): the worker exited.
            with pytest.raises(ClosedChannelError):
                message.ack()
            message.ack_log_error(logging.getLogger("test"), errors)  # as Celery's event loop acks: logged, not raised
        # Not acknowledged, so not lost: the sweep puts the ingest back (a delivery comes back after the visibility timeout).
        with app.connection_for_write() as connection:
            assert restore_stale_ingests(connection, older_than=0) == 1
        assert redis.llen(queue) == 1
    finally:
        redis.delete(queue)


def test_a_late_ack_after_the_close_restored_the_message_leaves_it_on_the_queue(redis_url, redis):
    app = publisher_app(Settings(redis_url=redis_url))
    queue = f"test-closed-{uuid.uuid4().hex}"
    try:
        app.send_task(INGEST_TASK, args=[[]], queue=queue)
        with app.connection_for_write() as connection:
            message = taken_on_a_closed_channel(connection, queue, redis, "closed")
            assert redis.llen(queue) == 1  # kombu put it back when the channel closed
            message.ack_log_error(logging.getLogger("test"), connection.connection_errors)
            assert redis.llen(queue) == 1  # delivered again: the second run finds its work done
    finally:
        redis.delete(queue)


def test_a_reject_or_a_publish_on_a_closed_channel_is_a_connection_error(redis_url, redis):
    app = publisher_app(Settings(redis_url=redis_url))
    queue = f"test-closed-{uuid.uuid4().hex}"
    try:
        app.send_task(INGEST_TASK, args=[[]], queue=queue)
        with app.connection_for_write() as connection:
            message = taken_on_a_closed_channel(connection, queue, redis, "forgotten")
            with pytest.raises(ClosedChannelError):
                message.reject(requeue=True)
            message.reject_log_error(logging.getLogger("test"), connection.connection_errors, requeue=True)
            with pytest.raises(ClosedChannelError):
                message.channel._put(queue, {"body": "x"})
            assert issubclass(ClosedChannelError, tuple(connection.connection_errors))
    finally:
        redis.delete(queue)


def test_a_broker_that_does_not_answer_is_a_connection_error_not_a_wait_forever(monkeypatch):
    """A Redis that accepts the connection and never answers (hung, or gone without a FIN): the publish gives up."""
    monkeypatch.setattr("worker.broker.BROKER_SOCKET_TIMEOUT", 0.3)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never reads or answers
        app = publisher_app(Settings(redis_url=f"redis://127.0.0.1:{silent.getsockname()[1]}/0"))
        with app.connection_for_write() as connection:
            # kombu's OperationalError wraps the timeout once its connection gives up: the door answers 503.
            with pytest.raises((OperationalError, *connection.connection_errors)):
                app.send_task(INGEST_TASK, args=[[]], retry=False, connection=connection)


def test_a_channel_closed_while_redis_is_away_lets_go_of_its_connections(redis_url, monkeypatch):
    app = publisher_app(Settings(redis_url=redis_url))
    with app.connection_for_write() as connection:
        channel: Any = connection.channel()
        channel._create_client().ping()  # a connection in the pool of publishes and acks
        channel.client.ping()  # and one in the consumer's pool
        pools = [channel._pool, channel._async_pool]
        opened = [c for pool in pools for c in [*pool._available_connections, *pool._in_use_connections]]
        assert opened and all(c._sock is not None for c in opened)

        def away() -> None:
            raise redis_lib.ConnectionError("Connection closed by server.")

        monkeypatch.setattr(channel, "_brpop_read", away)  # the BRPOP in flight when Redis went away
        channel._in_poll = True
        with pytest.raises(redis_lib.ConnectionError):
            channel.close()  # kombu's close raises here, before it disconnects its pools
        assert all(c._sock is None for c in opened), "a closed channel kept a connection to Redis open"
