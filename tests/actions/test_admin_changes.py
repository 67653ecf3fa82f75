"""Admins change the workspace under the relay: a cached contact deleted (404) or
merged into another (410 with its Link) is re-resolved on every path, never a dead letter."""

from __future__ import annotations

import fakeredis
import pytest

from tests.actions.stubs import contact, error, merged_into
from worker.actions import identify_company, identify_contact, track_event
from worker.intercom.errors import ContactMerged, ContactNotFound, RetryableError
from worker.store.companies import CompanyCache
from worker.store.contacts import CachedContact


def test_a_410_names_the_survivor_from_its_canonical_link(stub, make_ctx) -> None:
    stub.expect("PUT", "/contacts/lead1", **merged_into("user1"))
    with pytest.raises(ContactMerged) as caught:
        make_ctx().client.update_contact("lead1", {"name": "x"})
    assert caught.value.into == "user1" and caught.value.status == 410


def test_a_lead_identify_follows_its_lead_merged_into_a_user_and_writes_the_traits_there(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("PUT", "/contacts/lead1", body={"role": "lead", "name": "Ann"}, **merged_into("user1"))
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"), body={"name": "Ann"})
    result = identify_contact.ACTION.run(make_ctx(anonymous_id="anon1"), {"role": "lead", "name": "Ann"})
    assert (result["contact_id"], result["role"], result["calls"]) == ("user1", "user", 2)
    assert contacts.get(anonymous_id="anon1") == CachedContact("user1", "user")


def test_a_deleted_user_is_made_again_by_its_next_identify(stub, make_ctx, contacts) -> None:
    contacts.remember("old", "user", external_id="u1")
    stub.expect("PUT", "/contacts/old", status=404, answer=error("not_found", "User Not Found"))
    stub.expect("POST", "/contacts", answer=contact("new"))
    result = identify_contact.ACTION.run(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1"})
    assert result["contact_id"] == "new"
    assert contacts.get(external_id="u1") == CachedContact("new", "user")


def test_a_track_follows_a_lead_merged_into_a_user(stub, make_ctx, contacts) -> None:
    # POST /events answers 404 for a merged contact; GET /contacts/{id} tells the 410 and its Link.
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect(
        "POST",
        "/events",
        status=404,
        answer=error("not_found", "User Not Found"),
        body={"event_name": "viewed", "created_at": 1, "id": "lead1"},
    )
    stub.expect("GET", "/contacts/lead1", **merged_into("user1"))
    stub.expect("POST", "/events", status=202, body={"event_name": "viewed", "created_at": 1, "id": "user1"})
    result = track_event.ACTION.run(make_ctx(anonymous_id="anon1"), {"event_name": "viewed", "created_at": 1})
    assert result["calls"] == 3
    assert contacts.get(anonymous_id="anon1") == CachedContact("user1", "user")


def test_a_track_of_a_deleted_contact_waits_for_its_identify(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/events", status=404, answer=error("not_found", "User Not Found"))
    stub.expect("GET", "/contacts/lead1", status=404, answer=error("not_found", "User Not Found"))
    with pytest.raises(ContactNotFound):
        track_event.ACTION.run(make_ctx(anonymous_id="anon1"), {"event_name": "viewed", "created_at": 1})
    assert contacts.get(anonymous_id="anon1") is None


def test_a_group_attaches_the_survivor_of_a_merged_contact(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"})
    stub.expect("POST", "/contacts/lead1/companies", **merged_into("user1"))
    stub.expect("POST", "/contacts/user1/companies", answer={"type": "company", "id": "co1"})
    result = identify_company.ACTION.run(make_ctx(anonymous_id="anon1"), {"company_id": "acme"})
    assert result["calls"] == 3
    assert contacts.is_member("user1", "co1")


def test_a_company_deleted_in_intercom_is_made_again_by_the_retry(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    ctx = make_ctx(user_id="u1")
    ctx.companies = CompanyCache(fakeredis.FakeRedis(decode_responses=True))
    ctx.companies.remember("acme", "gone", None)
    stub.expect("POST", "/companies", answer={"type": "company", "id": "gone"})
    stub.expect("POST", "/contacts/c1/companies", status=404, answer=error("company_not_found", "Company Not Found"))
    with pytest.raises(RetryableError):
        identify_company.ACTION.run(ctx, {"company_id": "acme", "external_id": "u1"})
    assert ctx.companies.get("acme") is None
