"""Identify Company: upsert, then attach by the company's Intercom id."""

from __future__ import annotations

import pytest

from tests.actions.stubs import contact, error, found
from worker.actions import identify_company
from worker.actions.common import load_fields
from worker.intercom.errors import ContactNotFound, InvalidPayload, RetryableError
from worker.store.contacts import CachedContact

perform = identify_company.ACTION.run
COMPANY = {"type": "company", "id": "6762f0e11bb69f9f2193bba2", "company_id": "acme", "name": "Acme"}


def test_body_holds_only_company_fields_converted() -> None:
    fields = load_fields(
        identify_company.Fields,
        {
            "company_id": 77,
            "name": "Acme",
            "monthly_spend": 155.98,
            "plan": "pro",
            "size": "12",
            "website": "https://acme.example",
            "industry": "Anvils",
            "remote_created_at": "2020-01-01T00:00:00Z",
            "custom_attributes": {"tier": "gold"},
            "external_id": "u1",
            "email": "a@x.io",
            "contact_id": "c1",
        },
    )
    assert identify_company.build_body(fields) == {
        "company_id": "77",
        "name": "Acme",
        "monthly_spend": 155,
        "plan": "pro",
        "size": 12,
        "website": "https://acme.example",
        "industry": "Anvils",
        "remote_created_at": 1577836800,
        "custom_attributes": {"tier": "gold"},
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "Acme"}, "company_id"),
        ({"company_id": "acme", "monthly_spend": 2**31}, "monthly_spend"),
        ({"company_id": "acme", "size": "many"}, "size"),
    ],
)
def test_invalid_fields_are_named(raw: dict, field: str, make_ctx) -> None:
    # With STRICT_FIELDS=true; without it an optional field that can't be converted is dropped
    # (tests/actions/test_dropped_fields.py).
    with pytest.raises(InvalidPayload) as info:
        perform(make_ctx(strict_fields=True), raw)
    assert info.value.field == field


def test_upsert_then_attach_by_the_intercom_id(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("POST", "/companies", answer=COMPANY, body={"company_id": "acme", "name": "Acme"})
    stub.expect("POST", "/contacts/c1/companies", answer=COMPANY, body={"id": "6762f0e11bb69f9f2193bba2"})
    result = perform(make_ctx(user_id="u1"), {"company_id": "acme", "name": "Acme", "external_id": "u1"})
    assert result == {"company_id": "6762f0e11bb69f9f2193bba2", "contact_id": "c1", "attached": True, "calls": 2}
    assert contacts.is_member("c1", "6762f0e11bb69f9f2193bba2")


def test_a_known_membership_skips_the_attach(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    contacts.remember_membership("c1", COMPANY["id"])
    stub.expect("POST", "/companies", answer=COMPANY)
    result = perform(make_ctx(user_id="u1"), {"company_id": "acme", "external_id": "u1"})
    assert (result["attached"], result["calls"]) == (False, 1)


def test_a_given_contact_id_is_used_as_is(stub, make_ctx) -> None:
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect("POST", "/contacts/c5/companies", answer=COMPANY)
    assert perform(make_ctx(), {"company_id": "acme", "contact_id": "c5", "external_id": "u1"})["contact_id"] == "c5"


def test_the_lead_of_the_anonymous_id_is_attached(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect("POST", "/contacts/lead1/companies", answer=COMPANY)
    assert perform(make_ctx(anonymous_id="anon1"), {"company_id": "acme"})["contact_id"] == "lead1"


def test_an_uncached_contact_is_searched_by_external_id_then_email(stub, make_ctx, contacts) -> None:
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect(
        "POST",
        "/contacts/search",
        answer=found(),
        body={"query": {"field": "external_id", "operator": "=", "value": "u1"}, "pagination": {"per_page": 50}},
    )
    stub.expect(
        "POST",
        "/contacts/search",
        answer=found(contact("c3")),
        body={"query": {"field": "email", "operator": "=", "value": "a@x.io"}, "pagination": {"per_page": 50}},
    )
    stub.expect("POST", "/contacts/c3/companies", answer=COMPANY)
    result = perform(make_ctx(user_id="u1"), {"company_id": "acme", "external_id": "u1", "email": "a@x.io"})
    assert (result["contact_id"], result["calls"]) == ("c3", 4)
    assert contacts.get(email="a@x.io") == CachedContact("c3", "user")


def test_an_unknown_contact_is_contact_not_found(stub, make_ctx) -> None:
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect("POST", "/contacts/search", answer=found())
    with pytest.raises(ContactNotFound):
        perform(make_ctx(user_id="u1"), {"company_id": "acme", "external_id": "u1"})


def test_an_attach_404_for_the_contact_forgets_it(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect("POST", "/contacts/c1/companies", status=404, answer=error("not_found", "User Not Found"))
    with pytest.raises(ContactNotFound):
        perform(make_ctx(user_id="u1"), {"company_id": "acme", "external_id": "u1"})
    assert contacts.get(external_id="u1") is None


def test_an_attach_404_for_the_company_just_upserted_is_retried(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("POST", "/companies", answer=COMPANY)
    stub.expect("POST", "/contacts/c1/companies", status=404, answer=error("company_not_found", "Company Not Found"))
    with pytest.raises(RetryableError):
        perform(make_ctx(user_id="u1"), {"company_id": "acme", "external_id": "u1"})
    assert contacts.get(external_id="u1") == CachedContact("c1", "user")
