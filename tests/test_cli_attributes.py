"""``intercom-relay attributes list / create / replay`` against the fake Intercom (issue 11)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.fixtures_fake import DEFAULT_TOKEN, api_client
from worker.cli import main
from worker.store.attributes import Attributes


@pytest.fixture
def cli_env(redis_url, fake_intercom, monkeypatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("INTERCOM_ACCESS_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("INTERCOM_API_URL", fake_intercom.url)
    return fake_intercom


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_held_values_are_listed_then_sent_once_the_attribute_is_created(redis, cli_env) -> None:
    fake = cli_env
    with api_client(fake) as client:
        ann = client.post("/contacts", json={"external_id": "ann"}).json()["id"]
        bob = client.post("/contacts", json={"external_id": "bob"}).json()["id"]
    store = Attributes(redis)
    store.hold("contact", ann, {"seats": 3})
    store.hold("contact", bob, {"seats": "many"})

    listed = json.loads(run("attributes", "list", "--json"))
    assert [(a["model"], a["name"], a["count"], a["held"]) for a in listed] == [("contact", "seats", 2, 2)]

    # Before the attribute exists nothing is sent: everything stays held.
    assert "sent 0 held value(s); 2 still held" in run("attributes", "replay")
    assert "created contact attribute 'seats' (integer)" in run("attributes", "create", "seats", "--type", "integer")
    assert store.known("contact") == {"seats": "integer"}  # every worker knows it at once

    assert "sent 1 held value(s); 1 still held" in run("attributes", "replay")
    by_id = {c["id"]: c for c in fake.state()["contacts"]}
    assert by_id[ann]["custom_attributes"] == {"seats": 3}
    assert by_id[bob]["custom_attributes"] == {}  # "many" is no integer: still held
    assert store.held("contact", "seats") == {bob: "many"}


def test_creating_an_attribute_intercom_refuses_says_why(cli_env) -> None:
    result = CliRunner().invoke(main, ["attributes", "create", "email", "--type", "string"])
    assert result.exit_code != 0
    assert "is one of our standard attributes" in result.output
