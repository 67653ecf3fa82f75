"""Contacts the relay did not make: found, not duplicated, with a cold cache.

Each test starts from an empty cache, as after a switch from Segment or an emptied Redis,
with the searches for existing contacts on (WorkspacePolicy's production defaults).
"""

from __future__ import annotations

import logging

import pytest

from tests.actions.stubs import contact, found
from worker.actions import identify_contact
from worker.actions.common import WorkspacePolicy
from worker.store.contacts import CachedContact

perform = identify_contact.ACTION.run
LIVE = WorkspacePolicy()
EMAIL = {"field": "email", "operator": "=", "value": "ann@x.io"}
LEADS = {"operator": "AND", "value": [EMAIL, {"field": "role", "operator": "=", "value": "lead"}]}


def search(query: dict, cursor: str | None = None) -> dict:
    pagination: dict = {"per_page": 50, **({"starting_after": cursor} if cursor else {})}
    return {"query": query, "pagination": pagination}


def paged(*contacts: dict, cursor: str | None = None) -> dict:
    answer = found(*contacts)
    answer["pages"] = {"type": "pages", **({"next": {"per_page": 50, "starting_after": cursor}} if cursor else {})}
    return answer


def test_a_lead_identify_with_an_email_updates_the_lead_that_has_it(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts/search", answer=found(contact("old-lead", "lead")), body=search(LEADS))
    stub.expect("PUT", "/contacts/old-lead", answer=contact("old-lead", "lead"), body={"role": "lead", "email": "ann@x.io"})
    result = perform(make_ctx(anonymous_id="anon1", workspace=LIVE), {"role": "lead", "email": "ann@x.io"})
    assert (result["contact_id"], result["calls"]) == ("old-lead", 2)
    assert contacts.get(anonymous_id="anon1") == CachedContact("old-lead", "lead")
    assert contacts.lead_note("anon1") is None


def test_a_lead_identify_whose_email_no_lead_has_creates_one(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts/search", answer=found(), body=search(LEADS))
    stub.expect("POST", "/contacts", answer=contact("new-lead", "lead"))
    result = perform(make_ctx(anonymous_id="anon1", workspace=LIVE), {"role": "lead", "email": "ann@x.io"})
    assert (result["contact_id"], result["calls"]) == ("new-lead", 2)


def test_a_lead_identify_without_an_email_creates_at_once(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", answer=contact("new-lead", "lead"))
    assert perform(make_ctx(anonymous_id="anon1", workspace=LIVE), {"role": "lead", "name": "Ann"})["calls"] == 1


def test_a_new_user_merges_the_leads_in_intercom_that_share_its_email(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/contacts", answer=contact("u"))
    stub.expect("POST", "/contacts/search", answer=found(contact("l1", "lead"), contact("l2", "lead")), body=search(LEADS))
    stub.expect("POST", "/contacts/merge", answer=contact("u"), body={"from": "l1", "into": "u", "skip_duplicate_validation": True})
    stub.expect("POST", "/contacts/merge", answer=contact("u"), body={"from": "l2", "into": "u", "skip_duplicate_validation": True})
    result = perform(make_ctx(user_id="u1", workspace=LIVE), {"role": "user", "external_id": "u1", "email": "ann@x.io"})
    assert result["merged_leads"] == ["l1", "l2"] and result["calls"] == 4


def test_a_known_users_next_identify_searches_no_more(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", answer=contact("u"))
    stub.expect("POST", "/contacts/search", answer=found(), body=search(LEADS))
    fields = {"role": "user", "external_id": "u1", "email": "ann@x.io"}
    perform(make_ctx(user_id="u1", workspace=LIVE), fields)
    stub.expect("PUT", "/contacts/u", answer=contact("u"))
    assert perform(make_ctx(user_id="u1", workspace=LIVE), {**fields, "name": "Ann"})["calls"] == 1


def test_a_users_new_email_is_searched_for_leads_again(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", answer=contact("u"))
    stub.expect("POST", "/contacts/search", answer=found())
    perform(make_ctx(user_id="u1", workspace=LIVE), {"role": "user", "external_id": "u1", "email": "old@x.io"})
    stub.expect("PUT", "/contacts/u", answer=contact("u"))
    stub.expect("POST", "/contacts/search", answer=found(contact("l9", "lead")), body=search(LEADS))
    stub.expect("POST", "/contacts/merge", answer=contact("u"))
    result = perform(make_ctx(user_id="u1", workspace=LIVE), {"role": "user", "external_id": "u1", "email": "ann@x.io"})
    assert result["merged_leads"] == ["l9"]


def test_the_search_for_leads_follows_every_page(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", answer=contact("u"))
    stub.expect("POST", "/contacts/search", answer=paged(contact("l1", "lead"), cursor="p2"), body=search(LEADS))
    stub.expect("POST", "/contacts/search", answer=paged(contact("l2", "lead")), body=search(LEADS, "p2"))
    stub.expect("POST", "/contacts/merge", answer=contact("u"))
    stub.expect("POST", "/contacts/merge", answer=contact("u"))
    result = perform(make_ctx(user_id="u1", workspace=LIVE), {"role": "user", "external_id": "u1", "email": "ann@x.io"})
    assert result["merged_leads"] == ["l1", "l2"]


def test_merge_leads_by_email_off_searches_nothing(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts", answer=contact("u"))
    off = WorkspacePolicy(merge_leads_by_email=False)
    assert perform(make_ctx(user_id="u1", workspace=off), {"role": "user", "external_id": "u1", "email": "ann@x.io"})["calls"] == 1


def test_an_email_only_user_finding_one_lead_makes_that_lead_the_user(stub, make_ctx, contacts) -> None:
    contacts.remember("l1", "lead", anonymous_id="anon-old", sent='{"c":"l1","m":"","b":{"role":"lead"}}')
    stub.expect("POST", "/contacts/search", answer=found(contact("l1", "lead")), body=search(EMAIL))
    stub.expect("PUT", "/contacts/l1", answer=contact("l1", "user"), body={"role": "user", "email": "ann@x.io"})
    result = perform(make_ctx(workspace=LIVE), {"role": "user", "email": "ann@x.io"})
    assert result == {"contact_id": "l1", "role": "user", "merged_leads": [], "calls": 2}
    assert contacts.get(email="ann@x.io") == CachedContact("l1", "user")
    # The lead's own keys say "user" now, with no record of the lead's writes to skip against.
    old = contacts.get(anonymous_id="anon-old")
    assert old == CachedContact("l1", "user") and old.sent is None


def test_an_email_only_user_finding_two_leads_makes_the_oldest_the_user_and_merges_the_other(stub, make_ctx) -> None:
    leads = found(contact("young", "lead", created_at=200), contact("old", "lead", created_at=100))
    stub.expect("POST", "/contacts/search", answer=leads, body=search(EMAIL))
    stub.expect("PUT", "/contacts/old", answer=contact("old", "user"))
    stub.expect("POST", "/contacts/merge", answer=contact("old"), body={"from": "young", "into": "old", "skip_duplicate_validation": True})
    result = perform(make_ctx(workspace=LIVE), {"role": "user", "email": "ann@x.io"})
    assert (result["contact_id"], result["merged_leads"]) == ("old", ["young"])


def test_two_users_with_one_email_the_oldest_wins_and_a_log_line_says_so(stub, make_ctx, caplog: pytest.LogCaptureFixture) -> None:
    users = found(contact("b", created_at=300), contact("a", created_at=100), contact("l", "lead", created_at=50))
    stub.expect("POST", "/contacts/search", answer=users, body=search(EMAIL))
    stub.expect("PUT", "/contacts/a", answer=contact("a"))
    stub.expect("POST", "/contacts/merge", answer=contact("a"), body={"from": "l", "into": "a", "skip_duplicate_validation": True})
    with caplog.at_level(logging.INFO, logger="tests.actions"):
        result = perform(make_ctx(workspace=LIVE), {"role": "user", "email": "ann@x.io"})
    assert (result["contact_id"], result["merged_leads"]) == ("a", ["l"])
    assert any("2 contacts match email='ann@x.io'; using a" in r.getMessage() for r in caplog.records)
