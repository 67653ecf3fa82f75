"""redis-server processes a test starts for itself (a master, a replica, a Sentinel), stopped by pid."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis as redis_lib

from demo.embedded_redis import find_redis_server
from tests.processes import wait_until


def start_server(args: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``redis-server args`` (a Sentinel with ``--sentinel``), once it answers a PING on ``port``."""
    with open(log, "ab") as out:
        process = subprocess.Popen([find_redis_server(), *args], stdout=out, stderr=subprocess.STDOUT)
    client = redis_lib.Redis(port=port, socket_connect_timeout=0.2)

    def answers() -> bool:
        assert process.poll() is None, f"redis-server on port {port} exited at start (see {log})"
        try:
            return bool(client.ping())
        except redis_lib.ConnectionError:
            return False

    wait_until(answers, 10, f"redis-server on port {port}")
    client.close()
    return process
