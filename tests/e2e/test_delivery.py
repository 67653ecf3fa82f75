"""The main job end to end: a replayed stream ends in the exact Intercom state.

Real Redis, real ``celery worker`` subprocesses, the fake Intercom over HTTP.
"""

from __future__ import annotations

import pytest

from producers.sample import SampleStream
from tests.e2e.harness import accept, intercom_state, not_found_calls, wait_until_finished

pytestmark = pytest.mark.e2e


def test_a_mixed_stream_ends_in_the_exact_intercom_state(redis, redis_url, fake_intercom_factory, fleet):
    fake = fake_intercom_factory(search_lag=1.0)
    stream = SampleStream(people=120, companies=12, tracks_per_person=6, identifies_per_person=2, seed=11)
    assert len(stream.events) >= 1000
    workers = fleet(fake.url)
    workers.worker("w1", concurrency=16)
    workers.beat()

    accept(redis_url, stream.events)
    counts = wait_until_finished(redis, workers)

    assert intercom_state(fake.state(), stream) == stream.expected_state()
    assert counts["accepted"] == len(stream.events)
    assert counts["delivered"] == len(stream.events)
    assert (counts["dead_lettered"], counts["parked"], counts["retrying"], counts["backlog"]) == (0, 0, 0, 0)
    stats = fake.stats()
    assert stats["schema_invalid"] == 0
    assert not_found_calls(fake)[0] == 0  # no 404 for a contact that was merely late
    print(f"\nAPI calls per delivered event: {stats['total'] / counts['delivered']:.3f} "
          f"({stats['total']} calls, {counts['delivered']} events; by route {stats['by_route']})")
