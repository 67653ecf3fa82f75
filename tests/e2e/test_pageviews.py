"""Page views through real workers: identifies that change nothing cost nothing, and the end state is exact.

The stream is bench/pageviews.py's, small: an identify on every page view
(the name changing in about 5%), a track every third, a group per visit, all
accepted before the workers start, so that each person's lane holds a run of
identifies to coalesce and many to skip.
"""

from __future__ import annotations

import pytest

from bench.pageviews import build_stream, expected_of, state_problems
from tests.e2e.harness import accept, wait_until_finished

pytestmark = pytest.mark.e2e


def test_page_views_cost_no_more_calls_than_their_changes_and_end_exactly(redis, redis_url, fake_intercom_factory, fleet):
    fake = fake_intercom_factory()
    events = build_stream(people=40, seed=3)
    want = expected_of(events)
    accept(redis_url, events)

    workers = fleet(fake.url)
    workers.worker("w1", concurrency=8)
    workers.worker("w2", concurrency=8)
    workers.beat()
    counts = wait_until_finished(redis, workers)

    assert state_problems(fake.state(), want) == []
    assert (counts["delivered"], counts["dead_lettered"]) == (len(events), 0)
    calls = fake.stats()["total"]
    assert calls <= want.least_calls * 1.1, f"{calls} calls for a least of {want.least_calls}"
    assert counts["unchanged"] > 0 and counts["coalesced"] > 0
    print(f"\npage views: {len(events)} events, {calls} calls (least {want.least_calls}, Segment {want.segment_calls})")
