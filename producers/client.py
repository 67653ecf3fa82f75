"""The Python API: ``identify()``, ``track()``… like Segment's analytics-python.

Each call builds a plain Segment event, checks it with the same
:func:`~producers.events.validate_event` as the HTTP server (so bad input
raises :class:`~producers.events.InvalidEvent` at the call, naming the field)
and hands it to the one :meth:`Enqueuer.accept` path.

Two modes, chosen per :class:`Producer`:

* ``sync=True`` (the default) — the call returns once the event is in Redis
  (docs/design.md, guarantee 1).  Each call is one ``accept``: a few Redis round
  trips, well under a millisecond on a local Redis.  ``BackPressure`` from a
  relay over its backlog bound reaches the caller, who knows the event was
  not accepted.
* ``sync=False`` — analytics-python's batching: the call puts the event in an
  in-memory buffer and returns at once; a background thread accepts the buffer
  in batches of ``batch_size`` or every ``flush_interval`` seconds, and on
  ``flush()`` and at interpreter exit.  Faster for a hot loop, but an event is
  durable only once its batch is accepted: a process killed before then
  (SIGKILL, OOM) loses what was buffered.  Choose it only where that is fine.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from producers.enqueue import BackPressure, Enqueuer
from producers.events import validate_event

if TYPE_CHECKING:  # imported when a producer is built, not at import
    from worker.settings import Settings

log = logging.getLogger(__name__)

#: Named in ``context.library`` like every Segment library names itself.
LIBRARY = {"name": "intercom-relay-python", "version": "0.1.0"}

#: The buffer of the batching mode; when it is full, calls raise BufferFull
#: rather than grow memory without bound while Redis is slow or away.
DEFAULT_MAX_QUEUE_SIZE = 10_000

#: Tries of the batching thread before it gives a batch up (a Redis outage of
#: about a minute with the backoff below); back-pressure is waited out instead.
BATCH_RETRIES = 8

#: Put in the buffer by flush(): the batch being gathered goes out at once.
_FLUSH: Any = object()
#: Put in the buffer by shutdown(), after a flush: the thread ends.
_STOP: Any = object()

ErrorHandler = Callable[[Exception, list[dict]], None]


class BufferFull(RuntimeError):
    """The batching mode's in-memory buffer is full: the event was not taken."""


