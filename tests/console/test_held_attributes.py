"""Held attribute values in the console: dead letters with reason unknown_attribute, replayed as the CLI does."""

from __future__ import annotations

import httpx

from tests.console.conftest import ADMIN, console_settings
from tests.console.test_app import csrf_of
from tests.fixtures_fake import DEFAULT_TOKEN, api_client
from worker.store.attributes import Attributes


def test_held_values_are_listed_shown_and_replayed_from_the_console(redis, redis_url, fake_intercom, console_server) -> None:
    with api_client(fake_intercom) as client:
        ann = client.post("/contacts", json={"external_id": "ann"}).json()["id"]
    Attributes(redis).hold("contact", ann, {"seats": 3}, person="ann")
    env = {"REDIS_URL": redis_url, "INTERCOM_ACCESS_TOKEN": DEFAULT_TOKEN, "INTERCOM_API_URL": fake_intercom.url}
    served = console_server(console_settings(env), redis)
    with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as console:
        assert 'data-count="unknown_attribute">1<' in console.get("").text  # as `status` counts it
        listing = console.get("dead-letters", params={"reason": "unknown_attribute"}).text
        assert "unknown_attribute: seats" in listing and f"attr:contact:{ann}" in listing and "identify_contact" in listing
        detail = console.get(f"dead-letters/attr:contact:{ann}").text
        assert 'id="held"' in detail and "seats" in detail and "<code>3</code>" in detail

        token = csrf_of(listing)
        replay = {"csrf": token, "op": "replay", "id": [f"attr:contact:{ann}"], "confirmed": "yes"}
        kept = console.post("dead-letters", data=replay)  # the attribute does not exist yet: the value stays held
        assert kept.status_code == 303 and "replayed=0" in kept.headers["location"]
        fake_intercom.seed(data_attributes=[{"model": "contact", "name": "seats", "data_type": "integer"}])
        sent = console.post("dead-letters", data=replay)
        assert sent.status_code == 303 and "replayed=1" in sent.headers["location"]
    (contact,) = fake_intercom.state()["contacts"]
    assert contact["custom_attributes"] == {"seats": 3}
    assert list(Attributes(redis).letters()) == []


def test_without_a_token_the_console_says_why_it_cannot_send_held_values(redis, redis_url, console_server) -> None:
    Attributes(redis).hold("contact", "c1", {"seats": 3}, person="ann")
    served = console_server(console_settings({"REDIS_URL": redis_url}), redis)
    with httpx.Client(base_url=served.url, auth=ADMIN, timeout=10) as console:
        token = csrf_of(console.get("dead-letters").text)
        answer = console.post("dead-letters", data={"csrf": token, "op": "replay", "id": ["attr:contact:c1"], "confirmed": "yes"})
    assert answer.status_code == 503 and "INTERCOM_ACCESS_TOKEN" in answer.text
    assert [h.values for h in Attributes(redis).letters()] == [{"seats": 3}]
