"""Benchmark delivery at Intercom's rate limit: utilisation, 429s, calls per event, latency, CPU, memory.

Starts its own redis-server (unless REDIS_URL is set: then the first empty
database of it, see bench/common.py), the fake Intercom in a subprocess (150 ms per call, 1,666 calls per
10-s window, as Intercom's default), N ``celery worker`` processes (threads
pool) and beat.  It accepts a SampleStream (≥ 20,000 events for 2,000 people
by default) *before* the workers start, so Redis memory per queued event is
measured with nothing draining the queue, then starts the workers and waits
until every event is delivered.

Figures (printed, and written to bench/results/delivery.json):

* utilisation: calls per 10-s window / the limit, over the full windows of
  the steady part of the run (the first and the last window, partial, left out);
* 429s as a share of calls; API calls per delivered event;
* latency from acceptance to the Intercom call, for tracks (matched by
  userId/email + created_at in the fake's request log), p50 and p99 — with
  the whole stream accepted up front this is mostly time in the backlog;
  ``--accept-rate`` paces acceptance instead, for the latency at that rate;
* worker CPU seconds per 1,000 events (utime+stime of the worker processes,
  all threads, from /proc/<pid>/stat, counted from when each worker says it
  is ready: start-up is a one-off, not a cost per event), split into user
  and system time, and their peak RSS (VmHWM);
* Redis used_memory per queued event.

``--faults``: the fake answers 5% of calls 503 and has a 60-s outage in the
middle; checks nothing is lost or dead-lettered and each person's events
reached Intercom in order.  Written to bench/results/delivery-faults.json.

    python bench/delivery.py                 # ~3 minutes
    python bench/delivery.py --faults        # ~4-5 minutes
    python bench/delivery.py --events 3000   # a quick check that it works
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_redis  # noqa: E402
from fake_intercom import FakeConfig, start_in_subprocess  # noqa: E402
from producers.enqueue import Enqueuer  # noqa: E402
from producers.events import validate_event  # noqa: E402
from producers.sample import SampleStream, _ts  # noqa: E402
from worker.celery_app import create_app  # noqa: E402
from worker.cpu import allowed_cpus  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.counters import Counters  # noqa: E402
from worker.worker_command import beat_command, worker_command  # noqa: E402

TOKEN = "bench-token"
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process in seconds, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def wait_until_ready(log: Path, timeout: float = 60.0) -> None:
    """Wait for a worker's "ready." line (printed once it consumes)."""
    deadline = time.monotonic() + timeout
    while b" ready." not in log.read_bytes():
        if time.monotonic() > deadline:
            raise SystemExit(f"the worker logging to {log} did not get ready in {timeout:.0f}s")
        time.sleep(0.05)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def stream_for(events: int, people: int, seed: int) -> SampleStream:
    """A SampleStream of at least `events` events for `people` people."""
    per_person = max(1, events // people)
    # identify×2 + group + tracks ≈ per person (leads have no group, converted one more identify)
    tracks = max(1, per_person - 3)
    stream = SampleStream(people=people, companies=max(10, people // 20), tracks_per_person=tracks, identifies_per_person=2, seed=seed)
    while len(stream.events) < events:
        tracks += 1
        stream = SampleStream(people=people, companies=max(10, people // 20), tracks_per_person=tracks, identifies_per_person=2, seed=seed)
    return stream


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=20_000, help="at least this many events (default 20,000)")
    ap.add_argument("--people", type=int, default=2_000)
    ap.add_argument(
        "--workers", type=int, default=1, help="worker processes (default 1: one process of 32 threads fills one token's budget)"
    )
    ap.add_argument("--concurrency", type=int, default=32, help="threads per worker")
    ap.add_argument(
        "--worker-cpu", default="spread", help="WORKER_CPU of the workers: spread (worker n on CPU n mod the CPUs), off, or auto"
    )
    ap.add_argument("--latency-ms", type=float, default=150.0)
    ap.add_argument("--rate-limit", type=int, default=1666, help="calls per 10-s window")
    ap.add_argument(
        "--accept-rate", type=float, default=0.0, help="events/s to accept while the workers run (0: all accepted before they start)"
    )
    ap.add_argument("--faults", action="store_true", help="5%% 503s and a 60-s outage in the middle")
    ap.add_argument("--outage-seconds", type=float, default=60.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", help="results file (default bench/results/delivery[-faults].json)")
    args = ap.parse_args()

    redis_url, stop_redis = bench_redis()
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)

    fake_config = FakeConfig(
        latency_ms=args.latency_ms, rate_limit=args.rate_limit, tokens=(TOKEN,), seed=args.seed, request_log_size=200_000
    )
    if args.faults:
        fake_config = fake_config.changed(fault_rate=0.05, fault_status=503)
    fake = start_in_subprocess(fake_config)
    logs = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "INTERCOM_", "REDIS_URL"))}
    env.update(REDIS_URL=redis_url, INTERCOM_API_URL=fake.url, INTERCOM_ACCESS_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    processes: list[subprocess.Popen] = []
    try:
        stream = stream_for(args.events, args.people, args.seed)
        events = [validate_event(e) for e in stream.events]
        print(
            f"stream: {len(events)} events for {args.people} people; fake at {fake.url} "
            f"({args.rate_limit} calls/10 s, {args.latency_ms:.0f} ms){'; FAULTS: 5% 503 + outage' if args.faults else ''}"
        )
        enqueuer = Enqueuer(redis, create_app(Settings(redis_url=redis_url)), max_backlog=10**9)
        accepted_at: dict[tuple, float] = {}

        raw_of = {id(v): r for v, r in zip(events, stream.events)}

        def accept(batch: list[dict]) -> None:
            enqueuer.accept(batch)
            now = time.time()
            for e in batch:
                raw = raw_of[id(e)]
                if raw["type"] == "track" and raw.get("userId"):
                    accepted_at[(raw["userId"], _ts(raw["timestamp"]))] = now

        # -- Redis memory per queued event: accept with no worker running.
        # With --accept-rate, only a small preload: a backlog would be all the latency measures.
        preload = events if args.accept_rate <= 0 else events[: min(len(events), 200)]
        mem_before = int(redis.info("memory")["used_memory"])
        for i in range(0, len(preload), 500):
            accept(preload[i : i + 500])
        mem_after = int(redis.info("memory")["used_memory"])
        memory_per_event = (mem_after - mem_before) / len(preload)
        print(f"redis: {memory_per_event:.0f} bytes per queued event ({len(preload)} events)")

        # -- workers and beat
        cpus = allowed_cpus()
        for n in range(args.workers):
            log = open(logs / f"w{n}.log", "ab")
            worker_cpu = str(cpus[n % len(cpus)]) if args.worker_cpu == "spread" else args.worker_cpu
            processes.append(
                subprocess.Popen(
                    worker_command(f"bench{n}", args.concurrency, events=False),
                    env={**env, "WORKER_CPU": worker_cpu},
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        workers = list(processes)
        processes.append(
            subprocess.Popen(
                beat_command(logs / "beat-schedule"),
                env=env,
                cwd=ROOT,
                stdout=open(logs / "beat.log", "ab"),
                stderr=subprocess.STDOUT,
            )
        )
        commands_before = redis_commands(redis)
        cpu_start = {}
        for n, p in enumerate(workers):
            wait_until_ready(logs / f"w{n}.log")
            cpu_start[p.pid] = cpu_times(p.pid)
        started = time.time()

        rest = events[len(preload) :]
        next_at = time.time()
        outage_set = False
        parked_since = None
        deadline = time.monotonic() + args.timeout
        while True:
            if rest:
                batch, rest = rest[:50], rest[50:]
                next_at += len(batch) / args.accept_rate
                time.sleep(max(0.0, next_at - time.time()))
                accept(batch)
            counts = Counters(redis).snapshot()
            if args.faults and not outage_set and counts["delivered"] >= len(events) // 2:
                fake.configure(outage_in=0, outage_seconds=args.outage_seconds)
                outage_set = True
                print(f"outage of {args.outage_seconds:.0f} s starts at {time.time() - started:.0f} s")
            if not rest and counts["accepted"] == len(events) and counts["backlog"] == 0:
                break
            # A parked delivery waits up to 24 h for an identify that may never
            # come (a known race, see docs/performance.md): report it, do not hang.
            if not rest and counts["accepted"] == len(events) and counts["backlog"] == counts["parked"] > 0:
                parked_since = parked_since or time.monotonic()
                if time.monotonic() - parked_since > 30:
                    break
            else:
                parked_since = None
            if time.monotonic() > deadline:
                raise SystemExit(f"not finished after {args.timeout}s: {counts}")
            if not rest:
                time.sleep(0.5)
        elapsed = time.time() - started
        commands = {k: v - commands_before.get(k, 0) for k, v in redis_commands(redis).items()}
        user = sum(cpu_times(p.pid)[0] - cpu_start[p.pid][0] for p in workers)
        system = sum(cpu_times(p.pid)[1] - cpu_start[p.pid][1] for p in workers)
        cpu = user + system
        rss = [round(peak_rss_mb(p.pid), 1) for p in workers]

        # -- what Intercom saw
        stats = fake.stats()
        limit = args.rate_limit
        windows = sorted(stats["windows"], key=lambda w: w["start"])
        steady = windows[1:-1]
        if args.faults:  # windows of the outage are not steady state
            steady = [w for w in steady if w["rate_limited"] + w["accepted"] >= 0.5 * limit]
        utilisation = [w["calls"] / limit for w in steady]
        requests = fake.requests(limit=200_000)
        latencies = []
        first_call: dict[tuple, float] = {}
        for r in requests:
            body = r.get("body") or {}
            if r["path"] == "/events" and r["method"] == "POST" and body.get("user_id"):
                key = (body["user_id"], body.get("created_at"))
                if key in accepted_at and key not in first_call:
                    first_call[key] = r["time"]
        latencies = [first_call[k] - accepted_at[k] for k in first_call]
        calls = stats["total"]
        result = {
            "mode": "faults" if args.faults else "steady",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "events": len(events),
            "people": args.people,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "worker_cpu": args.worker_cpu,
            "fake": {
                "latency_ms": args.latency_ms,
                "rate_limit_per_10s": limit,
                "fault_rate": fake_config.fault_rate,
                "outage_seconds": args.outage_seconds if args.faults else 0,
            },
            "elapsed_seconds": round(elapsed, 1),
            "events_per_second": round(len(events) / elapsed, 1),
            "utilisation": {
                "mean": round(sum(utilisation) / len(utilisation), 4) if utilisation else None,
                "min": round(min(utilisation), 4) if utilisation else None,
                "windows": len(steady),
                "per_window_calls": [w["calls"] for w in windows],
            },
            "max_calls_in_window": stats["max_calls_in_window"],
            "calls": calls,
            "rate_limited": stats["rate_limited"],
            "rate_limited_share": round(stats["rate_limited"] / calls, 5) if calls else 0,
            "by_status": stats["by_status"],
            "faults": stats["faults"],
            "api_calls_per_event": round(calls / len(events), 3),
            "latency_accept_to_call_seconds": {
                "tracks_matched": len(latencies),
                "p50": round(percentile(latencies, 50), 3),
                "p99": round(percentile(latencies, 99), 3),
                "accepted_up_front": args.accept_rate <= 0,
            },
            "worker_cpu_seconds": round(cpu, 2),
            "worker_cpu_seconds_per_1000_events": round(cpu / len(events) * 1000, 3),
            "worker_cpu_split_per_1000_events": {
                "user": round(user / len(events) * 1000, 3),
                "system": round(system / len(events) * 1000, 3),
            },
            "worker_peak_rss_mb": rss,
            "redis_bytes_per_queued_event": round(memory_per_event, 1),
            # Commands Redis ran while the workers ran, those inside scripts included (and the bench's own polling).
            "redis_commands_per_event": round(sum(commands.values()) / len(events), 2),
            "redis_commands_top": dict(sorted(commands.items(), key=lambda kv: -kv[1])[:12]),
            "counts": counts,
        }
        problems = []
        if counts["delivered"] != len(events) or counts["dead_lettered"]:
            problems.append(
                f"delivered {counts['delivered']} of {len(events)}, dead-lettered {counts['dead_lettered']}, parked {counts['parked']}"
            )
        if args.faults:
            result["order"] = check_order(fake.state(), stream)
            if result["order"]["out_of_order_contacts"]:
                problems.append(f"{result['order']['out_of_order_contacts']} contacts received events out of order")
        else:
            if result["utilisation"]["mean"] is not None and result["utilisation"]["mean"] < 0.95:
                problems.append(f"utilisation {result['utilisation']['mean']} < 0.95")
            if result["rate_limited_share"] > 0.005:
                problems.append(f"429s are {result['rate_limited_share']:.2%} of calls (> 0.5%)")
            if result["worker_cpu_seconds_per_1000_events"] > 2:
                problems.append(f"{result['worker_cpu_seconds_per_1000_events']} CPU s per 1,000 events (> 2)")
        result["problems"] = problems
        out = Path(args.out) if args.out else RESULTS / ("delivery-faults.json" if args.faults else "delivery.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        show = {k: v for k, v in result.items() if k not in ("machine",)}
        show["utilisation"] = {k: v for k, v in result["utilisation"].items() if k != "per_window_calls"}
        print(json.dumps(show, indent=2))
        print(f"written to {out}")
        print("TARGETS MET" if not problems else "PROBLEMS: " + "; ".join(problems))
        return 1 if problems and (counts["delivered"] != len(events) or counts["dead_lettered"]) else 0
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        fake.stop()
        stop_redis()


def redis_commands(redis: redis_lib.Redis) -> dict[str, int]:
    """Commands Redis has run since it started, by name (INFO commandstats)."""
    return {name.removeprefix("cmdstat_"): stats["calls"] for name, stats in redis.info("commandstats").items()}


def check_order(state: dict, stream: SampleStream) -> dict:
    """Per person (plain users: one lane each), Intercom received the tracks in created_at order."""
    users = {p.email for p in stream.persons if p.kind == "user"}
    contact_email = {c["id"]: c["email"] for c in state["contacts"]}
    checked = bad = 0
    for cid, evs in state["events"].items():
        if contact_email.get(cid) not in users:
            continue
        checked += 1
        created = [e["created_at"] for e in sorted(evs, key=lambda e: e["received_at"])]
        bad += created != sorted(created)
    return {"contacts_checked": checked, "out_of_order_contacts": bad}


if __name__ == "__main__":
    sys.exit(main())