class Producer:
    """Builds, checks and accepts Segment events; see the module docstring."""

    def __init__(
        self,
        enqueuer: Enqueuer,
        batch_size: int = 100,
        flush_interval: float = 0.5,
        *,
        sync: bool = True,
        max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self.enqueuer = enqueuer
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.sync = sync
        self.on_error = on_error
        self._queue: queue.Queue[dict] = queue.Queue(max_queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the Segment calls ---------------------------------------------------

    def identify(
        self,
        user_id: str | None = None,
        traits: dict | None = None,
        *,
        anonymous_id: str | None = None,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Record who a person is and their traits; returns the accepted event."""
        return self.enqueue(_message("identify", user_id, anonymous_id, context, timestamp, message_id, integrations, traits=traits or {}))

    def track(
        self,
        user_id: str | None = None,
        event: str | None = None,
        properties: dict | None = None,
        *,
        anonymous_id: str | None = None,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Record that a person did ``event``; returns the accepted event."""
        return self.enqueue(
            _message("track", user_id, anonymous_id, context, timestamp, message_id, integrations, event=event, properties=properties or {})
        )

    def group(
        self,
        user_id: str | None = None,
        group_id: str | None = None,
        traits: dict | None = None,
        *,
        anonymous_id: str | None = None,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Put a person in a group (an Intercom company); returns the accepted event."""
        return self.enqueue(
            _message("group", user_id, anonymous_id, context, timestamp, message_id, integrations, groupId=group_id, traits=traits or {})
        )

    def page(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: dict | None = None,
        *,
        anonymous_id: str | None = None,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Record a page view; returns the accepted event."""
        return self.enqueue(
            _message(
                "page",
                user_id,
                anonymous_id,
                context,
                timestamp,
                message_id,
                integrations,
                category=category,
                name=name,
                properties=properties or {},
            )
        )

    def screen(
        self,
        user_id: str | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: dict | None = None,
        *,
        anonymous_id: str | None = None,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Record a mobile screen view; returns the accepted event."""
        return self.enqueue(
            _message(
                "screen",
                user_id,
                anonymous_id,
                context,
                timestamp,
                message_id,
                integrations,
                category=category,
                name=name,
                properties=properties or {},
            )
        )

    def alias(
        self,
        previous_id: str | None = None,
        user_id: str | None = None,
        *,
        context: dict | None = None,
        timestamp: datetime | str | None = None,
        message_id: str | None = None,
        integrations: dict | None = None,
    ) -> dict:
        """Say that ``previous_id`` and ``user_id`` are one person; returns the accepted event."""
        return self.enqueue(_message("alias", user_id, None, context, timestamp, message_id, integrations, previousId=previous_id))

    # -- the one path in -----------------------------------------------------

    def enqueue(self, message: dict) -> dict:
        """Validate a Segment event and accept it (sync) or buffer it (batching).

        Raises InvalidEvent for bad input, BackPressure (sync) when the relay
        is over its backlog bound, BufferFull (batching) when the buffer is.
        """
        event = validate_event(message)
        if self.sync:
            self.enqueuer.accept([event])
            return event
        self._ensure_thread()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            raise BufferFull(f"{self._queue.maxsize} events are waiting to be accepted; Redis is slow or unreachable") from None
        return event

    def flush(self) -> None:
        """Block until every buffered event is accepted (or given up); no-op when sync."""
        if not self.sync and self._thread is not None:
            self._queue.put(_FLUSH)  # ends the batch being gathered without waiting the interval
            self._queue.join()

    def shutdown(self) -> None:
        """Flush, then stop the batching thread.  Registered at exit when batching."""
        self.flush()
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.flush_interval + 5)
            self._thread = None
        atexit.unregister(self.shutdown)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # -- batching mode -------------------------------------------------------

    def _ensure_thread(self) -> None:
        """Start the batching thread on first use (never at construction or import)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="intercom-relay-producer", daemon=True)
                self._thread.start()
                atexit.register(self.shutdown)

    def _run(self) -> None:
        """Take batches off the buffer and accept them until shutdown."""
        stop = False
        while not stop:
            batch, taken, stop = self._next_batch()
            try:
                if batch:
                    self._accept_with_retries(batch)
            finally:
                for _ in range(taken):
                    self._queue.task_done()

    def _next_batch(self) -> tuple[list[dict], int, bool]:
        """Up to batch_size events, gathered for at most flush_interval after the first
        or until a flush; how many queue items were taken (for task_done); and
        whether shutdown asked the thread to stop."""
        batch: list[dict] = []
        taken = 0
        deadline = None
        while len(batch) < self.batch_size:
            timeout = self.flush_interval if deadline is None else deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            taken += 1
            if item is _STOP:
                return batch, taken, True
            if item is _FLUSH:
                break
            batch.append(item)
            deadline = deadline or time.monotonic() + self.flush_interval
        return batch, taken, False

    def _accept_with_retries(self, batch: list[dict]) -> None:
        """Accept a batch, waiting out back-pressure; give up after BATCH_RETRIES errors."""
        failures = 0
        while True:
            try:
                self.enqueuer.accept(batch)
                return
            except BackPressure as exc:
                time.sleep(exc.retry_after)  # the relay asked us to wait; data is still in memory
            except Exception as exc:  # noqa: BLE001 - any Redis/kombu error; retried, then reported
                failures += 1
                if failures >= BATCH_RETRIES:
                    log.error("gave up accepting %d events after %d tries: %s", len(batch), failures, exc)
                    if self.on_error:
                        self.on_error(exc, batch)
                    return
                time.sleep(min(0.25 * 2**failures, 15))


def _message(
    kind: str,
    user_id: Any,
    anonymous_id: Any,
    context: dict | None,
    timestamp: datetime | str | None,
    message_id: str | None,
    integrations: dict | None,
    **fields: Any,
) -> dict:
    """A raw Segment event as analytics-python builds it (None fields left out)."""
    context = dict(context or {})
    context.setdefault("library", dict(LIBRARY))
    message: dict[str, Any] = {
        "type": kind,
        "userId": user_id,
        "anonymousId": anonymous_id,
        "messageId": message_id,
        # The client's clock at the call, as analytics-python stamps it.
        "timestamp": timestamp if timestamp is not None else datetime.now(timezone.utc),
        "context": context,
        "integrations": integrations,
        **fields,
    }
    return {k: v for k, v in message.items() if v is not None}


def build_enqueuer(settings: Settings) -> Enqueuer:
    """An Enqueuer on ``settings.redis_url``, publishing by task name.

    The publishing app (worker/broker.py) shares the worker's broker settings
    (serializer, transport, visibility timeout) without loading its tasks.
    """
    from worker.broker import publisher_app  # noqa: PLC0415 - imported when a producer is built, not at import
    from worker.store.connect import connect  # noqa: PLC0415

    client = connect(settings.redis_url, decode_responses=True, health_check_interval=30)
    return Enqueuer.from_settings(client, publisher_app(settings), settings)
