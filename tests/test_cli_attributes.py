"""``intercom-relay attributes list / create / replay`` against the fake Intercom."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from tests.fixtures_fake import DEFAULT_TOKEN, api_client
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


# -- held values are dead letters with reason unknown_attribute -------------------------------


def status_json() -> dict:
    return json.loads(run("status", "--json"))


def letters(*filters: str) -> list[dict]:
    return [json.loads(line) for line in run("dead-letters", "list", "--json", *filters).splitlines() if line.strip()]


def test_held_values_are_dead_letters_replayed_by_reason(redis, cli_env) -> None:
    fake = cli_env
    with api_client(fake) as client:
        ann = client.post("/contacts", json={"external_id": "ann"}).json()["id"]
        bob = client.post("/contacts", json={"external_id": "bob"}).json()["id"]
    store = Attributes(redis)
    store.hold("contact", ann, {"seats": 3, "tier": "gold"}, person="ann")
    store.hold("contact", bob, {"seats": "many"}, person="bob")

    listed = {d["person"]: d for d in letters("--reason", "unknown_attribute")}
    assert {p: (d["reason"], d["action"], d["held"]["values"]) for p, d in listed.items()} == {
        "ann": ("unknown_attribute: seats, tier", "identify_contact", {"seats": 3, "tier": "gold"}),
        "bob": ("unknown_attribute: seats", "identify_contact", {"seats": "many"}),
    }
    assert listed["ann"]["id"] == f"attr:contact:{ann}" and listed["ann"]["held"]["target"] == ann
    assert status_json()["unknown_attribute"] == 2
    assert status_json()["dead_lettered"] == 0  # their deliveries were delivered: the counters still add up

    # Nothing exists yet: everything stays held, and no event goes back to a lane.
    out = run("dead-letters", "replay", "--reason", "unknown_attribute")
    assert "replayed 0 dead letter(s)" in out and "sent 0 held attribute value(s); 3 still held" in out
    assert not redis.keys("relay:lane:*")
    run("attributes", "create", "seats", "--type", "integer")

    out = run("dead-letters", "replay", "--reason", "unknown_attribute")
    assert "sent 1 held attribute value(s); 2 still held" in out
    by_id = {c["id"]: c for c in fake.state()["contacts"]}
    assert by_id[ann]["custom_attributes"] == {"seats": 3}
    assert by_id[bob]["custom_attributes"] == {}  # "many" is no integer: still held
    assert {d["person"]: d["reason"] for d in letters()} == {"ann": "unknown_attribute: tier", "bob": "unknown_attribute: seats"}

    run("attributes", "create", "tier", "--type", "string")
    assert "sent 1 held attribute value(s); 0 still held" in run("dead-letters", "replay", "--person", "ann")  # ann's only
    assert [d["person"] for d in letters()] == ["bob"]  # ann's letter went with its last value
    assert status_json()["unknown_attribute"] == 1


def test_a_replay_never_overwrites_a_value_a_later_identify_set(redis, cli_env) -> None:
    fake = cli_env
    fake.seed(data_attributes=[{"model": "contact", "name": "seats", "data_type": "integer"}])
    with api_client(fake) as client:
        ann = client.post("/contacts", json={"external_id": "ann"}).json()["id"]
        cat = client.post("/contacts", json={"external_id": "cat"}).json()["id"]
    store = Attributes(redis)
    store.hold("contact", ann, {"seats": "three", "plan": "pro"}, person="ann")
    store.hold("contact", cat, {"seats": 1}, person="cat")
    store.hold("contact", cat, {"seats": 2}, person="cat")  # held again: the newest value wins
    store.written("contact", ann, ["seats"])  # a later identify of ann wrote seats itself

    assert {d["person"]: d["held"]["values"] for d in letters()} == {"ann": {"plan": "pro"}, "cat": {"seats": 2}}
    assert "sent 1 held attribute value(s); 1 still held" in run("dead-letters", "replay", "--reason", "unknown_attribute")
    by_id = {c["id"]: c for c in fake.state()["contacts"]}
    assert by_id[cat]["custom_attributes"] == {"seats": 2}
    assert "seats" not in by_id[ann]["custom_attributes"]  # "three" was never sent over the later value

    store.written("contact", ann, ["plan"])  # its last held value is written: the letter goes, nothing is left stale
    assert letters() == [] and status_json()["unknown_attribute"] == 0
    assert not redis.keys("relay:attributes:held-for:*")


def test_attributes_replay_is_the_same_replay_narrowed_to_one_attribute(redis, cli_env) -> None:
    fake = cli_env
    fake.seed(
        data_attributes=[
            {"model": "contact", "name": "seats", "data_type": "integer"},
            {"model": "company", "name": "tier", "data_type": "string"},
        ]
    )
    with api_client(fake) as client:
        ann = client.post("/contacts", json={"external_id": "ann"}).json()["id"]
        client.post("/companies", json={"company_id": "acme", "name": "Acme"})
    store = Attributes(redis)
    store.hold("contact", ann, {"seats": 3}, person="ann")
    store.hold("company", "acme", {"tier": "gold"}, person="ann")

    assert "sent 1 held value(s); 0 still held" in run("attributes", "replay", "--name", "tier")
    assert [d["reason"] for d in letters()] == ["unknown_attribute: seats"]
    company = next(c for c in fake.state()["companies"] if c["company_id"] == "acme")
    assert company["custom_attributes"] == {"tier": "gold"}
    assert "sent 1 held value(s); 0 still held" in run("attributes", "replay")
    assert letters() == []


def test_purging_held_values_drops_them_with_their_letters(redis, cli_env) -> None:
    store = Attributes(redis)
    store.hold("contact", "c1", {"seats": 3}, person="ann")
    store.hold("company", "acme:eu", {"tier": "gold"}, person="bob")  # a company_id may hold a colon
    assert {d["held"]["target"] for d in letters()} == {"c1", "acme:eu"}
    assert "purged 2 dead letter(s)" in run("dead-letters", "purge", "--reason", "unknown_attribute")
    assert (list(store.letters()), store.held("contact", "seats"), status_json()["unknown_attribute"]) == ([], {}, 0)
    listed = json.loads(run("attributes", "list", "--json"))
    assert {(a["name"], a["count"], a["held"]) for a in listed} == {("seats", 1, 0), ("tier", 1, 0)}  # counted, none waiting


def test_trimming_old_dead_letters_drops_held_values_too(redis) -> None:
    from worker.store.deadletters import DeadLetters

    store = Attributes(redis)
    store.hold("contact", "c1", {"seats": 3}, person="ann")
    assert DeadLetters(redis, None).trim(max_age=-1) == 1  # type: ignore[arg-type]  # trimming needs no lanes
    assert (list(store.letters()), redis.scard("relay:attributes:letters")) == ([], 0)
