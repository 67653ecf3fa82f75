"""A mapped value that can't be converted costs its field, not the event (STRICT_FIELDS)."""

from __future__ import annotations

import logging

import fakeredis
import pytest

from tests.actions.stubs import contact
from worker.actions import identify_company, identify_contact, track_event
from worker.intercom.errors import InvalidPayload
from worker.store.dropped import DroppedFields


@pytest.fixture
def drops() -> DroppedFields:
    return DroppedFields(fakeredis.FakeRedis(decode_responses=True))


def test_an_unparseable_signed_up_at_is_dropped_and_the_rest_delivered(stub, make_ctx, drops, caplog) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body={"role": "user", "external_id": "u1", "email": "a@x.io"})
    ctx = make_ctx(user_id="u1")
    ctx.drops = drops
    with caplog.at_level(logging.WARNING, logger="tests.actions"):
        result = identify_contact.ACTION.run(ctx, {"role": "user", "external_id": "u1", "email": "a@x.io", "signed_up_at": "last tuesday"})
    assert result["contact_id"] == "c1"
    assert drops.snapshot() == {"identify_contact.signed_up_at": 1}
    assert any("field signed_up_at dropped" in r.getMessage() for r in caplog.records)


def test_a_size_of_about_40_is_dropped_from_the_company(stub, make_ctx, contacts, drops) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"}, body={"company_id": "acme", "name": "Acme"})
    stub.expect("POST", "/contacts/c1/companies", answer={"type": "company", "id": "co1"})
    ctx = make_ctx(user_id="u1")
    ctx.drops = drops
    identify_company.ACTION.run(ctx, {"company_id": "acme", "name": "Acme", "size": "about 40", "external_id": "u1"})
    assert drops.snapshot() == {"identify_company.size": 1}


def test_several_bad_fields_are_each_dropped_and_counted(stub, make_ctx, drops) -> None:
    stub.expect("POST", "/events", status=202, body={"event_name": "Paid", "created_at": 5, "user_id": "u1"})
    ctx = make_ctx(user_id="u1")
    ctx.drops = drops
    track_event.ACTION.run(ctx, {"event_name": "Paid", "created_at": 5, "user_id": "u1", "revenue": "lots", "metadata": "plan=pro"})
    assert drops.snapshot() == {"track_event.metadata": 1, "track_event.revenue": 1}


@pytest.mark.parametrize(
    "raw",
    [
        {"event_name": "Paid", "created_at": "yesterday-ish", "user_id": "u1"},  # required: the action can't run
        {"event_name": "", "created_at": 5, "user_id": "u1"},
    ],
)
def test_a_required_field_that_cant_be_converted_still_fails_the_event(make_ctx, raw) -> None:
    with pytest.raises(InvalidPayload):
        track_event.ACTION.run(make_ctx(user_id="u1"), raw)


def test_a_rule_between_fields_still_fails_the_event(make_ctx) -> None:
    # A lead with an external_id is a broken mapping, not a value to drop.
    with pytest.raises(InvalidPayload) as info:
        identify_contact.ACTION.run(make_ctx(anonymous_id="a1"), {"role": "lead", "external_id": "u1"})
    assert info.value.field == "external_id"
    with pytest.raises(InvalidPayload):
        identify_contact.ACTION.run(make_ctx(), {"role": "user", "name": "no ids"})


def test_strict_fields_fails_the_whole_event_as_before(make_ctx, drops) -> None:
    ctx = make_ctx(user_id="u1", strict_fields=True)
    ctx.drops = drops
    with pytest.raises(InvalidPayload) as info:
        identify_contact.ACTION.run(ctx, {"role": "user", "external_id": "u1", "signed_up_at": "last tuesday"})
    assert info.value.field == "signed_up_at"
    assert drops.snapshot() == {}
