"""Held attribute values through real workers: dead letters with reason unknown_attribute.

The rest of each identify is delivered at once; the values of an attribute the workspace
lacks wait as dead letters, one per contact; once the attribute is created,
``intercom-relay dead-letters replay --reason unknown_attribute`` sends them, except a value
a later identify has replaced (the newer one stands) and one still of the wrong type.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli.main import main
from tests.e2e.harness import accept, wait_until_finished
from tests.e2e.test_workspaces import ATTRIBUTE_MAPPINGS, Stream, live_contacts

pytestmark = pytest.mark.e2e

PEOPLE = 10


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_held_values_wait_as_dead_letters_and_a_replay_never_overwrites_a_later_value(
    redis, redis_url, fake_intercom_factory, fleet, tmp_path, monkeypatch
) -> None:
    fake = fake_intercom_factory()
    fake.seed(data_attributes=[{"model": "contact", "name": "plan", "data_type": "string"}])
    mappings = tmp_path / "mappings.yaml"
    mappings.write_text(ATTRIBUTE_MAPPINGS)
    workers = fleet(fake.url, MAPPINGS_FILE=str(mappings))  # UNKNOWN_ATTRIBUTES=hold, the default
    workers.worker("w1", concurrency=4)
    workers.beat()
    for name, value in (("REDIS_URL", redis_url), ("INTERCOM_ACCESS_TOKEN", "test-token"), ("INTERCOM_API_URL", fake.url)):
        monkeypatch.setenv(name, value)
    s = Stream()
    for i in range(PEOPLE):
        s.identify({"userId": f"u-{i}"}, email=f"u{i}@acme.io", plan="pro", seats=i + 1)
    s.identify({"userId": "u-1"}, email="u1@acme.io", plan="pro", seats=99)  # held again, seats still unknown: 99 wins
    accept(redis_url, s.events)
    counts = wait_until_finished(redis, workers, timeout=60)
    assert (counts["delivered"], counts["dead_lettered"]) == (PEOPLE + 1, 0)  # every identify went out, without seats

    held = [json.loads(line) for line in cli("dead-letters", "list", "--json", "--reason", "unknown_attribute").splitlines()]
    assert sorted(d["person"] for d in held) == sorted(f"u-{i}" for i in range(PEOPLE))
    assert {d["reason"] for d in held} == {"unknown_attribute: seats"}
    assert json.loads(cli("status", "--json"))["unknown_attribute"] == PEOPLE

    cli("attributes", "create", "seats", "--type", "integer")
    later = Stream()
    later.clock = s.clock
    later.identify({"userId": "u-2"}, email="u2@acme.io", plan="pro", seats=50)  # sent itself: the held 3 must never follow
    later.identify({"userId": "u-3"}, email="u3@acme.io", plan="pro", seats="lots")  # of the wrong type: held in place of 4
    accept(redis_url, later.events)
    wait_until_finished(redis, workers, timeout=60)

    assert "sent 8 held attribute value(s); 1 still held" in cli("dead-letters", "replay", "--reason", "unknown_attribute")
    seats = {c["external_id"]: c["custom_attributes"].get("seats") for c in live_contacts(fake.state())}
    expected = {f"u-{i}": i + 1 for i in range(PEOPLE)} | {"u-1": 99, "u-2": 50, "u-3": None}
    assert seats == expected
    (left,) = [json.loads(line) for line in cli("dead-letters", "list", "--json").splitlines()]
    assert (left["person"], left["held"]["values"]) == ("u-3", {"seats": "lots"})
