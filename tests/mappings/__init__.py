"""Unit tests of worker.mappings and worker.timestamps (no Redis, no Intercom)."""

from typing import Any


def make_event(type_: str, **fields: Any) -> dict[str, Any]:
    """A Segment-spec event of ``type_``, with a messageId and timestamp unless given."""
    event: dict[str, Any] = {
        "type": type_,
        "messageId": "m-1",
        "timestamp": "2024-03-01T12:00:00Z",
    }
    event.update(fields)
    return event
