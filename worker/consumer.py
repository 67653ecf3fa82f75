"""The worker's Celery consumer: a message it cannot read becomes a dead letter, never a silent drop.

Celery's consumer acknowledges a message whose body it cannot decode (logging
"Can't decode message body") and rejects one that names no known task or
that it refuses as a task; either way the message is gone, and with it
whatever events the door had answered 200 for.  This consumer keeps each such
message first, as a dead letter with its reason, raw body and headers
(worker/store/unreadable.py), then acknowledges it:

=====================  ===============================================================
reason                 the message
=====================  ===============================================================
undecodable_message    its body is not what its content type says (invalid JSON, nested
                       too deep to decode, ...)
unknown_message        carries no task name: not a Celery task message
unknown_task           names a task no worker registers
invalid_task           a content type the workers do not accept, fields Celery refuses,
                       or a body not shaped as a task's arguments (for ``intercom.ingest``:
                       not the envelopes the door writes)
=====================  ===============================================================

The last kind Celery would only find out in the pool, where the task fails
(and its message is acknowledged) or, for a body it cannot even unpack, the
message is never acknowledged and comes back forever; it is checked here, on
the body Celery's strategy decodes anyway.

When the message is an ingest message whose envelopes can still be read, the
in-flight count of their people is released in the same step (their events
will not reach their lanes), and their lanes woken.  When the letter cannot be
kept (Redis does not answer), the message is left unacknowledged: kombu puts
it back on the queue later, and it is tried again.

Selected by Celery's ``worker_consumer`` setting (worker/celery_app.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from celery.exceptions import InvalidTaskError
from celery.worker.consumer import consumer as celery_consumer
from kombu.exceptions import ContentDisallowed, DecodeError, OperationalError
from redis.exceptions import RedisError
from vine import promise

from worker.delivery import dispatch
from worker.runtime import get_runtime
from worker.store.inflight import ingest_envelopes, people_of
from worker.store.unreadable import INVALID_TASK, UNDECODABLE, UNKNOWN_MESSAGE, UNKNOWN_TASK, UnreadableMessages, message_letter
from worker.task_names import INGEST_TASK

log = logging.getLogger("worker.consumer")


class Consumer(celery_consumer.Consumer):
    # Set by Celery's Consumer; celery-types leaves them out.
    strategies: dict[str, Any]
    connection_errors: tuple[type[BaseException], ...]
    _unreadable: UnreadableMessages | None = None

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        what = f"the body is not valid {message.content_type or 'content'}"
        self._keep(message, UNDECODABLE, what, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._keep(message, UNKNOWN_MESSAGE, "no task named: not a Celery task message", None)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = str(_headers(message).get("task"))[:200]
        self._keep(message, UNKNOWN_TASK, f"no task named {name!r} in this worker", exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._keep(message, INVALID_TASK, "a task message the worker refuses", exc)

    def create_task_handler(self, promise: Any = promise) -> Any:
        """Celery's handler, after a check of the body of a known task's message."""
        handle = super().create_task_handler(promise)

        def on_task_received(message: Any) -> Any:
            name = _headers(message).get("task")
            if name not in self.strategies:  # not a task message, or an unknown task: Celery's handler says which
                return handle(message)
            try:
                payload = message.payload  # decoded once: the strategy reads the same
            except ContentDisallowed as exc:
                return self.on_invalid_task(None, message, exc)
            except (DecodeError, RecursionError, ValueError) as exc:
                return self.on_decode_error(message, exc)
            problem = _body_problem(str(name), payload)
            if problem:
                return self.on_invalid_task(None, message, InvalidTaskError(problem))
            return handle(message)

        return on_task_received

    def _keep(self, message: Any, reason: str, what: str, exc: Exception | None) -> None:
        headers = _headers(message)
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "-"
        tag = getattr(message, "delivery_tag", None)
        letter = message_letter(
            f"{reason}: {what}",
            body=message.body,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            queue=(message.delivery_info or {}).get("routing_key"),
            detail=detail,
            letter_id=f"message:{tag}" if tag else None,
        )
        people = _people(headers, message.body)
        try:
            store = self._store()
            woken = store.keep(letter, people)
        except RedisError as exc2:
            # Not kept: leave it unacknowledged, so that kombu puts it back and it is tried again.
            log.error("unreadable message (%s) NOT kept, Redis does not answer (%s); left on the queue", reason, type(exc2).__name__)
            return
        if woken is None:
            log.warning("unreadable message %s came back; kept already as a dead letter", letter["id"])
        else:
            released = f"; in-flight count of {len(people)} person(s) released" if people else ""
            log.error("unreadable message kept as dead letter %s: %s (%s)%s", letter["id"], letter["reason"], detail[:300], released)
            self._wake(woken)
            self._tell_flower(headers, letter)
        message.ack_log_error(log, self.connection_errors)

    def _wake(self, woken: list[tuple[str, str]]) -> None:
        """Send the lanes that releasing the letter's people woke.

        This runs in the worker's event loop, where an exception Celery does
        not take for a lost connection ends the worker: kombu's
        OperationalError (a publish that gave up retrying while Redis is away)
        is one.  A woken lane not sent has its dispatch deadline set, so the
        sweep sends it once Redis answers.
        """
        lost: tuple[type[BaseException], ...] = (OperationalError, RedisError, *self.connection_errors)
        try:
            for person, head in woken:
                dispatch(self.app, person, head)
        except lost as exc:
            log.warning("lanes woken by an unreadable message not sent (%s); the sweep sends them", type(exc).__name__)

    def _tell_flower(self, headers: dict, letter: dict) -> None:
        """Flower sees the task fail, naming the dead letter, as Celery's own handler shows an unknown task.

        Only for a message that names a task id: without one there is no task to show.
        The events carry no body (Flower shows arguments, and the body may hold anything).
        """
        task_id, dispatcher = headers.get("id"), getattr(self, "event_dispatcher", None)
        if not (task_id and dispatcher):
            return
        dispatcher.send("task-received", uuid=str(task_id), name=str(headers.get("task") or "?")[:200], args="(unreadable)", kwargs="{}")
        dispatcher.send("task-failed", uuid=str(task_id), exception=f"{letter['reason']} (kept as dead letter {letter['id']})")

    def _store(self) -> UnreadableMessages:
        if self._unreadable is None:
            rt = get_runtime()
            self._unreadable = UnreadableMessages(rt.redis, rt.lanes)
        return self._unreadable


def _headers(message: Any) -> dict:
    headers = getattr(message, "headers", None)
    return headers if isinstance(headers, dict) else {}


def _people(headers: dict, body: Any) -> Counter[str]:
    """The events per person of an ingest message whose envelopes can be read, else none."""
    if headers.get("task") != INGEST_TASK or not isinstance(body, (bytes, str)):
        return Counter()
    return people_of(ingest_envelopes(body) or [])


def _body_problem(name: str, payload: Any) -> str | None:
    """What is wrong with a task message's decoded body (Celery's protocol 2), or None."""
    if not (isinstance(payload, (list, tuple)) and len(payload) == 3):
        return "the body is not [args, kwargs, embed]"
    args, kwargs, embed = payload
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not isinstance(embed, (dict, type(None))):
        return "the body is not [args, kwargs, embed]"
    if name == INGEST_TASK and not _are_envelopes(args, kwargs):
        return "not an ingest message as the door writes it: args must be [[{seq, event}, ...]]"
    return None


def _are_envelopes(args: Any, kwargs: dict) -> bool:
    if kwargs or len(args) != 1 or not isinstance(args[0], list):
        return False
    return all(
        isinstance(e, dict)
        and isinstance(e.get("seq"), int)
        and isinstance(e.get("event"), dict)
        and (e["event"].get("userId") or e["event"].get("anonymousId"))
        for e in args[0]
    )
