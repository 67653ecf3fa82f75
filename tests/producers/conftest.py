"""Fixtures of the door's tests: a real Celery app, Enqueuer and uvicorn server on the suite's Redis."""

from __future__ import annotations

from typing import Any, Iterator

import celery
import pytest

from producers.enqueue import Enqueuer
from producers.http import create_app
from tests.producers import OTHER_WRITE_KEY, WRITE_KEY, LiveServer
from worker.settings import Settings


@pytest.fixture
def celery_app(redis_url: str, redis: Any) -> Iterator[celery.Celery]:
    """A Celery app publishing to the test Redis; new per test because the
    ``redis`` fixture flushes kombu's queue bindings between tests."""
    app = celery.Celery("test-producers", broker=redis_url, set_as_current=False)
    yield app
    app.close()


@pytest.fixture
def enqueuer(redis: Any, celery_app: celery.Celery) -> Enqueuer:
    return Enqueuer(redis, celery_app, max_backlog=1_000_000)


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return Settings(redis_url=redis_url, write_keys=(WRITE_KEY, OTHER_WRITE_KEY))


@pytest.fixture
def live_server(settings: Settings, enqueuer: Enqueuer) -> Iterator[LiveServer]:
    """The ingestion app on a real uvicorn, with the test Redis behind it."""
    server = LiveServer(create_app(settings, enqueuer)).start()
    yield server
    server.stop()
