"""The worker's consumer tells Flower that an unreadable message's task failed, naming its dead letter,
and outlives a broker that goes away while it wakes the lanes of the message's people."""

from __future__ import annotations

from typing import Any

from kombu.exceptions import OperationalError

from worker.consumer import Consumer


class Dispatcher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, kind: str, **fields: Any) -> None:
        self.sent.append((kind, fields))


def consumer_with(dispatcher: Dispatcher | None) -> Consumer:
    consumer = Consumer.__new__(Consumer)  # only its event dispatcher is used here
    consumer.event_dispatcher = dispatcher  # type: ignore[attr-defined]  # set by a bootstep in a running worker
    return consumer


def test_flower_sees_the_task_received_then_failed_with_the_dead_letter_and_no_body() -> None:
    dispatcher = Dispatcher()
    letter = {"id": "message:tag-1", "reason": "unknown_task: no task named 'x' in this worker"}
    consumer_with(dispatcher)._tell_flower({"id": "t-1", "task": "x"}, letter)
    assert [kind for kind, _ in dispatcher.sent] == ["task-received", "task-failed"]
    received, failed = (fields for _, fields in dispatcher.sent)
    assert (received["uuid"], received["name"], received["args"]) == ("t-1", "x", "(unreadable)")
    assert failed["uuid"] == "t-1" and "message:tag-1" in failed["exception"] and "unknown_task" in failed["exception"]


def test_a_message_without_a_task_id_or_a_worker_without_events_sends_nothing() -> None:
    dispatcher = Dispatcher()
    consumer_with(dispatcher)._tell_flower({"task": "x"}, {"id": "message:t", "reason": "r"})
    assert dispatcher.sent == []
    consumer_with(None)._tell_flower({"id": "t-1"}, {"id": "message:t", "reason": "r"})  # events off: nothing to call


class AwayBroker:
    """A Celery app whose publishes give up, as kombu's do once Redis stayed away through their retries."""

    def __init__(self) -> None:
        self.tries = 0

    def send_task(self, *args: Any, **kwargs: Any) -> None:
        self.tries += 1
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_lanes_woken_while_the_broker_is_away_are_left_to_the_sweep_not_raised_into_the_event_loop() -> None:
    consumer = consumer_with(None)
    app = AwayBroker()
    consumer.app = app  # type: ignore[assignment]  # only send_task is used
    consumer.connection_errors = ()
    consumer._wake([("ann", "1:0I"), ("bob", "2:0I")])  # OperationalError is fatal in Celery's event loop: not raised
    assert app.tries == 1
