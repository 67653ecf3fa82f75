"""Helpers for the door's tests (the fixtures are in conftest.py beside this).

Everything here runs against the real Redis of tests/conftest.py, a real
Celery app publishing to it, and (for the HTTP tests) the app under a real
uvicorn server in a thread on a free port.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Any

import uvicorn

#: The write keys the test server accepts (long enough for the door: worker/settings.py, MIN_WRITE_KEY).
WRITE_KEY = "wk_test_0123456789abcdefghij"
OTHER_WRITE_KEY = "wk_other_key_0123456789abcdef"


def make_event(kind: str = "track", **fields: Any) -> dict:
    """A valid raw Segment event of ``kind``; ``fields`` override or add (None removes)."""
    base: dict[str, Any] = {"type": kind, "userId": "user-1"}
    by_kind: dict[str, dict[str, Any]] = {
        "track": {"event": "Signed Up", "properties": {"plan": "pro"}},
        "identify": {"traits": {"email": "ada@example.com"}},
        "group": {"groupId": "acme", "traits": {"name": "Acme"}},
        "alias": {"previousId": "anon-1"},
    }
    base.update(by_kind.get(kind, {}))
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def queued_envelopes(redis: Any, queue: str = "celery") -> list[dict]:
    """Every ``{"seq", "event"}`` envelope in the Celery queue, oldest first.

    Kombu keeps each message as JSON with a base64 ``body``; the body of a
    Celery protocol-2 task message is ``[args, kwargs, embed]``.
    """
    envelopes = []
    for raw in reversed(redis.lrange(queue, 0, -1)):  # kombu LPUSHes, the worker BRPOPs
        message = json.loads(raw)
        assert message["headers"]["task"] == "intercom.ingest"
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        envelopes.extend(args[0])
    return envelopes


def queued_events(redis: Any) -> list[dict]:
    """The events in the queue, in acceptance order."""
    return [e["event"] for e in sorted(queued_envelopes(redis), key=lambda e: e["seq"])]


def accepted_count(redis: Any) -> int:
    return int(redis.hget("relay:counters", "accepted") or 0)


def refused_count(redis: Any) -> int:
    return int(redis.hget("relay:counters", "refused") or 0)


class LiveServer:
    """A uvicorn server running an app in a thread, on a free loopback port."""

    def __init__(self, app: Any) -> None:
        # Bound here and handed to uvicorn: no other process (the suite runs in parallel) can take the port in between.
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def start(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()
