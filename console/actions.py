"""What the console changes: replaying and purging dead letters, as ``intercom-relay dead-letters`` does.

A dead letter with reason ``unknown_attribute`` holds attribute values, not a delivery: its
replay sends the values still held (worker/actions/attribute_replay.py), from this process,
which needs INTERCOM_ACCESS_TOKEN for it.

The web process that serves the console is the door, which must not load the
worker's delivery stack at import (tests/test_imports.py): the lanes and the
task sender are imported on the first replay or purge, and built once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import redis as redis_lib

from console.queries import letters_by_id
from worker.settings import Settings

log = logging.getLogger("console")

#: The most dead letters one form may act on (a page lists 200).
MAX_SELECTED = 500


@dataclass(frozen=True)
class Done:
    acted: int  # replayed or purged
    missing: int  # selected, but no longer kept (replayed or purged meanwhile)


class NotReplayable(Exception):
    """A selected letter cannot be replayed at all (a message no worker could read)."""


class ReplayRefused(Exception):
    """A replay the console cannot carry out, and why."""


class DeadLetterActions:
    def __init__(self, redis: redis_lib.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._lock = threading.Lock()
        self._store: Any = None
        self._sender: Any = None

    def replay(self, ids: list[str], *, by: str) -> Done:
        """Put the letters back at the end of their lanes and send the heads this woke."""
        from worker.delivery import dispatch  # noqa: PLC0415 - the delivery stack, loaded on first use

        store, sender = self._built()
        letters = letters_by_id(self.redis, ids)
        unreadable = [dead.id for dead in letters if dead.message]
        if unreadable:
            raise NotReplayable(
                f"{len(unreadable)} of the selected letters are messages no worker could read; the same bytes would fail again:"
                " fix what sent them, then purge them (untick them to replay the others)"
            )
        held = [dead.id for dead in letters if dead.held]
        if held and not self.settings.access_token:
            raise ReplayRefused("held attribute values are sent from here: set INTERCOM_ACCESS_TOKEN for the console's process")
        replayed, heads = store.replay(letters)
        for person, head in heads:
            dispatch(sender, person, head)
        if held:
            replayed += self._send_held(held)
        log.info("console: %s replayed %d dead letter(s) of %d selected", by, replayed, len(ids))
        return Done(replayed, len(ids) - len(letters))

    def _send_held(self, held: list[str]) -> int:
        """Send the values of unknown_attribute letters; how many letters this emptied (the others stay)."""
        from worker.actions.attribute_replay import replay_letters  # noqa: PLC0415

        sent, still = replay_letters(self.redis, self.settings, held)
        log.info("console: %d held attribute value(s) sent, %d still held", sent, still)
        return len(held) - len(letters_by_id(self.redis, held))

    def purge(self, ids: list[str], *, by: str) -> Done:
        """Delete the letters for good."""
        store, _ = self._built()
        letters = letters_by_id(self.redis, ids)
        purged = store.purge(letters)
        log.info("console: %s purged %d dead letter(s) of %d selected", by, purged, len(ids))
        return Done(purged, len(ids) - len(letters))

    def _built(self) -> tuple[Any, Any]:
        with self._lock:
            if self._store is None:
                from worker.broker import publisher_app  # noqa: PLC0415
                from worker.runtime import build_lanes  # noqa: PLC0415
                from worker.store.deadletters import DeadLetters  # noqa: PLC0415

                self._store = DeadLetters(self.redis, build_lanes(self.redis, self.settings))
                self._sender = publisher_app(self.settings)
            return self._store, self._sender
