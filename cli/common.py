"""What the commands share: settings from the environment, a Redis that answers, the door's enqueuer.

Each turns a bad setting or an unreachable Redis into a ``click.ClickException``:
one line naming the problem, and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click
import redis as redis_lib

from producers.enqueue import Enqueuer
from worker.broker import publisher_app
from worker.settings import Settings, SettingsError
from worker.store.connect import connect


def load_settings(**overrides: Any) -> Settings:
    """The settings of the environment (``overrides`` as ``Settings.from_env`` takes them)."""
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def open_redis(settings: Settings) -> Any:
    """A client on REDIS_URL, once Redis has answered."""
    client = connect(settings.redis_url, decode_responses=True, socket_connect_timeout=5)
    try:
        client.ping()
    except redis_lib.RedisError as exc:
        raise click.ClickException(f"Redis at REDIS_URL does not answer: {exc}") from None
    return client


def open_enqueuer(settings: Settings) -> Enqueuer:
    """What accepts events as the ingestion door does."""
    return Enqueuer.from_settings(open_redis(settings), publisher_app(settings), settings)
