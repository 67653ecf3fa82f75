"""Sending held attribute values once their attribute exists.

``intercom-relay dead-letters replay --reason unknown_attribute`` (the values are dead letters
with that reason, one per contact or company: worker/store/attributes.py), the console's
replay of such a letter, and ``intercom-relay attributes replay`` all come here.

A held value goes out only while it is still held: a later write of the same attribute to
the same contact or company took it away, so a replay never overwrites a newer value.  A
value that is still of the wrong type for the attribute (or whose attribute is still
missing) stays held, and its letter with it.  The write names only that attribute, so
nothing else of the contact changes.
"""

from __future__ import annotations

import logging
from typing import Any

import redis as redis_lib

from worker.actions.attributes import fits
from worker.intercom.client import IntercomClient
from worker.intercom.errors import IntercomError, NotFound
from worker.settings import Settings
from worker.store.attributes import Attributes, HeldValues

log = logging.getLogger("worker.attributes")


def replay_held(store: Attributes, client: IntercomClient, only: str | None = None, letters: list[str] | None = None) -> tuple[int, int]:
    """(values sent, values still held) over every held value, or those of one attribute, or of the letters named."""
    sent = still = 0
    known: dict[str, dict[str, str]] = {}
    for held in store.letters(letters):
        if held.model not in known:
            known[held.model] = _known(store, client, held.model)
        for name, value in held.values.items():
            if only is not None and name != only:
                continue
            data_type = known[held.model].get(name)
            if data_type is None or not fits(data_type, value):
                still += 1
                continue
            sent += _send(store, client, held, name, value)
    return sent, still


def replay_letters(redis: redis_lib.Redis, settings: Settings, letters: list[str]) -> tuple[int, int]:
    """``replay_held`` for the unknown_attribute dead letters named, with a client of the settings."""
    with IntercomClient.from_settings(settings) as client:
        return replay_held(Attributes(redis), client, letters=letters)


def _known(store: Attributes, client: IntercomClient, model: str) -> dict[str, str]:
    """The workspace's attributes, read again: an admin may have created some in Intercom's settings."""
    listed = client.list_data_attributes(model)
    known = {a["name"]: a.get("data_type") or "string" for a in listed.get("data") or [] if isinstance(a, dict) and a.get("custom")}
    store.store(model, known)
    return known


def _send(store: Attributes, client: IntercomClient, held: HeldValues, name: str, value: Any) -> int:
    """Write one held value; 1 if it went out (or its contact is gone), 0 if Intercom refused it."""
    try:
        if held.model == "contact":
            client.update_contact(held.target, {"custom_attributes": {name: value}})
        else:
            client.upsert_company({"company_id": held.target, "custom_attributes": {name: value}})
    except NotFound:
        log.info("%s %s is gone from Intercom; its held %r is dropped", held.model, held.target, name)
    except IntercomError as exc:
        log.warning("held %s attribute %r for %s not sent: %s", held.model, name, held.target, exc)
        return 0
    store.release(held.model, name, held.target, value)
    return 1
