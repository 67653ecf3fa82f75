"""Identify Contact: the calls it makes in each case, and its field rules."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from tests.actions.stubs import contact, error, found
from worker.actions import identify_contact
from worker.actions.common import load_fields
from worker.intercom.errors import AwaitingSearch, InvalidPayload, PermanentError, RateLimited, SearchLagConflict
from worker.store.contacts import CachedContact

perform = identify_contact.ACTION.run
EXISTS = "A contact matching those details already exists with id={}"


# -- fields and body ---------------------------------------------------------


def test_body_converts_timestamps_and_keeps_the_rest() -> None:
    fields = load_fields(
        identify_contact.Fields,
        {
            "role": "user",
            "external_id": 42,
            "email": "ann@example.com",
            "name": "Ann",
            "signed_up_at": "2024-01-02T03:04:05+02:00",
            "last_seen_at": "2024-01-02T01:04:05Z",
            "owner_id": 321,
            "unsubscribed_from_emails": False,
            "custom_attributes": {"plan": "pro"},
        },
    )
    assert identify_contact.build_body(fields) == {
        "role": "user",
        "external_id": "42",
        "email": "ann@example.com",
        "name": "Ann",
        "signed_up_at": 1704157445,
        "last_seen_at": 1704157445,
        "owner_id": "321",
        "unsubscribed_from_emails": False,
        "custom_attributes": {"plan": "pro"},
    }


def test_null_clears_a_nullable_trait_but_blank_identity_counts_as_absent() -> None:
    fields = load_fields(identify_contact.Fields, {"role": "user", "external_id": "u1", "email": "  ", "phone": None})
    assert identify_contact.build_body(fields) == {"role": "user", "external_id": "u1", "phone": None}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"external_id": "u1"}, "role"),
        ({"role": "admin", "external_id": "u1"}, "role"),
        ({"role": "lead", "external_id": "u1"}, "external_id"),
        ({"role": "user"}, "email"),
        ({"role": "user", "external_id": "", "email": None}, "email"),
        ({"role": "user", "external_id": "u1", "signed_up_at": "last tuesday"}, "signed_up_at"),
        ({"role": "user", "external_id": "u1", "custom_attributes": "plan=pro"}, "custom_attributes"),
        ({"role": "user", "external_id": "u1", "favourite_colour": "blue"}, "favourite_colour"),
    ],
)
def test_invalid_fields_are_named(raw: dict, field: str, make_ctx) -> None:
    # With STRICT_FIELDS=true; without it an optional field that can't be converted is dropped
    # (tests/actions/test_dropped_fields.py).
    with pytest.raises(InvalidPayload) as info:
        perform(make_ctx(strict_fields=True), raw)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


# -- users ------------------------------------------------------------------


def test_a_new_user_costs_one_create(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body={"role": "user", "external_id": "u1", "email": "ann@example.com"})
    result = perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1", "email": "ann@example.com"})
    assert result == {"contact_id": "c1", "role": "user", "merged_leads": [], "calls": 1}
    assert contacts.get(external_id="u1") == CachedContact("c1", "user")
    assert contacts.get(email="ANN@example.com") == CachedContact("c1", "user")
    assert contacts.get(anonymous_id="anon1") == CachedContact("c1", "user")


def test_a_409_updates_the_existing_contact_it_names(stub, make_ctx, contacts) -> None:
    body = {"role": "user", "external_id": "u1", "name": "Ann"}
    stub.expect("POST", "/contacts", status=409, answer=error("conflict", EXISTS.format("6762f0dd1bb69f9f2193bb83")))
    stub.expect("PUT", "/contacts/6762f0dd1bb69f9f2193bb83", answer=contact("6762f0dd1bb69f9f2193bb83"), body=body)
    result = perform(make_ctx(user_id="u1"), body)
    assert (result["contact_id"], result["calls"]) == ("6762f0dd1bb69f9f2193bb83", 2)
    assert contacts.get(external_id="u1") == CachedContact("6762f0dd1bb69f9f2193bb83", "user")


def test_a_409_without_a_usable_id_is_search_lag_and_retried(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", status=409, answer=error("conflict", "Multiple existing users match this email"))
    with pytest.raises(SearchLagConflict):
        perform(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1"})


def test_a_409_whose_contact_is_gone_is_search_lag(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", status=409, answer=error("conflict", EXISTS.format("c9")))
    stub.expect("PUT", "/contacts/c9", status=404, answer=error("not_found", "User Not Found"))
    with pytest.raises(SearchLagConflict):
        perform(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1"})


def test_a_cached_user_costs_one_update(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("PUT", "/contacts/c1", answer=contact("c1"), body={"role": "user", "external_id": "u1", "name": "Ann"})
    result = perform(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1", "name": "Ann"})
    assert (result["contact_id"], result["calls"]) == ("c1", 1)


@pytest.mark.parametrize("status", [404, 410])
def test_a_cached_user_gone_from_intercom_is_forgotten_and_created(status, stub, make_ctx, contacts) -> None:
    contacts.remember("old", "user", external_id="u1", email="ann@example.com")
    stub.expect("PUT", "/contacts/old", status=status, answer=error("not_found" if status == 404 else "contact_merged"))
    stub.expect("POST", "/contacts", answer=contact("new"))
    result = perform(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1"})
    assert (result["contact_id"], result["calls"]) == ("new", 2)
    assert contacts.get(external_id="u1") == CachedContact("new", "user")
    assert contacts.get(email="ann@example.com") is None


def test_an_email_only_user_is_searched_by_email_then_updated(stub, make_ctx, contacts) -> None:
    # One search finds the user and the leads with the email alike (the leads for the merge).
    query = {"field": "email", "operator": "=", "value": "ann@example.com"}
    stub.expect("POST", "/contacts/search", answer=found(contact("c1")), body={"query": query, "pagination": {"per_page": 50}})
    stub.expect("PUT", "/contacts/c1", answer=contact("c1"), body={"role": "user", "email": "ann@example.com"})
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "user", "email": "ann@example.com"})
    assert (result["contact_id"], result["calls"]) == ("c1", 2)
    assert contacts.get(email="ann@example.com") == CachedContact("c1", "user")


def test_an_email_only_user_not_found_is_created(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts/search", answer=found())
    stub.expect("POST", "/contacts", answer=contact("c2"), body={"role": "user", "email": "bob@example.com"})
    assert perform(make_ctx(), {"role": "user", "email": "bob@example.com"})["contact_id"] == "c2"


def test_an_email_only_user_cached_by_email_costs_one_update(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", email="ann@example.com")
    stub.expect("PUT", "/contacts/c1", answer=contact("c1"))
    assert perform(make_ctx(), {"role": "user", "email": "Ann@Example.com"})["calls"] == 1


def test_a_bad_request_is_permanent(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", status=400, answer=error("parameter_invalid", "User attribute 'x' does not exist"))
    with pytest.raises(PermanentError) as info:
        perform(make_ctx(user_id="u1"), {"role": "user", "external_id": "u1", "custom_attributes": {"x": 1}})
    assert info.value.code == "parameter_invalid"


# -- leads and their conversion ---------------------------------------------


def test_a_new_lead_is_created_and_cached_by_anonymous_id(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts", answer=contact("lead1", "lead"), body={"role": "lead", "email": "ann@example.com"})
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert result == {"contact_id": "lead1", "role": "lead", "merged_leads": [], "calls": 1}
    assert contacts.get(anonymous_id="anon1") == CachedContact("lead1", "lead")
    assert contacts.get(email="ann@example.com") == CachedContact("lead1", "lead")


def test_a_cached_lead_is_updated(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("PUT", "/contacts/lead1", answer=contact("lead1", "lead"), body={"role": "lead", "name": "Ann"})
    assert perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "name": "Ann"})["calls"] == 1


def test_a_user_identify_merges_the_lead_of_the_same_anonymous_id(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    contacts.remember_membership("lead1", "co1")
    stub.expect("POST", "/contacts", answer=contact("user1"), body={"role": "user", "external_id": "u1"})
    stub.expect(
        "POST", "/contacts/merge", answer=contact("user1"), body={"from": "lead1", "into": "user1", "skip_duplicate_validation": True}
    )
    result = perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1"})
    assert result == {"contact_id": "user1", "role": "user", "merged_leads": ["lead1"], "calls": 2}
    assert contacts.get(anonymous_id="anon1") == CachedContact("user1", "user")
    assert contacts.is_member("user1", "co1") and not contacts.is_member("lead1", "co1")
    assert not any("lead1" in key for key in contacts.redis.keys("*"))


def test_a_user_identify_merges_the_lead_with_the_same_email(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", email="ann@example.com", anonymous_id="other-device")
    stub.expect("POST", "/contacts", answer=contact("user1"))
    stub.expect(
        "POST", "/contacts/merge", answer=contact("user1"), body={"from": "lead1", "into": "user1", "skip_duplicate_validation": True}
    )
    result = perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1", "email": "ann@example.com"})
    assert (result["merged_leads"], result["calls"]) == (["lead1"], 2)
    assert contacts.get(email="ann@example.com") == CachedContact("user1", "user")
    assert contacts.get(anonymous_id="other-device") == CachedContact("user1", "user")


def test_a_merge_of_a_lead_already_gone_is_not_a_failure(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    contacts.remember("user1", "user", external_id="u1")
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"))
    stub.expect("POST", "/contacts/merge", status=404, answer=error("not_found"))
    result = perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1"})
    assert result["merged_leads"] == ["lead1"]
    assert contacts.get(anonymous_id="anon1") == CachedContact("user1", "user")


def test_no_merge_when_the_anonymous_id_already_points_at_the_user(stub, make_ctx, contacts) -> None:
    contacts.remember("user1", "user", external_id="u1", anonymous_id="anon1")
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"))
    assert perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1"})["calls"] == 1


def test_a_lead_keyed_identify_after_conversion_updates_the_user(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/contacts", answer=contact("user1"))
    stub.expect("POST", "/contacts/merge", answer=contact("user1"))
    perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1"})
    # A late anonymous identify of the same person: no new lead, the user gets the traits.
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"), body={"name": "Ann"})
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "name": "Ann"})
    assert result == {"contact_id": "user1", "role": "user", "merged_leads": [], "calls": 1}
    assert contacts.get(anonymous_id="anon1") == CachedContact("user1", "user")


def test_a_cached_lead_gone_from_intercom_is_created_again(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("PUT", "/contacts/lead1", status=410, answer=error("contact_merged"))
    stub.expect("POST", "/contacts", answer=contact("lead2", "lead"))
    assert perform(make_ctx(anonymous_id="anon1"), {"role": "lead"})["contact_id"] == "lead2"
    assert contacts.get(anonymous_id="anon1") == CachedContact("lead2", "lead")


# -- a lead's creation that did not finish (worker killed, call timed out) ---


def test_a_finished_lead_creation_leaves_no_note(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts", answer=contact("lead1", "lead"))
    perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert contacts.begin_lead_create("anon1", 0.0) is None  # nothing left over


def died_after_its_post(contacts, began: float) -> None:
    contacts.begin_lead_create("anon1", began)
    contacts.lead_create_sent("anon1", began)


def test_a_redelivered_lead_creation_finds_the_lead_it_made(stub, make_ctx, contacts) -> None:
    died_after_its_post(contacts, time.time() - 5)
    stub.expect("POST", "/contacts/search", answer=found(contact("lead1", "lead")))
    stub.expect("PUT", "/contacts/lead1", answer=contact("lead1", "lead"))
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert (result["contact_id"], result["calls"]) == ("lead1", 2)
    assert contacts.get(anonymous_id="anon1") == CachedContact("lead1", "lead")


def test_a_redelivered_lead_creation_waits_while_the_search_may_lag(stub, make_ctx, contacts) -> None:
    died_after_its_post(contacts, time.time() - 5)
    stub.expect("POST", "/contacts/search", answer=found())
    with pytest.raises(AwaitingSearch, match="earlier attempt to create this lead") as waiting:
        perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert 0 < waiting.value.retry_at - time.time() <= identify_contact.LEAD_SEARCH_EVERY_SECONDS


def test_an_attempt_that_died_before_its_post_leaves_nothing_to_wait_for(stub, make_ctx, contacts) -> None:
    contacts.begin_lead_create("anon1", time.time() - 5)  # its worker died while it searched for an existing lead
    stub.expect("POST", "/contacts", answer=contact("lead2", "lead"))  # no wait for a search: no lead was asked for
    assert perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})["contact_id"] == "lead2"


def test_past_the_search_wait_the_lead_is_created(stub, make_ctx, contacts) -> None:
    died_after_its_post(contacts, time.time() - identify_contact.LEAD_SEARCH_WAIT_SECONDS - 1)
    stub.expect("POST", "/contacts/search", answer=found())
    stub.expect("POST", "/contacts", answer=contact("lead2", "lead"))
    assert perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})["contact_id"] == "lead2"


def test_a_refused_lead_creation_leaves_no_note(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts", status=400, answer=error("parameter_invalid"))
    with pytest.raises(PermanentError):
        perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert contacts.begin_lead_create("anon1", 0.0) is None


def test_a_lead_creation_the_budget_held_back_leaves_no_note(make_ctx, contacts) -> None:
    ctx = make_ctx(anonymous_id="anon1")
    ctx.client._budget = SimpleNamespace(acquire=lambda: (_ for _ in ()).throw(RateLimited("spent", reset_at=1.0)), observe=lambda *a: None)
    with pytest.raises(RateLimited):
        perform(ctx, {"role": "lead", "email": "ann@example.com"})
    assert contacts.begin_lead_create("anon1", 0.0) is None  # the retry makes the lead without searching


def test_a_redelivered_lead_creation_updates_the_lead_its_note_names(stub, make_ctx, contacts) -> None:
    contacts.begin_lead_create("anon1", time.time() - 5)
    contacts.lead_created("anon1", "lead1")  # Intercom answered; the attempt stopped before caching it
    stub.expect("PUT", "/contacts/lead1", answer=contact("lead1", "lead"))
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert (result["contact_id"], result["calls"]) == ("lead1", 1)
    assert contacts.begin_lead_create("anon1", 0.0) is None


def test_a_lead_whose_merge_into_its_user_failed_is_merged_by_the_retry(stub, make_ctx, contacts, monkeypatch) -> None:
    made = contacts.lead_created

    def and_meanwhile_the_user_identify_links_the_anonymous_id(anonymous_id: str, lead_id: str) -> None:
        made(anonymous_id, lead_id)
        contacts.link_anonymous(anonymous_id, "user1", "user")  # the person's other lane, at this moment

    monkeypatch.setattr(contacts, "lead_created", and_meanwhile_the_user_identify_links_the_anonymous_id)
    stub.expect("POST", "/contacts", answer=contact("lead1", "lead"))
    stub.expect("POST", "/contacts/merge", status=429, answer=error("rate_limit_exceeded"))
    with pytest.raises(RateLimited):
        perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    # The retry finds the person converted, updates the user and folds the lead in.
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"))
    stub.expect(
        "POST", "/contacts/merge", answer=contact("user1"), body={"from": "lead1", "into": "user1", "skip_duplicate_validation": True}
    )
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert (result["contact_id"], result["role"], result["merged_leads"]) == ("user1", "user", ["lead1"])
    assert contacts.begin_lead_create("anon1", 0.0) is None


def test_a_user_identify_merges_the_lead_being_made_in_the_other_lane(stub, make_ctx, contacts) -> None:
    contacts.begin_lead_create("anon1", time.time())
    contacts.lead_created("anon1", "lead1")  # made, not linked to the anonymous id yet
    stub.expect("POST", "/contacts", answer=contact("user1"))
    stub.expect("POST", "/contacts/merge", answer=contact("user1"))
    result = perform(make_ctx(user_id="u1", anonymous_id="anon1"), {"role": "user", "external_id": "u1"})
    assert result["merged_leads"] == ["lead1"]


def test_a_converted_persons_redelivered_lead_identify_merges_the_lead_it_made(stub, make_ctx, contacts) -> None:
    died_after_its_post(contacts, time.time() - 5)  # killed after Intercom made the lead, before noting it
    contacts.link_anonymous("anon1", "user1", "user")  # the user identify, in the other lane, ran meanwhile
    stub.expect("POST", "/contacts/search", answer=found(contact("lead1", "lead")))
    stub.expect("PUT", "/contacts/user1", answer=contact("user1"))
    stub.expect(
        "POST", "/contacts/merge", answer=contact("user1"), body={"from": "lead1", "into": "user1", "skip_duplicate_validation": True}
    )
    result = perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
    assert (result["contact_id"], result["merged_leads"]) == ("user1", ["lead1"])
    assert contacts.begin_lead_create("anon1", 0.0) is None


def test_a_converted_persons_redelivered_lead_identify_waits_while_the_search_may_lag(stub, make_ctx, contacts) -> None:
    died_after_its_post(contacts, time.time() - 5)
    contacts.link_anonymous("anon1", "user1", "user")
    stub.expect("POST", "/contacts/search", answer=found())
    with pytest.raises(AwaitingSearch, match="earlier attempt to create this lead"):
        perform(make_ctx(anonymous_id="anon1"), {"role": "lead", "email": "ann@example.com"})
