"""Soak: a live stream over HTTP through Redis failovers and restarts, with every process expected to live.

Usage::

    python bench/failover.py                      # 20 master kills, 10 SENTINEL FAILOVERs, 20 Redis restarts (~15 min)
    python bench/failover.py --kills 2 --failovers 1 --restarts 2   # a quick check (~2 min)

Two clients send Segment batches (an identify and two tracks per person) to
the door (``intercom-relay serve``) over HTTP, each batch until it is
answered 200, as Segment's clients do; two workers (the Procfile's command:
threads pool, gossip, mingle, heartbeats) and beat deliver them to the fake
Intercom (a subprocess, 50 ms per call).  Everything runs on
loopback and is stopped by pid at the end.  Two phases, each on a Redis of
its own:

1. **Sentinel**: a master, its replica and three Sentinels
   (tests/e2e/test_sentinel.py's group; ``min-replicas-to-write 1``), the
   door with ``ACCEPT_DURABILITY=replica`` so that a 200 survives the
   master's death.  ``--kills`` times the master is SIGKILLed and, once the
   Sentinels named a new one, started again (it comes back as a replica);
   then ``--failovers`` times an operator's ``SENTINEL FAILOVER``.
2. **Standalone**: one append-only Redis, SIGKILLed and started again
   ``--restarts`` times, down ``--down`` seconds each time.

A fault strikes once events are seen flowing, and the next waits until the
deliveries resumed.  Reported (printed, and written to
``bench/results/failover.json``): the processes alive at the end (all of
them must be); the events answered 200, and whether each reached Intercom
exactly once; the requests answered 503 (or not answered) and the time the
clients spent refused; and, per fault, the seconds from the fault until an
event first sent after it reached Intercom (p50, max).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.exceptions import RedisError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fake_intercom import FakeConfig, start_in_subprocess  # noqa: E402
from tests.e2e.harness import TOKEN, Fleet, relay_env  # noqa: E402
from tests.e2e.redis_server import KillableRedis  # noqa: E402
from tests.e2e.test_faults import WRITE_KEY, Door, Sender  # noqa: E402
from tests.e2e.test_sentinel import MASTER, SentinelGroup  # noqa: E402
from tests.processes import stop, wait_until  # noqa: E402
from worker.store.connect import connect  # noqa: E402
from worker.store.counters import Counters  # noqa: E402

#: Persons per client stream: more than a full soak sends (a client sends at most ~33 events/s).
PERSONS_PER_CLIENT = 20_000


def person_events(name: str, n: int) -> list[dict]:
    """An identify and two tracks, a second apart (Intercom takes two events of one name at one second for one)."""
    start = datetime(2026, 11, 1, 10, tzinfo=UTC) + timedelta(minutes=n)
    traits = {"email": f"{name}@example.com"}
    identify = {"type": "identify", "userId": name, "messageId": f"{name}-i", "timestamp": start.isoformat(), "traits": traits}
    tracks = [
        {"type": "track", "userId": name, "messageId": f"{name}-t{k}", "timestamp": (start + timedelta(seconds=k + 1)).isoformat()}
        | {"event": "Failed Over"}
        for k in range(2)
    ]
    return [identify, *tracks]


class Stream(Sender):
    """test_faults' client, noting when each person's events were first sent; stopped by emptying what is pending."""

    def __init__(self, url: str, prefix: str, log: list[tuple[float, float, str]]) -> None:
        events = (e for n in range(PERSONS_PER_CLIENT) for e in person_events(f"{prefix}{n}", n))
        super().__init__(url, list(events), log)
        self.first_sent: dict[str, float] = {}

    def _send(self, client: httpx.Client, batch: list[dict]) -> str:
        now = time.monotonic()
        for event in batch:
            self.first_sent.setdefault(event["userId"], now)
        return super()._send(client, batch)

    def stop(self) -> None:
        self.pending.clear()  # the batch in flight is finished, then the loop ends
        self.join(timeout=60)


class Deliveries(threading.Thread):
    """Watches the fake's request log: when each person's identify or track first reached Intercom."""

    def __init__(self, fake: Any) -> None:
        super().__init__(daemon=True)
        self.fake = fake
        self.times: list[float] = []  # when each delivery was seen, in arrival order
        self.people: list[str] = []  # whose delivery it was
        self.stopping = threading.Event()
        self._since = 0

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            try:
                entries = self.fake.requests(method="POST", since=self._since)
            except httpx.HTTPError:
                continue
            now = time.monotonic()
            for entry in entries:
                self._since = max(self._since, entry["seq"])
                body = entry.get("body") or {}
                person = body.get("user_id") or body.get("external_id")
                if isinstance(entry.get("status"), int) and entry["status"] < 300 and person:
                    self.people.append(str(person))
                    self.times.append(now)

    def resumed_after(self, fault: float, first_sent: dict[str, float]) -> float | None:
        """Seconds from ``fault`` until the first delivery of a person first sent after it."""
        seen = len(self.times)
        for i in range(bisect.bisect_right(self.times, fault, hi=seen), seen):
            if first_sent.get(self.people[i], 0.0) > fault:
                return self.times[i] - fault
        return None


@dataclass
class Phase:
    """One Redis setup: its fleet, door, clients, and what was measured."""

    name: str
    url: str
    env: dict[str, str]
    logs: Path
    watcher: Deliveries
    answers: list[tuple[float, float, str]] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    faults: list[dict] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    door: Door | None = None
    fleet: Fleet | None = None
    aborted: str | None = None  # why the faults stopped early, if they did

    def start(self) -> None:
        self.fleet = Fleet(self.env, self.logs)
        # The workers as the Procfile runs them: with gossip, mingle and heartbeats (the tests turn the first two off).
        self.processes = {name: self.fleet.worker(name, concurrency=None, peers=True) for name in ("w1", "w2")}
        self.processes["beat"] = self.fleet.beat()
        self.door = Door(self.env, self.logs / "door.log")
        self.door.start()
        assert self.door.process is not None
        self.processes["door"] = self.door.process
        self.streams = [Stream(self.door.url, f"{self.name}{i}-", self.answers) for i in range(2)]
        for stream in self.streams:
            stream.start()

    def first_sent(self) -> dict[str, float]:
        # A copy of each client's dict (dict() copies atomically under the GIL; iterating it would not).
        return {person: when for stream in self.streams for person, when in dict(stream.first_sent).items()}

    def flowing(self, answers: int = 4) -> None:
        """Wait until ``answers`` more batches were answered 200."""
        target = sum(1 for _, _, a in self.answers if a == "200") + answers
        wait_until(lambda: sum(1 for _, _, a in self.answers if a == "200") >= target, 120, f"{self.name}: events to flow")

    def fault(self, kind: str, strike: Callable[[], None], recover: Callable[[], None]) -> None:
        """Strike once events flow, recover, and wait until an event sent after the fault is delivered."""
        self.flowing()
        asked = time.monotonic()
        strike()
        at = time.monotonic()  # the fault took effect (a SENTINEL FAILOVER may first be refused while the last one settles)
        recover()
        resumed = wait_until(
            lambda: self.watcher.resumed_after(at, self.first_sent()), 180, f"{self.name}: deliveries to resume after {kind}", fail=False
        )
        dead = [name for name, p in self.processes.items() if p.poll() is not None]
        self.faults.append({"kind": kind, "resumed_after_s": resumed, "struck_after_s": round(at - asked, 1), "dead": dead})
        waited = f" (struck {at - asked:.1f} s after being asked)" if at - asked > 0.5 else ""
        print(
            f"  {self.name} {kind} #{len(self.faults)}{waited}: deliveries resumed after "
            f"{'never' if resumed is None else f'{resumed:.1f} s'}{'; DEAD: ' + ', '.join(dead) if dead else ''}",
            flush=True,
        )

    def finish(self, timeout: float) -> dict:
        """Stop the clients, wait for the backlog to empty, and stop every process; the phase's figures."""
        try:
            for stream in self.streams:
                stream.stop()
            client = connect(self.url, decode_responses=True, socket_timeout=5)
            counts = wait_until(lambda: _empty(client), timeout, f"{self.name}: the backlog to empty", fail=False)
            alive = {name: p.poll() is None for name, p in self.processes.items()}
            descriptors = {name: _descriptors(p.pid) for name, p in self.processes.items() if alive[name]}
            return {"counts": counts or _counts(client) or {}, "alive": alive, "drained": counts is not None, "descriptors": descriptors}
        finally:
            if self.door is not None:
                stop(self.door.process)
            if self.fleet is not None:
                self.fleet.stop()


