"""The main job end to end: a replayed stream ends in the exact Intercom state.

Real Redis, real ``celery worker`` subprocesses, the fake Intercom over HTTP.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from producers.sample import SampleStream
from tests.e2e.harness import accept, intercom_state, not_found_calls, wait_until_finished

pytestmark = pytest.mark.e2e


def test_a_mixed_stream_ends_in_the_exact_intercom_state(redis, redis_url, fake_intercom_factory, fleet):
    fake = fake_intercom_factory(search_lag=1.0)
    stream = SampleStream(people=120, companies=12, tracks_per_person=6, identifies_per_person=2, seed=11)
    assert len(stream.events) >= 1000
    workers = fleet(fake.url)
    worker = workers.worker("w1", concurrency=16, WORKER_CPU="auto")
    workers.beat()

    accept(redis_url, stream.events)
    counts = wait_until_finished(redis, workers)
    if len(os.sched_getaffinity(0)) > 1:  # WORKER_CPU=auto pinned every thread of the worker to one CPU
        masks = cpu_masks(worker.pid)
        assert len(masks) == 1 and masks.pop().isdigit(), masks

    assert intercom_state(fake.state(), stream) == stream.expected_state()
    assert counts["accepted"] == len(stream.events)
    assert counts["delivered"] == len(stream.events)
    assert (counts["dead_lettered"], counts["parked"], counts["retrying"], counts["backlog"]) == (0, 0, 0, 0)
    stats = fake.stats()
    assert stats["schema_invalid"] == 0
    assert not_found_calls(fake)[0] == 0  # no 404 for a contact that was merely late
    print(
        f"\nAPI calls per delivered event: {stats['total'] / counts['delivered']:.3f} "
        f"({stats['total']} calls, {counts['delivered']} events; by route {stats['by_route']})"
    )


def cpu_masks(pid: int) -> set[str]:
    """The CPUs each thread of a process may run on (Cpus_allowed_list), as a set."""
    masks = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        masks.add(status.split("Cpus_allowed_list:")[1].split()[0])
    return masks
