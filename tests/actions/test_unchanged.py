"""SKIP_UNCHANGED: an identify or a group that Intercom already holds makes no call.

Against the stub Intercom: every call a test expects must be made, and no
other, so a skipped write is a call the stub never sees.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from tests.actions.stubs import contact
from worker.actions import identify_company, identify_contact, track_event
from worker.actions.common import ActionContext
from worker.actions.unchanged import SkipPolicy, flatten, holds, record
from worker.intercom.errors import ContactNotFound
from worker.store.companies import CompanyCache

SKIP = SkipPolicy(enabled=True, last_seen_resolution=300)
SEEN = 1_700_000_000
USER: dict[str, Any] = {"role": "user", "external_id": "u1", "email": "ann@example.com", "name": "Ann", "last_seen_at": SEEN}


@pytest.fixture
def ctx(make_ctx: Callable[..., ActionContext], contacts: Any) -> Callable[..., ActionContext]:
    companies = CompanyCache(contacts.redis)

    def make(mapping_version: str = "v1", skip: SkipPolicy = SKIP, **ids: Any) -> ActionContext:
        built = make_ctx(**({"user_id": "u1"} | ids))
        built.companies, built.skip, built.mapping_version = companies, skip, mapping_version
        return built

    return make


def put(stub: Any, contact_id: str = "c1", body: Any = ...) -> None:
    stub.expect("PUT", f"/contacts/{contact_id}", answer=contact(contact_id), body=body)


# -- the record -----------------------------------------------------------------


def test_a_record_holds_a_body_that_sends_the_same_or_fewer_fields() -> None:
    sent = record(None, "c1", {**USER, "custom_attributes": {"plan": "pro", "seats": 3}}, "v1")
    assert holds(sent, "c1", USER, "v1", SKIP)
    assert holds(sent, "c1", {"role": "user", "custom_attributes": {"plan": "pro"}}, "v1", SKIP)
    assert not holds(sent, "c1", {**USER, "name": "Anne"}, "v1", SKIP)
    assert not holds(sent, "c1", {**USER, "phone": None}, "v1", SKIP)  # never sent: not known
    assert not holds(sent, "c1", {"custom_attributes": {"plan": "team"}}, "v1", SKIP)
    assert not holds(sent, "c2", USER, "v1", SKIP)  # a record of another contact
    assert not holds(sent, "c1", USER, "v2", SKIP)  # another version of the mapping
    assert not holds(sent, "c1", USER, "v1", SkipPolicy(enabled=False))
    assert not holds(None, "c1", USER, "v1", SKIP) and not holds("not json", "c1", USER, "v1", SKIP)


def test_last_seen_at_moving_less_than_the_resolution_is_no_change() -> None:
    sent = record(None, "c1", USER, "v1")
    assert holds(sent, "c1", {**USER, "last_seen_at": SEEN + 299}, "v1", SKIP)
    assert not holds(sent, "c1", {**USER, "last_seen_at": SEEN + 300}, "v1", SKIP)
    assert not holds(sent, "c1", {**USER, "last_seen_at": None}, "v1", SKIP)  # cleared: a change


def test_a_record_adds_what_was_written_to_what_the_contact_held() -> None:
    first = record(None, "c1", {"role": "user", "name": "Ann"}, "v1")
    second = record(first, "c1", {"role": "user", "phone": "+1"}, "v1")
    assert holds(second, "c1", {"role": "user", "name": "Ann", "phone": "+1"}, "v1", SKIP)
    assert not holds(record(first, "c2", {"phone": "+1"}, "v1"), "c2", {"name": "Ann"}, "v1", SKIP)  # not c2's
    assert flatten({"custom_attributes": {"a": 1}, "name": "x"}) == {"custom_attributes.a": 1, "name": "x"}


# -- identify ----------------------------------------------------------------------


def test_an_identify_that_repeats_the_last_one_makes_no_call(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    assert identify_contact.ACTION.run(ctx(), USER)["calls"] == 1
    result = identify_contact.ACTION.run(ctx(), {**USER, "last_seen_at": SEEN + 60})
    assert (result["contact_id"], result["calls"]) == ("c1", 0)


def test_a_single_changed_trait_is_never_skipped(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    put(stub, body={**USER, "name": "Anne"})
    put(stub, body=USER)  # and back again
    identify_contact.ACTION.run(ctx(), USER)
    assert identify_contact.ACTION.run(ctx(), {**USER, "name": "Anne"})["calls"] == 1
    assert identify_contact.ACTION.run(ctx(), USER)["calls"] == 1
    assert identify_contact.ACTION.run(ctx(), USER)["calls"] == 0


def test_last_seen_at_past_its_resolution_is_sent(stub: Any, ctx: Any) -> None:
    later = {**USER, "last_seen_at": SEEN + 301}
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    put(stub, body=later)
    identify_contact.ACTION.run(ctx(), USER)
    assert identify_contact.ACTION.run(ctx(), later)["calls"] == 1


def test_a_change_of_mapping_is_sent(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    put(stub, body=USER)
    identify_contact.ACTION.run(ctx(mapping_version="v1"), USER)
    assert identify_contact.ACTION.run(ctx(mapping_version="v2"), USER)["calls"] == 1
    assert identify_contact.ACTION.run(ctx(mapping_version="v2"), USER)["calls"] == 0


def test_with_skip_off_every_identify_is_sent(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    put(stub, body=USER)
    identify_contact.ACTION.run(ctx(skip=SkipPolicy(enabled=False)), USER)
    assert identify_contact.ACTION.run(ctx(skip=SkipPolicy(enabled=False)), USER)["calls"] == 1


def test_a_contact_deleted_in_intercom_is_made_again_once_a_call_finds_it_gone(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    identify_contact.ACTION.run(ctx(), USER)
    # An admin deletes c1; the person's next track is answered 404, and the relay forgets c1.
    stub.expect("POST", "/events", status=404, answer={"type": "error.list", "errors": [{"code": "not_found"}]})
    with pytest.raises(ContactNotFound):
        track_event.ACTION.run(ctx(), {"event_name": "Signed In", "created_at": 1_700_000_100, "user_id": "u1"})
    stub.expect("POST", "/contacts", answer=contact("c9"), body=USER)
    assert identify_contact.ACTION.run(ctx(), USER) == {"contact_id": "c9", "role": "user", "merged_leads": [], "calls": 1}


def test_after_a_merge_the_next_identify_is_sent(stub: Any, ctx: Any, contacts: Any) -> None:
    lead = {"role": "lead", "email": "ann@example.com", "name": "Ann"}
    stub.expect("POST", "/contacts", answer=contact("L1", "lead"), body=lead)
    identify_contact.ACTION.run(ctx(user_id=None, anonymous_id="a1"), lead)
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    stub.expect("POST", "/contacts/merge", answer=contact("c1"))
    assert identify_contact.ACTION.run(ctx(anonymous_id="a1"), USER)["merged_leads"] == ["L1"]
    put(stub, body=USER)
    assert identify_contact.ACTION.run(ctx(anonymous_id="a1"), USER)["calls"] == 1
    assert identify_contact.ACTION.run(ctx(anonymous_id="a1"), USER)["calls"] == 0


def test_a_lead_repeating_itself_makes_no_call(stub: Any, ctx: Any) -> None:
    lead = {"role": "lead", "email": "ann@example.com", "name": "Ann"}
    stub.expect("POST", "/contacts", answer=contact("L1", "lead"), body=lead)
    identify_contact.ACTION.run(ctx(user_id=None, anonymous_id="a1"), lead)
    assert identify_contact.ACTION.run(ctx(user_id=None, anonymous_id="a1"), lead)["calls"] == 0


def test_a_converted_persons_page_view_repeating_the_users_traits_makes_no_call(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    identify_contact.ACTION.run(ctx(anonymous_id="a2"), USER)
    # An identify from the same browser without the userId: a lead identify of a user now.
    page_view = {"role": "lead", "email": "ann@example.com", "name": "Ann"}
    result = identify_contact.ACTION.run(ctx(user_id=None, anonymous_id="a2"), page_view)
    assert (result["contact_id"], result["role"], result["calls"]) == ("c1", "user", 0)


# -- companies ------------------------------------------------------------------------

COMPANY = {"company_id": "acme", "name": "Acme", "plan": "pro", "external_id": "u1"}


def test_an_unchanged_company_whose_attachment_is_known_makes_no_call(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    identify_contact.ACTION.run(ctx(), USER)
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"}, body={"company_id": "acme", "name": "Acme", "plan": "pro"})
    stub.expect("POST", "/contacts/c1/companies", answer={"type": "company", "id": "co1"})
    assert identify_company.ACTION.run(ctx(), COMPANY)["calls"] == 2
    assert identify_company.ACTION.run(ctx(), COMPANY) == {"company_id": "co1", "contact_id": "c1", "attached": False, "calls": 0}
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"}, body={"company_id": "acme", "name": "Acme", "plan": "team"})
    assert identify_company.ACTION.run(ctx(), {**COMPANY, "plan": "team"})["calls"] == 1


def test_an_unchanged_company_is_attached_to_a_new_member_without_an_upsert(stub: Any, ctx: Any) -> None:
    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"})
    stub.expect("POST", "/contacts/c1/companies", answer={"type": "company", "id": "co1"})
    identify_contact.ACTION.run(ctx(), USER)
    identify_company.ACTION.run(ctx(), COMPANY)
    bob = {**USER, "external_id": "u2", "email": "bob@example.com"}
    stub.expect("POST", "/contacts", answer=contact("c2"), body=bob)
    stub.expect("POST", "/contacts/c2/companies", answer={"type": "company", "id": "co1"})
    identify_contact.ACTION.run(ctx(user_id="u2"), bob)
    assert identify_company.ACTION.run(ctx(user_id="u2"), {**COMPANY, "external_id": "u2"})["calls"] == 1


def test_a_company_deleted_in_intercom_is_upserted_again_by_the_retry(stub: Any, ctx: Any) -> None:
    from worker.intercom.errors import RetryableError

    stub.expect("POST", "/contacts", answer=contact("c1"), body=USER)
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co1"})
    stub.expect("POST", "/contacts/c1/companies", answer={"type": "company", "id": "co1"})
    identify_contact.ACTION.run(ctx(), USER)
    identify_company.ACTION.run(ctx(), COMPANY)
    bob = {**USER, "external_id": "u2", "email": "bob@example.com"}
    stub.expect("POST", "/contacts", answer=contact("c2"), body=bob)
    identify_contact.ACTION.run(ctx(user_id="u2"), bob)
    # An admin deleted the company: attaching bob to the cached id fails, and the retry upserts.
    stub.expect("POST", "/contacts/c2/companies", status=404, answer={"type": "error.list", "errors": [{"code": "company_not_found"}]})
    with pytest.raises(RetryableError):
        identify_company.ACTION.run(ctx(user_id="u2"), {**COMPANY, "external_id": "u2"})
    stub.expect("POST", "/companies", answer={"type": "company", "id": "co2"})
    stub.expect("POST", "/contacts/c2/companies", answer={"type": "company", "id": "co2"})
    assert identify_company.ACTION.run(ctx(user_id="u2"), {**COMPANY, "external_id": "u2"})["company_id"] == "co2"