def _descriptors(pid: int) -> int | None:
    """How many files (sockets included) a process holds open: a leak per reconnect shows here."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _counts(client: Any) -> dict | None:
    try:
        return Counters(client).snapshot()
    except RedisError:
        return None


def _empty(client: Any) -> dict | None:
    counts = _counts(client)
    # Below zero after a killed master: a request answered 503 (the master died before its answer) whose
    # message a worker had taken is ingested on the new master, its "accepted" lost with the old one; the
    # client sends the events again, counted accepted and then duplicate (tests/e2e/test_sentinel.py).
    return counts if counts and counts["backlog"] <= 0 else None


def refusals(answers: list[tuple[float, float, str]]) -> tuple[Counter, float]:
    """(answers other than 200 by kind, seconds during which some client was being refused).

    A client is refused from the sending of a batch answered with anything
    but 200 until its next 200; the spans of both clients are merged.
    """
    kinds = Counter(a for _, _, a in answers if a != "200")
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for sent, answered, answer in sorted(answers):  # both clients: a refusal spans until any 200 after it
        if answer != "200" and start is None:
            start = sent
        elif answer == "200" and start is not None:
            spans.append((start, answered))
            start = None
    total, until = 0.0, 0.0
    for lo, hi in spans:
        lo = max(lo, until)
        if hi > lo:
            total += hi - lo
            until = hi
    return kinds, total


def sentinel_faults(phase: Phase, group: SentinelGroup, kills: int, failovers: int, restart_delay: float) -> None:
    for _ in range(kills):
        old = group.master()

        def restart(old=old) -> None:
            wait_until(lambda: group.master_port() != old.port, 60, "the Sentinels to name a new master")
            time.sleep(restart_delay)  # a supervisor's restart delay
            old.start(group.directory / f"redis-{old.port}-restarted.log")
            wait_until(group._ready, 60, "the restarted master to serve as a replica")

        phase.fault("master killed", old.kill, restart)
    for _ in range(failovers):
        port = group.master_port()

        def fail_over() -> None:
            wait_until(lambda: _failover(group), 180, "a Sentinel to accept SENTINEL FAILOVER", interval=0.5)

        def switched(port=port) -> None:
            wait_until(lambda: group.master_port() != port, 60, "the Sentinels to name a new master")
            wait_until(group._ready, 60, "the old master to serve as a replica")

        phase.fault("SENTINEL FAILOVER", fail_over, switched)


def _failover(group: SentinelGroup) -> bool:
    """Ask each Sentinel in turn; True once one started a failover."""
    for sentinel in group.sentinels:
        try:
            sentinel.client().execute_command("SENTINEL", "FAILOVER", MASTER)
        except Exception:  # noqa: BLE001 - INPROG or NOGOODSLAVE while the last switch settles: asked again
            continue
        return True
    return False


def standalone_faults(phase: Phase, server: KillableRedis, restarts: int, down: float) -> None:
    def restart() -> None:
        time.sleep(down)  # how long Redis stays away
        server.start()

    for _ in range(restarts):
        phase.fault("redis killed", server.kill, restart)


def check_deliveries(fake: Any, phases: list[Phase]) -> dict:
    """Events answered 200 against what Intercom holds: each identify one contact, each track one event."""
    accepted_tracks: Counter = Counter()
    accepted_people: set[str] = set()
    for phase in phases:
        for stream in phase.streams:
            for event in stream.accepted:
                accepted_people.add(event["userId"])
                accepted_tracks[event["userId"]] += event["type"] == "track"
    contacts = [c for c in fake.state()["contacts"] if not c["merged"] and not c["deleted"]]
    per_person = Counter(c["external_id"] for c in contacts)
    tracked: Counter = Counter()
    for contact in contacts:
        tracked[contact["external_id"]] += contact["event_count"]
    lost = sorted(p for p in accepted_people if tracked[p] < accepted_tracks[p] or not per_person[p])
    twice = sorted(p for p in accepted_people if tracked[p] > accepted_tracks[p] or per_person[p] > 1)
    events = sum(len(s.accepted) for phase in phases for s in phase.streams)
    return {"events_answered_200": events, "people": len(accepted_people), "lost": len(lost), "duplicated": len(twice)} | {
        "examples": {"lost": lost[:5], "duplicated": twice[:5]}
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(phase: Phase, end: dict) -> dict:
    kinds, refused_s = refusals(phase.answers)
    by_kind: dict[str, dict] = {}
    for kind in dict.fromkeys(f["kind"] for f in phase.faults):
        resumed = [f["resumed_after_s"] for f in phase.faults if f["kind"] == kind]
        known = [r for r in resumed if r is not None]
        by_kind[kind] = {
            "faults": len(resumed),
            "resumed_p50_s": percentile(known, 0.5),
            "resumed_max_s": max(known) if known else None,
            "never_resumed": len(resumed) - len(known),
            "struck_after_max_s": max(f["struck_after_s"] for f in phase.faults if f["kind"] == kind),
        }
    return {
        "phase": phase.name,
        "faults": by_kind,
        "processes_alive_at_end": end["alive"],
        "requests": len(phase.answers),
        "refused": dict(kinds),
        "refused_seconds": round(refused_s, 1),
        "open_descriptors_at_end": end["descriptors"],
        "backlog_drained": end["drained"],
        "aborted": phase.aborted,
        "counts": {k: end["counts"].get(k) for k in ("accepted", "delivered", "duplicate", "dead_lettered", "backlog")},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="Sentinel master SIGKILLs (restarted as a replica)")
    ap.add_argument("--failovers", type=int, default=10, help="SENTINEL FAILOVERs")
    ap.add_argument("--restarts", type=int, default=20, help="standalone Redis SIGKILLs + restarts")
    ap.add_argument("--down", type=float, default=2.0, help="seconds a standalone Redis stays down")
    ap.add_argument("--restart-delay", type=float, default=1.0, help="seconds before a killed master is started again")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "failover.json"))
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-failover-"))
    print(f"logs in {work}", flush=True)
    fake = start_in_subprocess(FakeConfig(tokens=(TOKEN,), latency_ms=50, request_log_size=50_000))
    watcher = Deliveries(fake)
    watcher.start()
    phases: list[Phase] = []
    results: list[dict] = []
    started = time.monotonic()
    try:
        if args.kills or args.failovers:
            directory = work / "sentinel"
            directory.mkdir()
            group = SentinelGroup(directory)
            try:
                group.start()
                env = relay_env(group.url, fake.url, WRITE_KEYS=WRITE_KEY, ACCEPT_DURABILITY="replica")
                phase = Phase("sentinel", group.url, env, directory, watcher)
                phases.append(phase)
                print(f"sentinel: {args.kills} master kills, {args.failovers} SENTINEL FAILOVERs", flush=True)
                phase.start()
                try:
                    sentinel_faults(phase, group, args.kills, args.failovers, args.restart_delay)
                except AssertionError as exc:  # a wait that timed out: the figures so far are still reported
                    print(f"  sentinel phase stopped: {exc}", flush=True)
                    phase.aborted = str(exc)
                finally:
                    results.append(summary(phase, phase.finish(args.drain_timeout)))
            finally:
                group.stop()
        if args.restarts:
            directory = work / "standalone"
            directory.mkdir()
            server = KillableRedis(directory / "redis")
            server.directory.mkdir()
            server.start()
            try:
                env = relay_env(server.url, fake.url, WRITE_KEYS=WRITE_KEY)
                phase = Phase("standalone", server.url, env, directory, watcher)
                phases.append(phase)
                print(f"standalone: {args.restarts} SIGKILLs + restarts, {args.down:g} s down", flush=True)
                phase.start()
                try:
                    standalone_faults(phase, server, args.restarts, args.down)
                except AssertionError as exc:
                    print(f"  standalone phase stopped: {exc}", flush=True)
                    phase.aborted = str(exc)
                finally:
                    results.append(summary(phase, phase.finish(args.drain_timeout)))
            finally:
                server.stop()
        delivered = check_deliveries(fake, phases)
    finally:
        watcher.stopping.set()
        watcher.join(timeout=10)
        fake.stop()

    alive = all(all(r["processes_alive_at_end"].values()) for r in results)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "args": vars(args) | {"out": None},
        "seconds": round(time.monotonic() - started),
        "all_processes_alive": alive,
        "deliveries": delivered,
        "phases": results,
    }
    print_report(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.out}; logs in {work}")
    complete = all(r["backlog_drained"] and not r["aborted"] for r in results)
    ok = alive and complete and delivered["lost"] == 0 and delivered["duplicated"] == 0
    return 0 if ok else 1


def print_report(report: dict) -> None:
    d = report["deliveries"]
    print(f"\nfailover soak, {report['seconds']} s")
    print(f"  processes alive at the end: {'all' if report['all_processes_alive'] else 'NOT ALL'}")
    print(f"  events answered 200: {d['events_answered_200']} ({d['people']} people); lost {d['lost']}, delivered twice {d['duplicated']}")
    for r in report["phases"]:
        dead = [name for name, up in r["processes_alive_at_end"].items() if not up]
        print(
            f"  {r['phase']}: {r['requests']} requests, refused {r['refused']} over {r['refused_seconds']} s"
            f"{'; DEAD: ' + ', '.join(dead) if dead else ''}{'' if r['backlog_drained'] else '; BACKLOG NOT DRAINED'}"
            f"{'; STOPPED EARLY: ' + r['aborted'] if r['aborted'] else ''}"
            f"; open descriptors at the end {r['open_descriptors_at_end']}"
        )
        for kind, f in r["faults"].items():
            p50 = "-" if f["resumed_p50_s"] is None else f"{f['resumed_p50_s']:.1f}"
            top = "-" if f["resumed_max_s"] is None else f"{f['resumed_max_s']:.1f}"
            never = f", never resumed {f['never_resumed']}" if f["never_resumed"] else ""
            waited = f" (a Sentinel took up to {f['struck_after_max_s']:.1f} s to accept it)" if f["struck_after_max_s"] > 0.5 else ""
            print(f"    {kind} x{f['faults']}{waited}: deliveries resumed after p50 {p50} s, max {top} s{never}")


if __name__ == "__main__":
    sys.exit(main())
