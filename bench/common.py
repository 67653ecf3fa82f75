"""What the benchmarks share: a Redis of their own.

Without REDIS_URL a benchmark starts a private redis-server.  With it, a
benchmark runs in the first empty database (1-15) of that server, so it never
empties data it did not write, and stops with a message if there is none.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

import redis as redis_lib

from demo.embedded_redis import EmbeddedRedis, first_empty_database


def bench_redis() -> tuple[str, Callable[[], None]]:
    """(redis URL, stop function) for a benchmark run."""
    given = os.environ.get("REDIS_URL")
    if not given:
        server = EmbeddedRedis().start()
        return server.url, server.stop
    url = first_empty_database(given)
    if url is None:
        sys.exit(f"REDIS_URL={given}: no empty database among 1-15 to benchmark in; unset REDIS_URL to use a private redis-server")

    def empty() -> None:  # the database was empty before the run: only the run's own keys go
        redis_lib.Redis.from_url(url).flushdb()

    return url, empty
