"""The door: Segment-spec events in, accepted into Redis.

The module-level API mirrors Segment's analytics-python::

    import producers
    producers.identify("u1", {"email": "ada@example.com"})
    producers.track("u1", "Signed Up", {"plan": "pro"})

Each call returns once the event is durable in Redis (the default ``sync``
mode; see :mod:`producers.client` for the batching mode and its trade-off),
and raises :class:`InvalidEvent` naming the field for bad input.  The default
:class:`Producer` is built on first use from ``Settings.from_env()`` — never at
import — or set with :func:`configure`.
"""

from __future__ import annotations

import threading
from typing import Any

from producers.client import BufferFull, Producer, build_enqueuer
from producers.enqueue import BackPressure, Enqueuer
from producers.events import EVENT_TYPES, MAX_EVENT_BYTES, InvalidEvent, validate_event
from worker.settings import Settings

__all__ = [
    "BackPressure",
    "BufferFull",
    "EVENT_TYPES",
    "Enqueuer",
    "InvalidEvent",
    "MAX_EVENT_BYTES",
    "Producer",
    "alias",
    "configure",
    "default_producer",
    "flush",
    "group",
    "identify",
    "page",
    "screen",
    "shutdown",
    "track",
    "validate_event",
]

_default: Producer | None = None
_lock = threading.Lock()


def configure(producer: Producer | None = None, *, settings: Settings | None = None, sync: bool = True, **options: Any) -> Producer:
    """Set the Producer behind the module functions and return it.

    Pass a ready ``producer``, or let one be built from ``settings`` (default:
    ``Settings.from_env()``) with ``sync`` and the other Producer ``options``.
    A previous default producer is flushed and shut down first.
    """
    global _default
    if producer is None:
        if settings is None:
            settings = Settings.from_env()
        producer = Producer(build_enqueuer(settings), sync=sync, **options)
    with _lock:
        previous, _default = _default, producer
    if previous is not None and previous is not producer:
        previous.shutdown()
    return producer


def default_producer() -> Producer:
    """The Producer behind the module functions, built from the environment on first use."""
    global _default
    with _lock:
        if _default is None:
            from worker.settings import Settings  # noqa: PLC0415

            _default = Producer(build_enqueuer(Settings.from_env()))
        return _default


def identify(user_id: str | None = None, traits: dict | None = None, **kwargs: Any) -> dict:
    """See :meth:`Producer.identify`."""
    return default_producer().identify(user_id, traits, **kwargs)


def track(user_id: str | None = None, event: str | None = None, properties: dict | None = None, **kwargs: Any) -> dict:
    """See :meth:`Producer.track`."""
    return default_producer().track(user_id, event, properties, **kwargs)


def group(user_id: str | None = None, group_id: str | None = None, traits: dict | None = None, **kwargs: Any) -> dict:
    """See :meth:`Producer.group`."""
    return default_producer().group(user_id, group_id, traits, **kwargs)


def page(
    user_id: str | None = None, category: str | None = None, name: str | None = None, properties: dict | None = None, **kwargs: Any
) -> dict:
    """See :meth:`Producer.page`."""
    return default_producer().page(user_id, category, name, properties, **kwargs)


def screen(
    user_id: str | None = None, category: str | None = None, name: str | None = None, properties: dict | None = None, **kwargs: Any
) -> dict:
    """See :meth:`Producer.screen`."""
    return default_producer().screen(user_id, category, name, properties, **kwargs)


def alias(previous_id: str | None = None, user_id: str | None = None, **kwargs: Any) -> dict:
    """See :meth:`Producer.alias`."""
    return default_producer().alias(previous_id, user_id, **kwargs)


def flush() -> None:
    """Block until the default producer's buffered events are accepted (batching mode)."""
    if _default is not None:
        _default.flush()


def shutdown() -> None:
    """Flush and stop the default producer; the next call builds a new one."""
    global _default
    with _lock:
        previous, _default = _default, None
    if previous is not None:
        previous.shutdown()
