from __future__ import annotations

from typing import Iterator

import pytest

from tests.e2e.harness import Fleet, relay_env


@pytest.fixture
def fleet(redis, redis_url, tmp_path) -> Iterator:
    """Make a Fleet for a fake Intercom URL; every process it starts is stopped after the test."""
    fleets: list[Fleet] = []

    def make(intercom_url: str, **env: str) -> Fleet:
        f = Fleet(relay_env(redis_url, intercom_url, **env), tmp_path)
        fleets.append(f)
        return f

    yield make
    for f in fleets:
        f.stop()
