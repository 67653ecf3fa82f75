"""A worker process's sign of life, and what the sweep does when one falls silent.

A worker killed outright (SIGKILL, the OOM killer, a lost host) leaves two
things behind: the lanes its tasks were running, leased to them, and the
queue messages it had taken and not acknowledged (ingests and deliveries,
running or waiting for a thread), which Celery's Redis transport would hand
out again only after its visibility timeout.  So that its people wait
seconds, not minutes:

* every worker process runs a liveness thread that, every ``TICK_SECONDS``,
  writes its id and the time in ``relay:workers`` and renews the leases of
  every delivery it is running, in one round trip (``worker/store/lease.py``);
* the broker's acknowledgement emulation (kombu's ``QoS``) also notes, in the
  same transaction that records a taken message, the message's tag in the
  worker's ``relay:worker:<id>:held`` set, and takes it out in the one that
  acknowledges it: knowing what a worker holds costs no extra round trip;
* the sweep (``intercom.sweep``, every second) takes a worker not heard from
  for ``SILENCE_SECONDS`` for dead: it puts the messages it held back on the
  queue, and ends the leases of the lanes its tasks held (their tokens start
  with its id), so that the sweep sends their heads again at once.

Nothing is delivered twice because of it: a head sent again runs only once
(a claim finds the lane busy or its delivery gone), as after any lost lease.
A worker that is merely slow to beat for ``SILENCE_SECONDS`` is treated as
dead, like a worker that lets its lease run out: its lanes may be run by
another worker while its own call is still in flight.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis as redis_lib
from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_shutdown
from kombu import Connection
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import QoS as VirtualQoS
from kombu.utils.imports import symbol_by_name
from kombu.utils.json import dumps

from worker.broker import ClosedChannelError
from worker.settings import Settings
from worker.store import keys
from worker.store.lanes import now_ms
from worker.store.lease import Lease, Leases, new_token
from worker.timers import SILENCE_SECONDS, TICK_SECONDS, longest_task_seconds

log = logging.getLogger("worker.liveness")


def _new_worker_id() -> str:
    """Host, pid and a few random characters: readable in logs, never reused by a restart."""
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"


_worker_id = _new_worker_id()


def _after_fork() -> None:
    global _worker_id, _current
    _worker_id, _current = _new_worker_id(), None


os.register_at_fork(after_in_child=_after_fork)


def worker_id() -> str:
    """This process's id in ``relay:workers``, and the start of its tasks' tokens."""
    return _worker_id


def token() -> str:
    """A fresh token for a task of this process."""
    return new_token(_worker_id)


class Liveness:
    """A worker process's beat, and the leases of the deliveries it runs."""

    def __init__(self, redis: redis_lib.Redis, leases: Leases, *, worker: str, tick: float, max_hold: float) -> None:
        """``max_hold``: a delivery held longer than this is no longer renewed (its thread is stuck)."""
        self.redis, self.leases, self.worker = redis, leases, worker
        self.tick, self.max_hold = tick, max_hold
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()
        #: Since when every beat has reached Redis (monotonic), None after one failed.
        self._steady_since: float | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_settings(cls, redis: redis_lib.Redis, settings: Settings) -> Liveness:
        return cls(
            redis,
            Leases(redis, settings.lease_seconds),
            worker=worker_id(),
            # At least four renewals within a lease, so that one slow round trip never loses it.
            tick=min(TICK_SECONDS, settings.lease_seconds / 4),
            max_hold=longest_task_seconds(settings, chain_seconds=0) + settings.lease_seconds,
        )

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[lease.token] = lease

    def let_go(self, lease: Lease) -> None:
        with self._lock:
            self._held.pop(lease.token, None)

    def beat(self) -> int:
        """Say this worker is alive and renew its leases, in one round trip; returns how many leases."""
        now = time.monotonic()
        with self._lock:
            leases = [lease for lease in self._held.values() if now - lease.taken_at < self.max_hold]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {self.worker: now_ms()})
        self.leases.renew(leases, pipe)
        pipe.execute()
        return len(leases)

    def start(self) -> None:
        """Beat now, then every tick in a daemon thread."""
        self._beat_logged()
        self._thread = threading.Thread(target=self._run, name="relay-liveness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick + 1)

    def _run(self) -> None:
        while not self._stopped.wait(self.tick):
            self._beat_logged()

    def steady_for(self) -> float:
        """Seconds since this process's beats began reaching Redis without a miss (0 while they fail)."""
        since = self._steady_since
        return 0.0 if since is None else time.monotonic() - since

    def _beat_logged(self) -> None:
        try:
            self.beat()
        except Exception as exc:  # noqa: BLE001 - Redis away: the next tick tries again; the thread must live on
            self._steady_since = None
            log.warning("liveness: could not beat (%s); trying again in %.0f s", type(exc).__name__, self.tick)
            return
        if self._steady_since is None:
            self._steady_since = time.monotonic()


# -- the process's liveness ---------------------------------------------------------

_current: Liveness | None = None


def start(redis: redis_lib.Redis, settings: Settings) -> Liveness:
    """Start this process's liveness (a worker, at ``worker_init``)."""
    global _current
    _current = Liveness.for_settings(redis, settings)
    _current.start()
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.stop()
        _current = None


@contextmanager
def holding(lease: Lease) -> Iterator[None]:
    """Keep ``lease`` renewed while the block runs (in a worker; elsewhere, as when testing, it lasts LEASE_SECONDS)."""
    current = _current
    if current is None:
        yield
        return
    current.hold(lease)
    try:
        yield
    finally:
        current.let_go(lease)


# -- what a worker holds: the broker's acknowledgement emulation -----------------------


#: How long a worker keeps trying to record a message it took while Redis is away (a restart,
#: a Sentinel failover and the old master's return as a replica take seconds), its consumer
#: blocked meanwhile: it could not take anything else either.
APPEND_PATIENCE_SECONDS = 60.0


class HeldQoS(kombu_redis.QoS):
    """kombu's acknowledgement emulation, also noting which messages this worker holds.

    The tag joins ``relay:worker:<id>:held`` in the transaction that puts the
    message in kombu's ``unacked`` hash (``append`` is kombu's own, plus one
    SADD), and leaves it in the one that takes it out (acknowledged, rejected
    or restored).
    """

    def append(self, message: Any, delivery_tag: str) -> None:
        """Record the taken message, trying again while Redis is away (up to APPEND_PATIENCE_SECONDS).

        kombu takes a message off the queue (BRPOP) and records it here in a
        second command.  When Redis goes away in between (killed, or a master
        that stops taking writes when its replica is promoted), the message is
        off the queue and in no ``unacked`` hash: kombu's ``append`` raised, the
        message was never run, and it was lost.  A failover or restart takes
        seconds; recording it on the master that then answers keeps it (run
        once, or twice if the old master had not passed the pop on, which the
        claims and messageIds make harmless).
        """
        delivery = message.delivery_info
        raw = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        give_up = time.monotonic() + APPEND_PATIENCE_SECONDS
        wait = 0.1
        while True:
            try:
                with self.pipe_or_acquire() as pipe:
                    pipe.zadd(self.unacked_index_key, {delivery_tag: time.time()})
                    pipe.hset(self.unacked_key, delivery_tag, raw)
                    pipe.sadd(keys.held(_worker_id), delivery_tag)
                    pipe.execute()
                break
            except (redis_lib.ConnectionError, redis_lib.TimeoutError) as exc:
                if time.monotonic() + wait > give_up or isinstance(exc, ClosedChannelError):
                    task = (getattr(message, "headers", None) or {}).get("task")
                    log.error("taken message %s (%s) NOT recorded, Redis away too long (%s): it is lost", delivery_tag, task, exc)
                    raise
                log.warning("taken message %s not recorded yet, Redis away (%s); trying again", delivery_tag, type(exc).__name__)
                time.sleep(wait)
                wait = min(wait * 2, 2.0)
        VirtualQoS.append(self, message, delivery_tag)

    def _remove_from_indices(self, delivery_tag: str, pipe: Any = None) -> Any:
        # kombu's private method; the stubs of celery-types leave it out.
        removal = super()._remove_from_indices(delivery_tag, pipe)  # type: ignore[misc]
        return removal.srem(keys.held(_worker_id), delivery_tag)


@cache
def holding_transport(name: str) -> type:
    """The transport ``name`` ("module:Class", see worker/broker.py) with channels whose QoS is ``HeldQoS``."""
    base: Any = symbol_by_name(name)
    channel = type(base.Channel.__name__, (base.Channel,), {"QoS": HeldQoS, "__module__": __name__})
    return type(base.__name__, (base,), {"Channel": channel, "__module__": __name__})


def install(app: Celery) -> None:
    """Make ``app``'s workers note what they hold and beat from the moment they start."""
    app.conf.broker_transport = holding_transport(app.conf.broker_transport)
    worker_init.connect(_on_worker_init, weak=False, dispatch_uid="relay-liveness-start")
    # With a prefork pool the deliveries run in the children: each beats for its own.
    worker_process_init.connect(_on_worker_init, weak=False, dispatch_uid="relay-liveness-start-child")
    worker_shutdown.connect(_on_worker_shutdown, weak=False, dispatch_uid="relay-liveness-stop")


def _on_worker_init(**_: Any) -> None:
    from worker.runtime import get_runtime  # noqa: PLC0415 - built in the worker process, not where the app is

    rt = get_runtime()
    start(rt.redis, rt.settings)


def _on_worker_shutdown(**_: Any) -> None:
    # A clean stop: the sweep forgets this worker SILENCE_SECONDS later, finding nothing held.
    stop()


# -- the sweep: workers fallen silent ---------------------------------------------------


@dataclass(frozen=True)
class Reaped:
    """A worker taken for dead: how many messages it held went back on the queue, how many leases ended."""

    worker: str
    restored: int
    leases_ended: int


def reap_silent_workers(
    connection: Connection, redis: redis_lib.Redis, settings: Settings, *, silence: float = SILENCE_SECONDS
) -> list[Reaped]:
    """Take every worker not heard from for ``silence`` s for dead, and free what it held.

    Any number of sweeps may run at once: the one that removes a worker from
    ``relay:workers`` frees what it held, and kombu restores a message only
    while it is still unacknowledged.  A sweep whose own process has not
    reached Redis steadily for ``silence`` s judges no one: after Redis was
    away, every worker is silent until its next tick, and none is dead.
    """
    if _current is not None and _current.steady_for() < silence:
        return []
    silent = redis.zrangebyscore(keys.WORKERS, "-inf", now_ms() - int(silence * 1000), start=0, num=10)
    reaped = []
    for raw in silent:
        worker = raw.decode() if isinstance(raw, bytes) else str(raw)
        if redis.zrem(keys.WORKERS, worker):
            ended = Leases(redis, settings.lease_seconds).end_all_of(worker)
            reaped.append(Reaped(worker, _restore_held(connection, redis, worker), ended))
            # A worker stopped cleanly falls silent too, holding nothing.
            level = logging.WARNING if reaped[-1].restored or reaped[-1].leases_ended else logging.INFO
            log.log(level, "worker %s fell silent: %d messages it held back on the queue, %d lanes sent again", *_fields(reaped[-1]))
    return reaped


def _restore_held(connection: Connection, redis: redis_lib.Redis, worker: str) -> int:
    """Put back on the queue the messages ``worker`` took and never acknowledged."""
    channel: Any = connection.default_channel  # kombu's Redis channel: its QoS restores by tag
    restored = 0
    for tag in redis.smembers(keys.held(worker)):
        # Restored only if still unacknowledged (kombu checks, atomically).
        if channel.client.hexists(channel.unacked_key, tag):
            channel.qos.restore_by_tag(tag, channel.client)
            restored += 1
    redis.delete(keys.held(worker))
    return restored


def _fields(reaped: Reaped) -> tuple[str, int, int]:
    return reaped.worker, reaped.restored, reaped.leases_ended
