"""Benchmark the page-view pattern: an identify on every page view, and how few calls it costs.

Sites call identify on every page view with the same traits almost every
time.  This builds that stream: for each person (1,000 by default) 2-6
visits hours apart, each of 5-30 page views 4-20 s apart; every page view an
identify (a mapped trait, the name, changing in about 5% of them), a track
every third page view, a group per visit.  The whole stream is accepted up
front, far faster than Intercom's limit could carry one call per event, then
one worker (32 threads) and beat deliver it to the fake Intercom (150 ms per
call, 1,666 calls per 10-s window).

Figures (printed, and written to bench/results/pageviews.json, the backlog
drawn in bench/results/pageviews-backlog.png):

* calls per event, against the least any relay could make on this stream
  (computed from the stream: one call per new contact, per identify that
  changes a mapped field or moves last_seen_at past its 300-s resolution, per
  track, per new or changed company, per new attachment), against Segment's
  algorithm (2 per identify, 1 per track, 3 per group) and one call per event;
* events delivered per second while the backlog drains; 429s;
* the backlog over time; acceptance -> Intercom call of the tracks, p50/p99;
* that Intercom ends in the expected state: one contact per person with the
  last traits, last_seen_at within its resolution of the last page view,
  every track, every company and attachment.

    python bench/pageviews.py                  # 1,000 people, ~100,000 events, ~7 minutes
    python bench/pageviews.py --people 100     # a quick check that it works

Needs matplotlib for the PNG: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import redis as redis_lib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_redis  # noqa: E402
from bench.delivery import TOKEN, cpu_times, percentile, wait_until_ready  # noqa: E402
from fake_intercom import FakeConfig, start_in_subprocess  # noqa: E402
from producers.enqueue import Enqueuer  # noqa: E402
from producers.events import validate_event  # noqa: E402
from worker.broker import publisher_app  # noqa: E402
from worker.settings import Settings  # noqa: E402
from worker.store.counters import Counters  # noqa: E402
from worker.worker_command import beat_command, worker_command  # noqa: E402

RESULTS = ROOT / "bench" / "results"
START = datetime(2026, 11, 2, 8, 0, tzinfo=timezone.utc)
RESOLUTION = Settings().last_seen_resolution


# -- the stream ---------------------------------------------------------------------


def build_stream(people: int, seed: int) -> list[dict]:
    """Every person's page views, in the order a site would send them (by time)."""
    rng = random.Random(seed)
    companies = max(10, people // 5)
    events: list[dict] = []
    for i in range(people):
        events += _person_visits(rng, f"user-{i}", f"company-{i % companies}")
    # Sorted by time, as the site sends them; the sort is stable, so one person's
    # events stay in the order they were made.
    events.sort(key=lambda e: e["timestamp"])
    return events


def _person_visits(rng: random.Random, user: str, company: str) -> list[dict]:
    events = []
    name = f"{user} name"
    moment = START + timedelta(seconds=rng.uniform(0, 3600))
    for _ in range(rng.randint(2, 6)):
        for page in range(rng.randint(5, 30)):
            if page > 0 and rng.random() < 0.05:
                name = f"{user} name {rng.randrange(10**6)}"  # a mapped trait changes
            events.append(_event(user, "identify", moment, traits={"email": f"{user}@example.com", "name": name}))
            if page == 0:
                events.append(_event(user, "group", moment, groupId=company, traits={"name": company.title()}))
            if page % 3 == 2:
                events.append(_event(user, "track", moment, event="Viewed Page", properties={"page": page}))
            moment += timedelta(seconds=rng.uniform(4, 20))
        moment += timedelta(hours=rng.uniform(2, 30))
    return events


def _event(user: str, kind: str, moment: datetime, **fields: Any) -> dict:
    stamp = moment.isoformat().replace("+00:00", "Z")
    return {"type": kind, "userId": user, "messageId": f"{user}-{kind}-{stamp}", "timestamp": stamp, **fields}


# -- what the stream needs at the least, and what Intercom should end with ----------------


@dataclass
class Expected:
    """The least calls any relay could make under the skip rules, and the end state."""

    least_calls: int = 0
    segment_calls: int = 0
    contacts: dict[str, dict] = field(default_factory=dict)  # user -> {email, name, last_seen_at}
    tracks: dict[str, int] = field(default_factory=dict)
    companies: dict[str, str] = field(default_factory=dict)  # company_id -> name
    attachments: set[tuple[str, str]] = field(default_factory=set)


def expected_of(events: list[dict]) -> Expected:
    want = Expected()
    sent: dict[str, dict] = {}
    for e in events:
        user, seconds = e["userId"], _seconds(e["timestamp"])
        if e["type"] == "identify":
            want.segment_calls += 2
            traits = {"email": e["traits"]["email"], "name": e["traits"]["name"]}
            last = sent.get(user)
            if last is None or {k: last[k] for k in traits} != traits or seconds - last["last_seen_at"] >= RESOLUTION:
                want.least_calls += 1
                sent[user] = {**traits, "last_seen_at": seconds}
            want.contacts[user] = {**traits, "last_seen_at": seconds}
        elif e["type"] == "track":
            want.segment_calls += 1
            want.least_calls += 1
            want.tracks[user] = want.tracks.get(user, 0) + 1
        else:
            want.segment_calls += 3
            company, name = e["groupId"], e["traits"]["name"]
            want.least_calls += (want.companies.get(company) != name) + ((user, company) not in want.attachments)
            want.companies[company] = name
            want.attachments.add((user, company))
    return want


def _seconds(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


def state_problems(state: dict, want: Expected) -> list[str]:
    """What in the fake's end state differs from the expected one."""
    problems = []
    live = [c for c in state["contacts"] if not c["merged"] and not c["deleted"]]
    by_user = {c["external_id"]: c for c in live}
    if len(live) != len(want.contacts) or set(by_user) != set(want.contacts):
        problems.append(f"{len(live)} contacts for {len(want.contacts)} people")
    for user, traits in want.contacts.items():
        got = by_user.get(user)
        if got is None:
            continue
        if (got["email"], got["name"]) != (traits["email"], traits["name"]):
            problems.append(f"{user}: {got['email']}, {got['name']} instead of {traits['email']}, {traits['name']}")
        if not 0 <= traits["last_seen_at"] - (got["last_seen_at"] or 0) < RESOLUTION:
            problems.append(f"{user}: last_seen_at {got['last_seen_at']}, the last page view at {traits['last_seen_at']}")
        if got["event_count"] != want.tracks.get(user, 0):
            problems.append(f"{user}: {got['event_count']} events, {want.tracks.get(user, 0)} tracked")
    companies = {c["company_id"]: c for c in state["companies"]}
    if {k: c["name"] for k, c in companies.items()} != want.companies:
        problems.append(f"{len(companies)} companies, {len(want.companies)} expected, or their names differ")
    ids = {c["id"]: c["external_id"] for c in live}
    names = {c["id"]: c["company_id"] for c in state["companies"]}
    attached = {(ids.get(a["contact_id"]), names.get(a["company_id"])) for a in state["attachments"]}
    if attached != want.attachments:
        problems.append(f"{len(attached)} attachments, {len(want.attachments)} expected")
    return problems[:20]


# -- running it ------------------------------------------------------------------


def start_stack(env: dict[str, str], logs: Path, concurrency: int) -> list[subprocess.Popen]:
    """One worker (its CPU left to the scheduler) and beat."""
    common: dict[str, Any] = {"env": env, "cwd": ROOT, "stderr": subprocess.STDOUT}
    return [
        subprocess.Popen(worker_command("pageviews", concurrency, events=False), stdout=open(logs / "worker.log", "ab"), **common),
        subprocess.Popen(beat_command(logs / "beat-schedule"), stdout=open(logs / "beat.log", "ab"), **common),
    ]


def drain(redis: redis_lib.Redis, total: int, timeout: float) -> list[tuple[float, int]]:
    """(seconds, backlog) once a second until every event is delivered."""
    samples, started = [], time.monotonic()
    while True:
        counts = Counters(redis).snapshot()
        samples.append((round(time.monotonic() - started, 1), counts["backlog"]))
        if counts["accepted"] == total and counts["backlog"] == 0:
            return samples
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not drained after {timeout:.0f} s: {counts}")
        time.sleep(1.0)


def draw_backlog(samples: list[tuple[float, int]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -e '.[bench]'): no PNG drawn")
        return
    figure, axes = plt.subplots(figsize=(8, 3.5))
    axes.plot([s for s, _ in samples], [b for _, b in samples])
    axes.set_xlabel("seconds since the worker started")
    axes.set_ylabel("backlog (deliveries)")
    axes.set_title("Page views: backlog while one worker drains it at Intercom's limit")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def track_latencies(requests: list[dict], accepted_at: dict[tuple[str, int], float]) -> list[float]:
    """Seconds from acceptance to Intercom's call, for each track (a skipped identify makes no call to time)."""
    called: dict[tuple[Any, Any], float] = {}
    for r in requests:
        body = r.get("body") or {}
        if r["path"] == "/events" and r["method"] == "POST":
            called.setdefault((body.get("user_id"), body.get("created_at")), r["time"])
    return [called[key] - at for key, at in accepted_at.items() if key in called]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency-ms", type=float, default=150.0)
    ap.add_argument("--rate-limit", type=int, default=1666, help="calls per 10-s window")
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(RESULTS / "pageviews.json"))
    args = ap.parse_args()

    events = build_stream(args.people, args.seed)
    want = expected_of(events)
    redis_url, stop_redis = bench_redis()
    redis = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    fake = start_in_subprocess(
        FakeConfig(latency_ms=args.latency_ms, rate_limit=args.rate_limit, tokens=(TOKEN,), seed=args.seed, request_log_size=400_000)
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-pageviews-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY", "INTERCOM_", "REDIS_URL"))}
    env.update(REDIS_URL=redis_url, INTERCOM_API_URL=fake.url, INTERCOM_ACCESS_TOKEN=TOKEN, PYTHONPATH=str(ROOT))
    processes: list[subprocess.Popen] = []
    try:
        print(f"stream: {len(events)} events for {args.people} people; fake at {fake.url}; logs in {logs}")
        enqueuer = Enqueuer(redis, publisher_app(Settings(redis_url=redis_url)), max_backlog=10**9)
        valid = [validate_event(e) for e in events]
        accepted_at: dict[tuple[str, int], float] = {}
        for start in range(0, len(valid), 500):
            enqueuer.accept(valid[start : start + 500])
            now = time.time()
            for e in events[start : start + 500]:
                if e["type"] == "track":
                    accepted_at[(e["userId"], _seconds(e["timestamp"]))] = now
        processes = start_stack(env, logs, args.concurrency)
        wait_until_ready(logs / "worker.log")
        cpu_before = cpu_times(processes[0].pid)
        started = time.time()
        samples = drain(redis, len(events), args.timeout)
        elapsed = time.time() - started
        cpu = sum(cpu_times(processes[0].pid)) - sum(cpu_before)
        stats, counts = fake.stats(), Counters(redis).snapshot()
        latencies = track_latencies(fake.requests(limit=400_000), accepted_at)
        result = report(args, events, want, stats, counts, samples, elapsed, cpu, latencies, state_problems(fake.state(), want))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        draw_backlog(samples, out.with_name(out.stem + "-backlog.png"))
        print(json.dumps({k: v for k, v in result.items() if k != "backlog"}, indent=2))
        print(f"written to {out}")
        print("TARGETS MET" if not result["problems"] else "PROBLEMS: " + "; ".join(result["problems"]))
        return 1 if result["problems"] else 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        fake.stop()
        stop_redis()


def report(args: Any, events: list[dict], want: Expected, stats: dict, counts: dict, samples: list, elapsed: float,
           cpu: float, latencies: list[float], state: list[str]) -> dict[str, Any]:  # fmt: skip
    calls, total = stats["total"], len(events)
    result: dict[str, Any] = {
        "events": total,
        "people": args.people,
        "by_type": {kind: sum(e["type"] == kind for e in events) for kind in ("identify", "track", "group")},
        "fake": {"latency_ms": args.latency_ms, "rate_limit_per_10s": args.rate_limit},
        "calls": calls,
        "calls_per_event": round(calls / total, 4),
        "least_calls": want.least_calls,
        "least_calls_per_event": round(want.least_calls / total, 4),
        "calls_over_least": round(calls / want.least_calls, 4),
        "segment_calls_per_event": round(want.segment_calls / total, 4),
        "one_call_per_event": 1.0,
        "unchanged": counts["unchanged"],
        "coalesced": counts["coalesced"],
        "rate_limited": stats["rate_limited"],
        "rate_limited_share": round(stats["rate_limited"] / calls, 5) if calls else 0,
        "drain_seconds": round(elapsed, 1),
        "events_delivered_per_second": round(total / elapsed, 1),
        "accept_to_call_seconds_tracks": {"p50": round(percentile(latencies, 50), 1), "p99": round(percentile(latencies, 99), 1)},
        "worker_cpu_seconds_per_1000_events": round(cpu / total * 1000, 3),
        "end_state_problems": state,
        "counts": counts,
        "backlog": samples,
    }
    problems = list(state)
    if result["calls_over_least"] > 1.10:
        problems.append(f"{calls} calls, {result['calls_over_least']:.2f} x the least ({want.least_calls}); the target is 1.10")
    if result["rate_limited_share"] > 0.005:
        problems.append(f"429s are {result['rate_limited_share']:.2%} of calls (> 0.5%)")
    if counts["delivered"] != counts["deliveries"] or counts["dead_lettered"]:
        problems.append(f"delivered {counts['delivered']} of {counts['deliveries']}, dead-lettered {counts['dead_lettered']}")
    result["problems"] = problems
    return result


if __name__ == "__main__":
    raise SystemExit(main())
