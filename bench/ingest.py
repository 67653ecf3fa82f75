"""Benchmark ingestion into the queue: HTTP /v1/batch and the Python API.

Measured in one run, against one Redis:

* **baseline** — plain per-event ``celery_app.send_task("intercom.ingest",
  args=[[envelope]])``, what a naive producer would do;
* **http max** — ``/v1/batch`` with 100-event batches from ``--clients``
  concurrent keep-alive clients as fast as the server answers, the server
  under uvicorn in a subprocess;
* **http paced** — the same at a fixed ``--rate`` (default 10,000 events/s),
  for the latency *at that rate* (the max run's latency includes queueing);
* **python sync / batching** — ``Producer`` with ``sync=True`` (one accept per
  call) and ``sync=False`` (background batches of 100).

Each is events per second and its ratio to the baseline; HTTP adds p50/p99
request latency and the server's RSS at start and end (``--duration 300``
for the memory-flatness run).  Figures are printed and written to
bench/results/ingest.json.

    python bench/ingest.py                  # ~1 minute
    python bench/ingest.py --duration 300   # the 5-minute memory run

It starts its own redis-server unless REDIS_URL is set (then it runs in the
first empty database of that Redis: bench/common.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_redis  # noqa: E402
from demo.embedded_redis import free_port  # noqa: E402
from producers.client import BufferFull, Producer  # noqa: E402
from producers.enqueue import Enqueuer  # noqa: E402
from producers.events import validate_event  # noqa: E402
from worker.celery_app import create_app as create_celery_app  # noqa: E402
from worker.settings import Settings  # noqa: E402

WRITE_KEY = "wk_bench_0123456789abcdefghij"
RESULTS = ROOT / "bench" / "results" / "ingest.json"


def make_event(i: int) -> dict:
    """A realistic ~450-byte track/identify event."""
    user = f"user-{i % 5000}"
    if i % 5 == 0:
        return {
            "type": "identify",
            "userId": user,
            "messageId": str(uuid.uuid4()),
            "traits": {"email": f"{user}@example.com", "name": f"User {i % 5000}", "plan": "pro"},
            "context": {"ip": "203.0.113.7", "library": {"name": "bench", "version": "1"}},
            "timestamp": "2026-01-01T00:00:00Z",
        }
    return {
        "type": "track",
        "userId": user,
        "messageId": str(uuid.uuid4()),
        "event": "Feature Used",
        "properties": {"feature": "export", "count": i % 17, "plan": "pro"},
        "context": {"ip": "203.0.113.7", "library": {"name": "bench", "version": "1"}},
        "timestamp": "2026-01-01T00:00:00Z",
    }


def batch_bodies(n_bodies: int, batch: int) -> list[bytes]:
    """Pre-serialised /v1/batch bodies, so that the clients spend little CPU."""
    return [
        json.dumps({"batch": [make_event(b * batch + i) for i in range(batch)], "sentAt": "2026-01-01T00:00:01Z"}).encode()
        for b in range(n_bodies)
    ]


def rss_kb(pid: int) -> int:
    """Resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- phases -------------------------------------------------------------------


def bench_baseline(app: Any, seconds: float) -> dict:
    """Per-event send_task: the naive way in."""
    envelopes = [{"seq": i, "event": validate_event(make_event(i))} for i in range(2000)]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for env in envelopes[:200]:
            app.send_task("intercom.ingest", args=[[env]])
        n += 200
    elapsed = time.perf_counter() - start
    return {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed)}


def start_server(redis_url: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis_url, "WRITE_KEYS": WRITE_KEY, "MAX_BACKLOG": str(10**12), "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "producers.http:app_from_env",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(args, env=env, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the ingestion server did not become ready")


