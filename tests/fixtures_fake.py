"""Pytest plugin: a fresh fake Intercom per test, served in a background thread.

Load it with ``pytest_plugins = ["tests.fixtures_fake"]``. Fixtures:

* ``fake_intercom`` — a running fake with the default FakeConfig; yields its handle
  (``.url``, ``.state()``, ``.requests()``, ``.stats()``, ``.configure(**kw)``, ``.reset()``…);
* ``fake_intercom_factory`` — ``make(config=None, **overrides)`` starts more fakes with other
  settings (``make(search_lag=0.2, rate_limit=5)``); all are stopped after the test;
* ``fake_intercom_client`` — an httpx client on ``fake_intercom`` with the default token and
  ``Intercom-Version: 2.16``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import httpx
import pytest

from fake_intercom import FakeConfig, ThreadHandle, start_in_thread

#: The token a default FakeConfig accepts.
DEFAULT_TOKEN = FakeConfig().tokens[0]


def api_client(handle: Any, token: str = DEFAULT_TOKEN, version: str | None = "2.16") -> httpx.Client:
    """An httpx client on a fake's API with `Authorization: Bearer <token>`."""
    headers = {"Authorization": f"Bearer {token}"}
    if version:
        headers["Intercom-Version"] = version
    return httpx.Client(base_url=handle.url, headers=headers, timeout=10.0)


@pytest.fixture
def fake_intercom_factory() -> Iterator[Callable[..., ThreadHandle]]:
    """Start fakes with FakeConfig overrides; every one is stopped at teardown."""
    handles: list[ThreadHandle] = []

    def make(config: FakeConfig | None = None, **overrides: Any) -> ThreadHandle:
        handle = start_in_thread((config or FakeConfig()).changed(**overrides))
        handles.append(handle)
        return handle

    yield make
    for handle in handles:
        # Not waiting for uvicorn's ~0.1 s graceful shutdown keeps a suite of many small
        # tests fast; the daemon thread finishes on its own and nothing is shared with it.
        handle.stop(wait=False)


@pytest.fixture
def fake_intercom(fake_intercom_factory: Callable[..., ThreadHandle]) -> ThreadHandle:
    """A fresh fake Intercom with the default configuration."""
    return fake_intercom_factory()


@pytest.fixture
def fake_intercom_client(fake_intercom: ThreadHandle) -> Iterator[httpx.Client]:
    """An authenticated httpx client on `fake_intercom`."""
    with api_client(fake_intercom) as client:
        yield client
