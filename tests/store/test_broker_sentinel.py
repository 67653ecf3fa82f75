"""The broker on a Sentinel group keeps no connection of a consumer connect that failed.

While a failover is under way the master refuses writes (NOREPLICAS, for want
of the replica being promoted), and Celery's consumer fails to connect many
times over: registering with its event loop restores the visible messages,
which takes a lock, a write.  Celery never holds (so never closes) the
connection of a failed connect; each one kept its channel's pools and the
Sentinel clients that found the master, and a worker ran out of descriptors
after a dozen failovers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis as redis_lib
from kombu.asynchronous import Hub

from demo.embedded_redis import free_port
from tests.processes import stop
from tests.redis_servers import start_server
from worker.broker import publisher_app
from worker.settings import Settings
from worker.store.connect import MasterConnection

MASTER = "relay"


@pytest.fixture
def master_without_replica(tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    """A Sentinel watching a master that refuses writes (min-replicas-to-write 1, no replica): (URL, master port, Sentinel port)."""
    port, sentinel_port = free_port(), free_port()
    master = start_server(
        ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--min-replicas-to-write", "1"], port, tmp_path / "m.log"
    )
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor {MASTER} 127.0.0.1 {port} 1\n")
    sentinel = start_server([str(conf), "--sentinel"], sentinel_port, tmp_path / "s.log")
    try:
        yield f"sentinel://127.0.0.1:{sentinel_port}/0?master={MASTER}", port, sentinel_port
    finally:
        stop(sentinel, timeout=10)
        stop(master, timeout=10)


def _sockets_to(*ports: int) -> int:
    return sum(1 for c in psutil.Process().net_connections() if c.raddr and c.raddr.port in ports)


def test_a_consumer_connect_refused_by_a_master_without_replicas_leaves_no_socket_open(master_without_replica):
    url, port, sentinel_port = master_without_replica
    app = publisher_app(Settings(redis_url=url))
    hub = Hub()
    before = _sockets_to(port, sentinel_port)
    for _ in range(10):
        # What Celery's consumer does to connect (Consumer.connect); it drops the connection when this raises.
        connection = app.connection_for_read()
        with pytest.raises(redis_lib.ConnectionError, match="no replica"):
            connection.transport.register_with_event_loop(connection.connection, hub)
    assert _sockets_to(port, sentinel_port) - before <= 0


class MovingMaster:
    """What a MasterConnection asks of its pool, with a master that moves when told."""

    is_master = True
    check_connection = False

    def __init__(self, port: int) -> None:
        self.port = port

    def get_master_address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


def test_a_dropped_master_connection_reconnects_to_the_master_the_sentinels_name_now(tmp_path):
    """Not to its last address (redis-py reconnects by it when a command finds the connection dropped)."""
    old_port, new_port = free_port(), free_port()
    servers = [
        start_server(["--port", str(port), "--bind", "127.0.0.1", "--save", ""], port, tmp_path / f"{port}.log")
        for port in (old_port, new_port)
    ]
    try:
        pool = MovingMaster(old_port)
        connection = MasterConnection(connection_pool=pool)
        connection.connect()
        assert connection.port == old_port
        pool.port = new_port  # a failover
        connection.disconnect()  # as after READONLY or NOREPLICAS
        connection.send_command("PING")  # a pipeline's next command on the same connection
        assert connection.read_response() in (b"PONG", "PONG")
        assert connection.port == new_port
    finally:
        for server in servers:
            stop(server, timeout=10)