def http_load(url: str, bodies: list[bytes], clients: int, seconds: float, batch: int, rate: float | None = None) -> dict:
    """``clients`` keep-alive clients posting batches; paced to ``rate`` events/s if given."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    stop_at = time.perf_counter() + seconds
    interval = (batch / rate) * clients if rate else 0.0  # per client, between sends

    def client(k: int) -> None:
        headers = {"Content-Type": "application/json"}
        with httpx.Client(base_url=url, auth=(WRITE_KEY, ""), timeout=30) as c:
            i, next_at = k, time.perf_counter() + (interval * k / clients)
            while True:
                if rate:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    next_at += interval
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                response = c.post("/v1/batch", content=bodies[i % len(bodies)], headers=headers)
                latencies[k].append(time.perf_counter() - t0)
                if response.status_code != 200:
                    failures[k] += 1
                i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    flat = [x for per in latencies for x in per]
    ok = len(flat) - sum(failures)
    return {
        "requests": len(flat),
        "failures": sum(failures),
        "events": ok * batch,
        "seconds": round(elapsed, 2),
        "events_per_s": round(ok * batch / elapsed),
        "p50_ms": round(percentile(flat, 0.50) * 1000, 1),
        "p99_ms": round(percentile(flat, 0.99) * 1000, 1),
        "max_ms": round(max(flat) * 1000, 1) if flat else None,
    }


def bench_producer(enqueuer: Enqueuer, seconds: float, sync: bool) -> dict:
    """The Python API: one call per event, in one thread."""
    producer = Producer(enqueuer, batch_size=100, flush_interval=0.5, sync=sync)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i in range(n, n + 100):
            while True:
                try:
                    producer.track(f"user-{i % 5000}", "Feature Used", {"feature": "export", "count": i % 17})
                    break
                except BufferFull:  # the caller outruns the batching thread: let it catch up
                    time.sleep(0.005)
        n += 100
    producer.shutdown()  # batching: wait until everything is accepted
    elapsed = time.perf_counter() - start
    return {"events": n, "seconds": round(elapsed, 2), "events_per_s": round(n / elapsed)}


def trim_queue(redis_url: str, stop: threading.Event) -> None:
    """Drop the queued messages now and then: no worker drains them here, and the
    benchmark is about the door, not about Redis holding millions of events."""
    client = redis_lib.Redis.from_url(redis_url)
    while not stop.wait(5):
        client.unlink("celery")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20, help="seconds of the max-rate HTTP run (default 20)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (default 4)")
    parser.add_argument("--batch", type=int, default=100, help="events per /v1/batch request (default 100)")
    parser.add_argument("--rate", type=float, default=10_000, help="events/s of the paced run (default 10000)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1; RSS is then of the supervisor only)")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    args = parser.parse_args(argv)

    redis_url, stop_redis = bench_redis()
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    settings = Settings(redis_url=redis_url, write_keys=(WRITE_KEY,), max_backlog=10**12)
    app = create_celery_app(settings)
    enqueuer = Enqueuer(client, app, max_backlog=10**12)
    stop_trim = threading.Event()
    threading.Thread(target=trim_queue, args=(redis_url, stop_trim), daemon=True).start()
    short = min(5.0, args.duration)
    # Other work on the machine skews every figure: the load average says how much.
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "loadavg_1m_at_start": os.getloadavg()[0]},
        "args": vars(args),
    }
    server = None
    try:
        print(f"baseline: per-event send_task for {short:.0f} s …", flush=True)
        results["baseline_send_task"] = bench_baseline(app, short)

        port = free_port()
        server = start_server(redis_url, port, args.workers)
        url = f"http://127.0.0.1:{port}"
        bodies = batch_bodies(64, args.batch)
        rss_start = rss_kb(server.pid)
        http_load(url, bodies, args.clients, 1.0, args.batch)  # warm up
        rss_warm = rss_kb(server.pid)
        print(f"http max: {args.clients} clients × {args.batch}-event batches for {args.duration:.0f} s …", flush=True)
        samples: list[int] = []
        sampling = threading.Event()

        def sample_rss() -> None:
            while not sampling.wait(max(1.0, args.duration / 60)):
                samples.append(rss_kb(server.pid))

        threading.Thread(target=sample_rss, daemon=True).start()
        results["http_max"] = http_load(url, bodies, args.clients, args.duration, args.batch)
        sampling.set()
        paced = max(5.0, args.duration / 2) if args.duration >= 10 else short
        print(f"http paced: {args.rate:,.0f} events/s for {paced:.0f} s …", flush=True)
        results["http_paced"] = http_load(url, bodies, args.clients, paced, args.batch, rate=args.rate)
        results["http_paced"]["target_events_per_s"] = args.rate
        results["server_rss_kb"] = {
            "at_start": rss_start,
            "after_warmup": rss_warm,
            "at_end": rss_kb(server.pid),
            "samples_during_max_run": samples,
        }

        print(f"python API, sync, for {short:.0f} s …", flush=True)
        results["python_sync"] = bench_producer(enqueuer, short, sync=True)
        print(f"python API, batching, for {short:.0f} s …", flush=True)
        results["python_batching"] = bench_producer(enqueuer, short, sync=False)
    finally:
        stop_trim.set()
        if server is not None:
            server.terminate()
            server.wait(10)
        stop_redis()

    results["machine"]["loadavg_1m_at_end"] = os.getloadavg()[0]
    base = results["baseline_send_task"]["events_per_s"]
    for key in ("http_max", "http_paced", "python_sync", "python_batching"):
        results[key]["ratio_to_baseline"] = round(results[key]["events_per_s"] / base, 2)
    report(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out}")
    return 0


def report(r: dict) -> None:
    base = r["baseline_send_task"]["events_per_s"]
    print(f"\nbaseline per-event send_task   {base:>8,} events/s")
    for key, label in (("http_max", "HTTP /v1/batch, max"), ("http_paced", "HTTP /v1/batch, paced")):
        h = r[key]
        print(
            f"{label:<30} {h['events_per_s']:>8,} events/s  ×{h['ratio_to_baseline']:<5} "
            f"p50 {h['p50_ms']} ms  p99 {h['p99_ms']} ms  ({h['failures']} failures)"
        )
    for key, label in (("python_sync", "Python API, sync"), ("python_batching", "Python API, batching")):
        p = r[key]
        print(f"{label:<30} {p['events_per_s']:>8,} events/s  ×{p['ratio_to_baseline']}")
    m = r["machine"]
    print(f"machine: {m['cpus']} CPUs, load average {m['loadavg_1m_at_start']:.2f} at start, {m['loadavg_1m_at_end']:.2f} at end")
    rss = r["server_rss_kb"]
    spread = (max(rss["samples_during_max_run"]) - min(rss["samples_during_max_run"])) if rss["samples_during_max_run"] else 0
    print(
        f"server RSS: start {rss['at_start'] / 1024:.1f} MiB, after warm-up {rss['after_warmup'] / 1024:.1f} MiB, "
        f"end {rss['at_end'] / 1024:.1f} MiB (spread during the max run {spread / 1024:.1f} MiB)"
    )


if __name__ == "__main__":
    sys.exit(main())
