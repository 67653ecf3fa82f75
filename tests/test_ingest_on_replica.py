"""On a Sentinel group an ingest is done only once a replica holds what it wrote.

Sentinel promotes the replica without stopping the master, and what the old
master acknowledged in its last moment never reaches the new one: an ingest
written there, its message then acknowledged, lost its events ("2 events on
their way, 0 found").  A replica stopped (SIGSTOP) stands for one that will
never see the writes: the ingest must fail, to be tried again, not succeed.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demo.embedded_redis import free_port
from tests.fixtures_fake import DEFAULT_TOKEN
from tests.processes import stop, wait_until
from tests.redis_servers import start_server
from worker import runtime as runtime_module
from worker import tasks
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.connect import NotOnReplica, check_replicated, connect, replicas_to_wait_for

MASTER = "relay"


class Sent:
    """A task's app that only notes what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    @property
    def app(self) -> Sent:
        return self

    def send_task(self, name: str, *, args: Any = None, countdown: float | None = None) -> None:
        self.sent.append((name, args))

    def retry(self, **_: Any) -> Exception:
        raise AssertionError("no retry expected")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A master, its replica and one Sentinel: (the sentinel:// URL, the replica's process)."""
    port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    master = start_server(
        ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--repl-diskless-sync-delay", "0"], port, tmp_path / "m.log"
    )
    replica = start_server(
        ["--port", str(replica_port), "--bind", "127.0.0.1", "--save", "", "--replicaof", "127.0.0.1", str(port)],
        replica_port,
        tmp_path / "r.log",
    )
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\nsentinel monitor {MASTER} 127.0.0.1 {port} 1\n")
    sentinel = start_server([str(conf), "--sentinel"], sentinel_port, tmp_path / "s.log")
    url = f"sentinel://127.0.0.1:{sentinel_port}/0?master={MASTER}"
    client = connect(url, decode_responses=True)
    wait_until(lambda: client.info("replication").get("slave0", {}).get("state") == "online", 10, "the replica to be in step")
    try:
        yield url, replica
    finally:
        replica.send_signal(signal.SIGCONT)
        for process in (sentinel, replica, master):
            stop(process, timeout=10)


@pytest.fixture
def runtime(group, fake_intercom_factory, monkeypatch) -> Iterator[Runtime]:
    url, _ = group
    built = Runtime.build(Settings(redis_url=url, api_url=fake_intercom_factory().url, access_token=DEFAULT_TOKEN))
    monkeypatch.setattr(runtime_module, "_runtime", built)
    yield built
    built.close()


def envelopes() -> list[dict]:
    return [{"seq": 1, "event": {"type": "track", "userId": "u1", "messageId": "m1", "event": "Signed Up"}}]


def test_an_ingest_no_replica_acknowledged_fails_and_is_done_once_one_holds_it(group, runtime):
    _, replica = group
    task = Sent()
    replica.send_signal(signal.SIGSTOP)  # connected, so the master takes writes, but it never reads them
    with pytest.raises(NotOnReplica):
        tasks._ingest(task, envelopes())
    replica.send_signal(signal.SIGCONT)
    assert tasks._ingest(task, envelopes())["events"] == 1  # tried again: the replica now holds it
    assert runtime.counters.snapshot()["ingested"] == 1


def test_one_redis_is_not_asked_for_replicas():
    assert replicas_to_wait_for("redis://127.0.0.1:6379/0") == 0
    assert replicas_to_wait_for("sentinel://h1/0?master=m") == 1
    assert check_replicated(["a", "b"], 0) == ["a", "b"]
    assert check_replicated(["a", 1], 1) == ["a"]
    with pytest.raises(NotOnReplica):
        check_replicated(["a", 0], 1)
