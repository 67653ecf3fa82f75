"""A Sentinel failover while events flow: the door and the workers follow the new master.

The test's own group: a master and its replica (append-only, fsync always,
``min-replicas-to-write`` as many as the replicas, as docs/operations.md asks)
and three Sentinels watching them (quorum 2), every process started here and
stopped by pid.  REDIS_URL is the ``sentinel://`` URL of the group, for the
producer, two workers and beat alike.  A producer keeps accepting events
(retrying what Redis refused, as a Segment client retries a 503) while the
master fails over:

* ``SENTINEL FAILOVER`` (an operator's switch, the master alive): every
  accepted event is delivered, exactly once;
* the master SIGKILLed (Sentinel's own failover): the stack carries on and
  every event accepted once the new master was in place is delivered; what
  the master had acknowledged and not yet passed to its replica is lost, and
  the test reports how much (Redis replicates asynchronously).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis as redis_lib

from demo.embedded_redis import find_redis_server, free_port
from producers.enqueue import Enqueuer
from producers.events import validate_event
from tests.e2e.harness import Fleet, relay_env
from tests.processes import stop, wait_until
from worker.broker import publisher_app
from worker.settings import Settings
from worker.store.connect import connect
from worker.store.counters import Counters

pytestmark = pytest.mark.e2e

MASTER = "relay"

#: Events per acceptance: 5 people, each an identify and a track, so that a person is never split.
BATCH = 10


@dataclass
class Server:
    """A redis-server (or a Sentinel: ``redis-server <conf> --sentinel``) on a port of its own."""

    args: list[str]
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self, log: Path) -> None:
        with open(log, "ab") as out:
            self.process = subprocess.Popen([find_redis_server(), *self.args], stdout=out, stderr=subprocess.STDOUT)
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_until(lambda: self._answers(client), 10, f"redis-server on port {self.port}")

    def _answers(self, client: redis_lib.Redis) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited at start")
        try:
            return bool(client.ping())
        except redis_lib.ConnectionError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def client(self) -> redis_lib.Redis:
        return redis_lib.Redis(port=self.port, decode_responses=True, socket_timeout=5)


@dataclass
class SentinelGroup:
    directory: Path
    redis: list[Server] = field(default_factory=list)
    sentinels: list[Server] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/0?master={MASTER}"

    def start(self) -> None:
        master_port = free_port()
        for n, replica_of in enumerate([None, master_port]):
            port = master_port if replica_of is None else free_port()
            data = self.directory / f"redis-{n}"
            data.mkdir()
            args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data), "--save", ""]
            args += ["--appendonly", "yes", "--appendfsync", "always", "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]
            args += ["--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"]
            if replica_of:
                args += ["--replicaof", "127.0.0.1", str(replica_of)]
            self.redis.append(Server(args, port))
            self.redis[-1].start(self.directory / f"redis-{n}.log")
        for n in range(3):
            port = free_port()
            conf = self.directory / f"sentinel-{n}.conf"  # Sentinel rewrites it: a file of its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
            )
            self.sentinels.append(Server([str(conf), "--sentinel"], port))
            self.sentinels[-1].start(self.directory / f"sentinel-{n}.log")
        wait_until(self._ready, 30, "the Sentinels to see the replica and each other")

    def _ready(self) -> bool:
        for sentinel in self.sentinels:
            client = sentinel.client()
            replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER)
            others = client.execute_command("SENTINEL", "SENTINELS", MASTER)
            if len(others) < 2 or not any(r["master-link-status"] == "ok" and "s_down" not in r["flags"] for r in replicas):
                return False
        return True

    def master_port(self) -> int:
        _, port = self.sentinels[0].client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(port)

    def master(self) -> Server:
        port = self.master_port()
        return next(s for s in self.redis if s.port == port)

    def stop(self) -> None:
        for server in [*self.sentinels, *self.redis]:
            stop(server.process, timeout=10)


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path / "group")  # its logs stay in pytest's tmp_path, for a failure
    group.directory.mkdir()
    try:
        group.start()
        yield group
    finally:
        group.stop()


@dataclass
class Acceptance:
    started: float
    finished: float
    people: list[str]


class Producer(threading.Thread):
    """Accepts batches of new people until told to stop, retrying a batch Redis refused."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        client = connect(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
        self.enqueuer = Enqueuer(client, publisher_app(Settings(redis_url=url)), max_backlog=10**9)
        self.accepted: list[Acceptance] = []
        self.refused: list[tuple[float, str]] = []  # (when, what): each one a 503 at the door
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            people = [f"s{p}" for p in range(n, n + BATCH // 2)]
            batch = [validate_event(e) for person in people for e in person_events(person)]
            started = time.monotonic()
            try:
                self.enqueuer.accept(batch)
            except Exception as exc:  # noqa: BLE001 - what the door answers with a 503: the client tries again
                self.refused.append((time.monotonic(), type(exc).__name__))
                time.sleep(0.2)
                continue
            self.accepted.append(Acceptance(started, time.monotonic(), people))
            n += BATCH // 2
            time.sleep(0.1)

    def people(self, started_after: float = 0.0) -> list[str]:
        return [p for a in self.accepted if a.started >= started_after for p in a.people]

    def accepted_after(self, moment: float) -> int:
        return sum(len(a.people) * 2 for a in self.accepted if a.started >= moment)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert not self.is_alive(), "the producer is stuck"


def person_events(user: str) -> list[dict]:
    return [
        {"type": "identify", "userId": user, "messageId": f"{user}-i", "traits": {"email": f"{user}@example.com"}},
        {"type": "track", "userId": user, "messageId": f"{user}-t", "event": "Failed Over"},
    ]


def deliveries(fake) -> Counter:
    """Tracks delivered per person, over every contact the fake holds for them."""
    tracked: Counter = Counter()
    for contact in fake.state()["contacts"]:
        if not contact["merged"] and not contact["deleted"]:
            tracked[contact["external_id"]] += contact["event_count"]
    return tracked


def wait_for_delivery(fake, people: list[str], url: str, fleet: Fleet, timeout: float = 120) -> Counter:
    """Wait until each of ``people`` has its track delivered and nothing is left to deliver; the deliveries then.

    Once the backlog is empty no delivery is on its way, so a duplicate
    cannot show up later: the deliveries are final.  (A message whose
    acknowledgement was lost comes back, but finds its delivery done.)
    """
    deadline = time.monotonic() + timeout
    counters = Counters(connect(url, decode_responses=True, socket_timeout=5))
    while True:
        tracked = deliveries(fake)
        missing = [p for p in people if not tracked[p]]
        try:
            counts = counters.snapshot()
        except redis_lib.RedisError:  # the master busy (fsync on a loaded disk) or switching: asked again
            counts = {}
        # Below zero after a killed master: a request the door answered 503 (the master died before its
        # answer) whose message a worker had already taken is ingested on the new master, while its
        # "accepted" died with the old one; the client sends the events again: accepted, then duplicate.
        if not missing and counts.get("backlog", 1) <= 0:
            return deliveries(fake)
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(missing)} of {len(people)} people not delivered, e.g. {missing[:5]}; counts {counts}\n{fleet.log_tail()}"
            )
        time.sleep(0.5)


