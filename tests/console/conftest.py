"""The console under test: its app served by uvicorn on 127.0.0.1 in a thread, and headless Chromium.

The console is composed here as the ingestion server will mount it
(``Starlette(routes=[console.app.mount(settings, redis)])``).  The browser is
the one tests/e2e/js_clients.py drives: Debian's ``chromium`` under
Playwright, never downloaded; missing, it fails the test, saying how to
install it (.ci/run does).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis as redis_lib
from starlette.applications import Starlette

from console.app import mount
from tests.e2e import js_clients
from tests.e2e.conftest import fleet  # noqa: F401 - the running stack's workers, for the browser tests
from tests.producers import LiveServer
from worker.settings import Settings

#: The console's sign-in in these tests, and a write key that must not open it.
ADMIN = ("ops", "console-test-password")
WRITE_KEY = "segment-write-key-for-tests"

#: Set to a directory (docs/img to refresh the documentation's) to keep the tests' screenshots there.
SCREENSHOTS_ENV = "CONSOLE_SCREENSHOTS"


def console_settings(env: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings as `intercom-relay serve` reads them, with the test's ADMIN_KEYS and WRITE_KEYS."""
    settings = Settings.from_env({**(env or {}), "ADMIN_KEYS": ":".join(ADMIN), "WRITE_KEYS": WRITE_KEY})
    return dataclasses.replace(settings, **overrides)


class ConsoleServer(LiveServer):
    """The console alone in an app, on uvicorn in a thread; ``url`` is its root (``…/console/``)."""

    def __init__(self, settings: Settings, redis: redis_lib.Redis) -> None:
        super().__init__(Starlette(routes=[mount(settings, redis)]))
        self.url += "/console/"


@pytest.fixture
def console_server() -> Iterator[Callable[[Settings, redis_lib.Redis], ConsoleServer]]:
    """Start consoles for (settings, redis); every one is stopped after the test."""
    started: list[ConsoleServer] = []

    def start(settings: Settings, redis: redis_lib.Redis) -> ConsoleServer:
        served = ConsoleServer(settings, redis)
        served.start()
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Chromium (the system's), one per test module."""
    with js_clients.chromium() as browser:
        yield browser


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: $CONSOLE_SCREENSHOTS if set, else the test's tmp dir."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
