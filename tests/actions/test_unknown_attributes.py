"""UNKNOWN_ATTRIBUTES=hold|create|fail: a custom attribute the workspace lacks costs
only itself, never the identify's email and name."""

from __future__ import annotations

import fakeredis
import pytest

from tests.actions.stubs import contact
from worker.actions import identify_company, identify_contact
from worker.intercom.errors import PermanentError
from worker.store.attributes import Attributes

USER = {"role": "user", "external_id": "u1", "email": "a@x.io"}
LISTED = {"type": "list", "data": [{"name": "plan", "data_type": "string", "custom": True}, {"name": "email", "custom": False}]}


def attribute_400(name: str) -> dict:
    return {
        "type": "error.list",
        "errors": [
            {"code": "parameter_invalid", "message": f"Custom attribute '{name}' does not exist", "field": f"custom_attributes.{name}"}
        ],
    }


@pytest.fixture
def store() -> Attributes:
    return Attributes(fakeredis.FakeRedis(decode_responses=True))


@pytest.fixture
def ctx(make_ctx, store):
    def make(policy: str = "hold", **kwargs):
        built = make_ctx(user_id="u1", **kwargs)
        built.attributes, built.unknown_attributes = store, policy
        return built

    return make


def test_hold_sends_the_rest_and_keeps_unknown_wrong_type_and_nested_values(stub, ctx, store) -> None:
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect("POST", "/contacts", answer=contact("c1"), body={**USER, "custom_attributes": {"plan": "pro"}})
    custom = {"plan": "pro", "seats": 3, "tags": ["a", "b"]}
    result = identify_contact.ACTION.run(ctx(), {**USER, "custom_attributes": custom})
    assert result["held_attributes"] == ["seats", "tags"]
    assert store.held("contact", "seats") == {"c1": 3} and store.held("contact", "tags") == {"c1": ["a", "b"]}
    assert {(a.model, a.name, a.count) for a in store.unknown()} == {("contact", "seats", 1), ("contact", "tags", 1)}
    # The list is in Redis now: the next identify reads nothing from Intercom, and a wrong type is held too.
    stub.expect("PUT", "/contacts/c1", answer=contact("c1"), body={**USER, "name": "Ann"})
    identify_contact.ACTION.run(ctx(), {**USER, "name": "Ann", "custom_attributes": {"plan": 7}})
    assert store.held("contact", "plan") == {"c1": 7}


def test_a_later_write_of_the_attribute_takes_the_held_value_away(stub, ctx, store) -> None:
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect("POST", "/contacts", answer=contact("c1"))
    identify_contact.ACTION.run(ctx(), {**USER, "custom_attributes": {"seats": 3}})
    store.add("contact", "seats", "integer")  # `attributes create`
    stub.expect("PUT", "/contacts/c1", answer=contact("c1"), body={**USER, "custom_attributes": {"seats": 5}})
    identify_contact.ACTION.run(ctx(), {**USER, "custom_attributes": {"seats": 5}})
    assert store.held("contact", "seats") == {}  # a replay will not overwrite 5 with 3


def test_create_makes_the_attribute_with_the_type_of_its_value_then_sends(stub, ctx, store) -> None:
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect(
        "POST", "/data_attributes", answer={"type": "data_attribute"}, body={"name": "seats", "model": "contact", "data_type": "integer"}
    )
    stub.expect("POST", "/contacts", answer=contact("c1"), body={**USER, "custom_attributes": {"seats": 3}})
    result = identify_contact.ACTION.run(ctx("create"), {**USER, "custom_attributes": {"seats": 3}})
    assert "held_attributes" not in result
    assert store.known("contact") == {"plan": "string", "seats": "integer"} and store.created() == 1


def test_create_stops_at_max_created_attributes_and_holds(stub, ctx, store) -> None:
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    result = identify_contact.ACTION.run(_capped(ctx), {**USER, "custom_attributes": {"seats": 3}})
    assert result["held_attributes"] == ["seats"]


def _capped(ctx):
    built = ctx("create")
    built.max_created_attributes = 0
    return built


def test_fail_sends_everything_and_intercoms_400_fails_the_event(stub, ctx) -> None:
    stub.expect("POST", "/contacts", status=400, answer=attribute_400("seats"), body={**USER, "custom_attributes": {"seats": 3}})
    with pytest.raises(PermanentError):
        identify_contact.ACTION.run(ctx("fail"), {**USER, "custom_attributes": {"seats": 3}})


def test_a_400_naming_an_attribute_reads_the_list_again_and_holds_it(stub, ctx, store) -> None:
    store.store("contact", {"plan": "string", "seats": "integer"})  # an admin archived "seats" since
    stub.expect("POST", "/contacts", status=400, answer=attribute_400("seats"))
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    result = identify_contact.ACTION.run(ctx(), {**USER, "custom_attributes": {"seats": 3}})
    assert result["held_attributes"] == ["seats"] and store.known("contact") == {"plan": "string"}


def test_a_company_attribute_is_held_by_company_id(stub, ctx, store, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("GET", "/data_attributes", answer={"type": "list", "data": []})
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"}, body={"company_id": "acme", "name": "Acme"})
    stub.expect("POST", "/contacts/c1/companies", answer={"type": "company", "id": "co1"})
    result = identify_company.ACTION.run(
        ctx(), {"company_id": "acme", "name": "Acme", "external_id": "u1", "custom_attributes": {"tier": "gold"}}
    )
    assert result["held_attributes"] == ["tier"] and store.held("company", "tier") == {"acme": "gold"}


def test_create_losing_a_race_to_another_worker_uses_the_attribute_it_made(stub, ctx, store) -> None:
    taken = {"type": "error.list", "errors": [{"code": "parameter_invalid", "message": "You already have 'seats' in your people data."}]}
    stub.expect("GET", "/data_attributes", answer=LISTED)
    stub.expect("POST", "/data_attributes", status=400, answer=taken)
    stub.expect(
        "GET",
        "/data_attributes",
        answer={"type": "list", "data": [*LISTED["data"], {"name": "seats", "data_type": "integer", "custom": True}]},
    )
    stub.expect("POST", "/contacts", answer=contact("c1"), body={**USER, "custom_attributes": {"seats": 3}})
    assert "held_attributes" not in identify_contact.ACTION.run(ctx("create"), {**USER, "custom_attributes": {"seats": 3}})