def run_with_failover(
    group: SentinelGroup, fake, tmp_path: Path, fail_over, after_switch=None
) -> tuple[Producer, Fleet, float, float, list]:
    """Start the fleet and the producer, fail over with ``fail_over()``, keep sending; (producer, fleet, t0, seconds, processes).

    ``after_switch()`` runs once the Sentinels name the new master (the old one restarted, say).
    """
    fleet = Fleet(relay_env(group.url, fake.url), tmp_path)
    processes = [fleet.worker("w1", concurrency=8), fleet.worker("w2", concurrency=8), fleet.beat()]
    producer = Producer(group.url)
    producer.start()
    wait_until(lambda: producer.accepted_after(0) >= 200, 60, "200 events accepted before the failover")
    old = group.master_port()
    started = time.monotonic()
    fail_over()
    wait_until(lambda: group.master_port() != old, 60, "the Sentinels to name a new master")
    switched = time.monotonic() - started
    if after_switch:
        after_switch()
    wait_until(lambda: producer.accepted_after(started + switched) >= 200, 60, "200 events accepted after the failover")
    producer.stop()
    return producer, fleet, started, switched, processes


def report(title: str, producer: Producer, started: float, switched: float, lost: int, duplicates: int) -> None:
    refused = [when for when, _ in producer.refused]
    window = f"{max(refused) - min(refused):.1f} s" if refused else "none"
    kinds = dict(Counter(what for _, what in producer.refused))
    print(
        f"\n{title}: {producer.accepted_after(0)} events accepted, {len(refused)} refused acceptances (503s) {kinds}, "
        f"refusals over {window}, Sentinels named the new master after {switched:.1f} s, lost {lost}, duplicates {duplicates}"
    )


