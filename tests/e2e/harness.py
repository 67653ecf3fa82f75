"""Real processes for end-to-end tests: celery workers and beat, started and stopped by pid.

Nothing here is eager mode: every worker is a ``celery worker`` subprocess
talking to the suite's real Redis and to the fake Intercom over HTTP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import redis as redis_lib

from producers.enqueue import Enqueuer
from producers.sample import SampleStream, intercom_event_name
from worker.celery_app import create_app
from worker.settings import Settings
from worker.store.counters import Counters
from worker.worker_command import beat_command, worker_command

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"


def relay_env(redis_url: str, intercom_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "INTERCOM_", "REDIS_URL"))}
    env.update(
        REDIS_URL=redis_url,
        INTERCOM_API_URL=intercom_url,
        INTERCOM_ACCESS_TOKEN=TOKEN,
        LEASE_SECONDS="5",
        DISPATCH_SECONDS="10",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@dataclass
class Fleet:
    """Worker and beat processes of one test; every one is stopped at the end."""

    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    def worker(
        self, name: str, concurrency: int | None = 8, *, peers: bool = False, extra: Sequence[str] = (), **env: str
    ) -> subprocess.Popen:
        """A worker process (worker/worker_command.py's arguments); ``env`` adds settings of its own (e.g. WORKER_CPU="auto")."""
        return self._start(name, worker_command(name, concurrency, peers=peers, extra=extra), env)

    def beat(self) -> subprocess.Popen:
        return self._start("beat", beat_command(self.logs / "beat-schedule"))

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")
        process = subprocess.Popen(
            args,
            env={**self.env, **(env or {})},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL: the worker dies mid-call, as in an OOM kill."""
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            out.append(f"--- {path.name}")
            text = [line for line in path.read_text(errors="replace").splitlines() if "intercom.sweep" not in line]
            out += text[-lines:]
        return "\n".join(out)


def accept(redis_url: str, events: list[dict], batch: int = 500) -> None:
    """Accept events the way the producers do, in batches."""
    from producers.events import validate_event  # noqa: PLC0415

    settings = Settings(redis_url=redis_url)
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    enqueuer = Enqueuer(client, create_app(settings), max_backlog=10**9)
    for start in range(0, len(events), batch):
        enqueuer.accept([validate_event(e) for e in events[start : start + batch]])


def wait_until_finished(redis: Any, fleet: Fleet, *, timeout: float = 100) -> dict:
    """Wait until every accepted event is in a final state (backlog 0), or fail with the counts and logs."""
    deadline = time.monotonic() + timeout
    counts = Counters(redis).snapshot()
    while time.monotonic() < deadline:
        counts = Counters(redis).snapshot()
        if counts["accepted"] and counts["backlog"] == 0:
            return counts
        time.sleep(0.25)
    raise AssertionError(f"not finished after {timeout}s: {counts}\n{lanes_dump(redis)}\n{fleet.log_tail()}")


def lanes_dump(redis: Any, most: int = 20) -> str:
    """Where unfinished deliveries sit: lanes, leases, lane states, arrivals in flight, parked."""
    lanes = sorted(redis.scan_iter("relay:lane:*", count=1000))[:most]
    lines = [
        f"leases: {redis.zrange('relay:leases', 0, most, withscores=True)}",
        f"lane states: {dict(list(redis.hgetall('relay:lane_state').items())[:most])}",
        f"inflight: {dict(list(redis.hgetall('relay:inflight').items())[:most])}",
        f"parked: {redis.zrange('relay:parked_index', 0, most)}",
    ]
    lines += [f"{lane}: {redis.zrange(lane, 0, 5, withscores=True)}" for lane in lanes]
    return "\n".join(lines)


def intercom_state(fake_state: dict, stream: SampleStream) -> dict:
    """The fake's state in the terms of SampleStream.expected_state(): by person, not by Intercom id."""
    key_of_email = {p.email: p.key for p in stream.persons}
    live = [c for c in fake_state["contacts"] if not c["merged"] and not c["deleted"]]
    by_id = {c["id"]: key_of_email.get(c["email"], f"?{c['id']}") for c in live}
    company_ids = {c["id"]: c["company_id"] for c in fake_state["companies"]}
    contacts: dict[str, Any] = {}
    for c in live:
        key = by_id[c["id"]]
        if key in contacts:
            key = f"{key} (duplicate {c['id']})"
        contacts[key] = {"role": c["role"], "external_id": c["external_id"], "email": c["email"], "name": c["name"]}
    events = {
        by_id[cid]: sorted((intercom_event_name(e["event_name"]), e["created_at"]) for e in evs)
        for cid, evs in fake_state["events"].items()
        if cid in by_id
    }
    for p in stream.persons:
        events.setdefault(p.key, [])
    companies = {c["company_id"]: c["name"] for c in fake_state["companies"]}
    attachments = sorted({(by_id.get(a["contact_id"], a["contact_id"]), company_ids[a["company_id"]]) for a in fake_state["attachments"]})
    return {"contacts": contacts, "events": events, "companies": companies, "attachments": attachments}


def not_found_calls(fake: Any) -> tuple[int, int]:
    """(404s for contacts that were merely late, 404s for leads merged away in flight).

    A 404 for a lead that its user identify, in the user's own lane, merged
    away a moment before is not lateness: the event is retried on the user.
    Every other 404 would mean a track or group overtook its identify.
    """
    merged_away = {m["from"] for m in fake.state()["merges"]}
    not_found = fake.requests(status=404, limit=100_000)
    late = [r for r in not_found if (r.get("body") or {}).get("id") not in merged_away and not any(m in r["path"] for m in merged_away)]
    return len(late), len(not_found) - len(late)
