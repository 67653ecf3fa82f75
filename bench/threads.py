"""CPU per delivered event in one process, by thread count and CPU pinning (no Celery, no budget).

Runs the worker's own delivery path (ingest, then ``worker.delivery.deliver``
for each woken lane, chains included) in threads against the fake Intercom,
and reports the process's CPU time per delivered event.  Each configuration
runs in a child process of its own, so that pinning one does not pin the
next.  This is what WORKER_CPU (worker/cpu.py) rests on:

    python bench/threads.py            → bench/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
TOKEN = "bench-token"
#: (threads, fake latency ms, pinned to one CPU)
CONFIGS = [(1, 0, False), (32, 150, False), (32, 150, True), (32, 0, False), (32, 0, True)]


def run_one(redis_url: str, fake_url: str, threads: int, people: int, pinned: bool) -> dict:
    """In this (child) process: deliver a sample stream with ``threads`` threads; CPU per event."""
    import redis as redis_lib

    from producers.events import validate_event
    from producers.sample import SampleStream
    from worker import cpu
    from worker import runtime as runtime_module
    from worker.delivery import deliver
    from worker.runtime import Runtime
    from worker.settings import Settings
    from worker.store import keys
    from worker.tasks import ingest

    logging.basicConfig(level=logging.INFO, stream=open(os.devnull, "w"))  # outcome lines cost what they cost
    if pinned:
        cpu.pin(cpu.allowed_cpus()[0])
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    rt = runtime_module._runtime = Runtime.build(Settings(redis_url=redis_url, api_url=fake_url, access_token=TOKEN))
    events = [validate_event(e) for e in SampleStream(people=people, seed=1).events]
    woken: list[list] = []
    task = SimpleNamespace(app=SimpleNamespace(send_task=lambda name, args, countdown=None: woken.append(args)))
    for event in events:
        redis.hincrby(keys.INFLIGHT, event.get("userId") or event["anonymousId"], 1)
    envelopes = [{"seq": n, "event": e} for n, e in enumerate(events, start=1)]
    for start in range(0, len(envelopes), 100):
        ingest(task, envelopes[start : start + 100])
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not woken:
                    return
                person, head = woken.pop()
            deliver(task, rt, person, head)

    cpu_before, started = time.process_time(), time.monotonic()
    while woken:  # a chain that stops early sends its lane's rest as a new "task"
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    cpu_used, elapsed = time.process_time() - cpu_before, time.monotonic() - started
    delivered = int(redis.hget(keys.COUNTERS, "delivered") or 0)
    rt.close()
    return {
        "events": len(events),
        "delivered": delivered,
        "seconds": round(elapsed, 1),
        "cpu_ms_per_event": round(cpu_used / max(delivered, 1) * 1000, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--out", default=str(RESULTS / "threads.json"))
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)  # redis url, fake url, threads, people, pinned
    args = ap.parse_args()
    if args.child:
        redis_url, fake_url, threads, people, pinned = args.child
        print(json.dumps(run_one(redis_url, fake_url, int(threads), int(people), pinned == "1")))
        return 0

    from bench.common import bench_redis
    from fake_intercom import FakeConfig, start_in_subprocess

    redis_url, stop_redis = bench_redis()
    rows = []
    try:
        for threads, latency, pinned in CONFIGS:
            fake = start_in_subprocess(FakeConfig(tokens=(TOKEN,), rate_limit=10**6, latency_ms=latency))
            try:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", redis_url, fake.url, str(threads), str(args.people), "1" if pinned else "0"],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=ROOT,
                )
            finally:
                fake.stop()
            import redis as redis_lib

            redis_lib.Redis.from_url(redis_url).flushdb()  # the bench's own database (bench/common.py)
            row = {"threads": threads, "latency_ms": latency, "pinned": pinned, **json.loads(out.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(
                f"{threads:>2} threads, {latency:>3} ms answers, {'pinned to one CPU' if pinned else 'not pinned':<17}: "
                f"{row['cpu_ms_per_event']:.2f} ms CPU per event ({row['delivered']} delivered in {row['seconds']} s)"
            )
    finally:
        stop_redis()
    Path(args.out).write_text(json.dumps({"cpus": len(os.sched_getaffinity(0)), "runs": rows}, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