def test_an_operator_failover_loses_nothing_and_the_stack_follows_the_new_master(sentinel_group, fake_intercom_factory, tmp_path):
    fake = fake_intercom_factory()

    def fail_over() -> None:
        sentinel_group.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER)

    producer, fleet, started, switched, processes = run_with_failover(sentinel_group, fake, tmp_path, fail_over)
    try:
        people = producer.people()
        tracked = wait_for_delivery(fake, people, sentinel_group.url, fleet)
        assert [p.poll() for p in processes] == [None, None, None], f"a process died:\n{fleet.log_tail()}"
    finally:
        fleet.stop()
    lost = sum(1 for p in people if not tracked[p])
    duplicates = sum(tracked[p] - 1 for p in people if tracked[p] > 1)
    report("operator failover", producer, started, switched, lost, duplicates)
    assert (lost, duplicates) == (0, 0)
    counts = Counters(connect(sentinel_group.url, decode_responses=True)).snapshot()
    assert (counts["accepted"], counts["backlog"], counts["dead_lettered"]) == (len(people) * 2, 0, 0)


def test_the_stack_carries_on_after_the_master_is_killed(sentinel_group, fake_intercom_factory, tmp_path):
    """The master SIGKILLed, and started again by its supervisor once the Sentinels replaced it.

    It comes back as a replica of the new master (Sentinel reconfigures it);
    until then the new master, with no replica, refuses writes
    (``min-replicas-to-write``), and the door answers 503.
    """
    fake = fake_intercom_factory()
    old = sentinel_group.master()

    def restart() -> None:
        time.sleep(2)  # a supervisor's restart delay
        old.start(sentinel_group.directory / "redis-restarted.log")

    producer, fleet, started, switched, processes = run_with_failover(sentinel_group, fake, tmp_path, old.kill, restart)
    try:
        after = producer.people(started_after=started + switched)
        # Events the old master had not passed on are lost; what the new master holds is all delivered.
        tracked = wait_for_delivery(fake, after, sentinel_group.url, fleet)
        assert [p.poll() for p in processes] == [None, None, None], f"a process died:\n{fleet.log_tail()}"
    finally:
        fleet.stop()
    people = producer.people()
    lost = sum(1 for p in people if not tracked[p])
    duplicates = sum(tracked[p] - 1 for p in people if tracked[p] > 1)
    report("master killed", producer, started, switched, lost, duplicates)
    assert all(tracked[p] == 1 for p in after), "an event accepted after the failover was lost or sent twice"


def test_sentinels_with_a_password_of_their_own_are_asked_with_it(tmp_path):
    """The stores' client and the broker both find the master through Sentinels that have a requirepass."""
    port, sentinel_port = free_port(), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\nrequirepass sentinel-pw\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {port} 1\nsentinel auth-pass {MASTER} server-pw\n"
    )
    master = guarded_server(
        ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "server-pw"], port, "server-pw", tmp_path
    )
    sentinel = guarded_server([str(conf), "--sentinel"], sentinel_port, "sentinel-pw", tmp_path)
    try:
        url = f"sentinel://:server-pw@127.0.0.1:{sentinel_port}/0?master={MASTER}"
        with pytest.raises(redis_lib.ConnectionError):  # asked without its password, the Sentinel names no master
            connect(url, socket_connect_timeout=1).ping()
        client = connect(f"{url}&sentinel_password=sentinel-pw", decode_responses=True)
        client.set("relay:test:sentinel-auth", "ok")
        assert client.get("relay:test:sentinel-auth") == "ok"
        publisher_app(Settings(redis_url=f"{url}&sentinel_password=sentinel-pw")).send_task("intercom.ingest", args=[[]])
        assert client.llen("celery") == 1  # the broker found the master through the same Sentinel
    finally:
        for process in (sentinel, master):
            process.terminate()
            process.wait(timeout=10)


def guarded_server(args: list[str], port: int, password: str, logs: Path) -> subprocess.Popen[bytes]:
    """A redis-server (or Sentinel) with a requirepass, once it answers a PING made with it."""
    with open(logs / f"redis-{port}.log", "ab") as out:
        process = subprocess.Popen([find_redis_server(), *args], stdout=out, stderr=subprocess.STDOUT)
    client = redis_lib.Redis(port=port, password=password, socket_connect_timeout=0.2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis_lib.ConnectionError:
            assert process.poll() is None, f"redis-server on port {port} exited at start"
            return False

    wait_until(answers, 10, f"redis-server on port {port}")
    return process
