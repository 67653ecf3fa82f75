"""A redis-server of a test's own that can be SIGKILLed and started again on the same port and files."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from demo.embedded_redis import find_redis_server, free_port


@dataclass
class KillableRedis:
    """Append-only on; ``appendfsync`` as Redis is told to run it (``always`` or ``everysec``).

    A SIGKILL of the process (not of the machine) loses nothing Redis
    acknowledged with either: Redis writes the append-only file before it
    answers, and the written pages outlive the process.
    """

    directory: Path
    appendfsync: str = "always"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync]
        self.process = subprocess.Popen([find_redis_server(), *args, "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                answering = client.info("server")["process_id"]
            except redis_lib.ConnectionError:
                time.sleep(0.1)
                continue
            # Another process of the parallel suite may have taken the port while this server was down.
            assert answering == self.process.pid, f"port {self.port} is another redis-server's (pid {answering})"
            return
        raise AssertionError("redis-server did not come back")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
