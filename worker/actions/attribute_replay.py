"""Sending held attribute values once their attribute exists (``intercom-relay attributes replay``).

A held value goes out only while it is still held: a later write of the same attribute to
the same contact or company took it away (worker/store/attributes.py), so a replay never
overwrites a newer value.  A value that is still of the wrong type for the attribute stays
held.  The write names only that attribute, so nothing else of the contact changes.
"""

from __future__ import annotations

import logging
from typing import Any

from worker.actions.attributes import fits
from worker.intercom.client import IntercomClient
from worker.intercom.errors import IntercomError, NotFound
from worker.store.attributes import MODELS, Attributes

log = logging.getLogger("worker.attributes")


def replay_held(store: Attributes, client: IntercomClient, only: str | None = None) -> tuple[int, int]:
    """(values sent, values still held) over every held attribute, or the one named."""
    sent = still = 0
    for model in MODELS:
        known = _known(store, client, model)
        for attribute in {a.name for a in store.unknown() if a.model == model and (only is None or a.name == only)}:
            for target, value in store.held(model, attribute).items():
                data_type = known.get(attribute)
                if data_type is None or not fits(data_type, value):
                    still += 1
                    continue
                sent += _send(store, client, model, attribute, target, value)
    return sent, still


def _known(store: Attributes, client: IntercomClient, model: str) -> dict[str, str]:
    """The workspace's attributes, read again: an admin may have created some in Intercom's settings."""
    listed = client.list_data_attributes(model)
    known = {a["name"]: a.get("data_type") or "string" for a in listed.get("data") or [] if isinstance(a, dict) and a.get("custom")}
    store.store(model, known)
    return known


def _send(store: Attributes, client: IntercomClient, model: str, name: str, target: str, value: Any) -> int:
    """Write one held value; 1 if it went out (or its contact is gone), 0 if Intercom refused it."""
    try:
        if model == "contact":
            client.update_contact(target, {"custom_attributes": {name: value}})
        else:
            client.upsert_company({"company_id": target, "custom_attributes": {name: value}})
    except NotFound:
        log.info("%s %s is gone from Intercom; its held %r is dropped", model, target, name)
    except IntercomError as exc:
        log.warning("held %s attribute %r for %s not sent: %s", model, name, target, exc)
        return 0
    store.release(model, name, target, value)
    return 1
