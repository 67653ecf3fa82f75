"""The door's one write: a request's queue messages and its counts, in one atomic step.

``lua/accept.lua`` pushes every Celery message of a request, adds its people's
in-flight counts and the ``accepted`` counter, or (on any error, Redis out of
memory included) writes nothing.  So a 503 never leaves part of a request
queued, and ``relay:inflight`` never counts events that are not on the queue.

The script is sent once, on one connection of the broker's own pool (the Redis
kombu would have pushed to), never re-sent: redis-py retries a command whose
connection broke, and a script that ran but whose answer was lost would then
store the request twice.  A failure is an error for the caller (the door answers
503 and the client sends again).  With ``replicas`` the same connection then asks
``WAIT``: Redis answers how many replicas hold everything this connection wrote.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from redis.exceptions import NoScriptError, ResponseError

from worker.store import keys, scripts

SOURCE = scripts.ACCEPT.source()
SHA = hashlib.sha1(SOURCE.encode()).hexdigest()


class NotReplicated(Exception):
    """The request is stored on the master, but no replica acknowledged it in time."""

    def __init__(self, acknowledged: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"the events are stored, but {acknowledged} of the {wanted} replica(s) asked for acknowledged them "
            f"within {timeout_ms} ms; send again (events with a messageId are delivered once)"
        )


def store_request(
    pool: Any,
    puts: list[tuple[str, str]],
    people: dict[str, int],
    *,
    replicas: int = 0,
    replica_timeout_ms: int = 1000,
) -> int:
    """Push ``puts`` (queue key, message) and count ``people``'s events, atomically; returns the messages pushed.

    Raises redis's errors when nothing was stored, and NotReplicated when
    ``replicas`` > 0 and fewer acknowledged the write within the timeout.
    """
    ks, args = scripts.ACCEPT.flat(
        keys={"inflight": keys.INFLIGHT, "counters": keys.COUNTERS, "queues": [key for key, _ in puts]},
        args={
            "accepted": sum(people.values()),
            "messages": [message for _, message in puts],
            "people": [x for person, count in people.items() for x in (person, count)],
        },
    )
    connection = pool.get_connection()
    try:
        pushed = _eval(connection, ks, args)
        if replicas:
            acknowledged = _ask(connection, "WAIT", replicas, replica_timeout_ms)
            if acknowledged < replicas:
                raise NotReplicated(acknowledged, replicas, replica_timeout_ms)
        return int(pushed)
    except (ResponseError, NotReplicated):
        raise  # Redis answered: the connection is in step
    except BaseException:
        connection.disconnect()  # a reply may still be on its way: the connection can't be reused
        raise
    finally:
        pool.release(connection)


def _eval(connection: Any, ks: Sequence[str], args: Sequence[Any]) -> Any:
    try:
        return _ask(connection, "EVALSHA", SHA, len(ks), *ks, *args)
    except NoScriptError:  # Redis restarted or its scripts were flushed: nothing ran
        return _ask(connection, "EVAL", SOURCE, len(ks), *ks, *args)


def _ask(connection: Any, *command: Any) -> Any:
    """One command on ``connection``, sent once: no reconnection, no retry."""
    connection.send_command(*command)
    return connection.read_response()
