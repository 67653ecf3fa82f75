"""A workspace the relay did not make: seeding, data attributes, admins' deletes and merges, paged search.

Against docs/intercom-api.md ("Data attributes", "Search", "Contacts").
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures_fake import api_client


def search_email(client, email, per_page=50, starting_after=None):
    pagination = {"per_page": per_page, **({"starting_after": starting_after} if starting_after else {})}
    response = client.post(
        "/contacts/search", json={"query": {"field": "email", "operator": "=", "value": email}, "pagination": pagination}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_seeded_contacts_are_searchable_at_once_even_with_a_search_lag(fake_intercom_factory):
    fake = fake_intercom_factory(search_lag=60)
    ids = fake.seed(contacts=[{"external_id": "u1", "email": "ann@x.io"}, {"role": "lead", "email": "ann@x.io"}])["contacts"]
    with api_client(fake) as client:
        found = search_email(client, "ann@x.io")
    assert sorted(c["id"] for c in found["data"]) == sorted(ids)
    assert {c["role"] for c in found["data"]} == {"user", "lead"}


def test_seeding_may_make_two_users_with_one_email_as_old_workspaces_hold(fake_intercom):
    fake_intercom.seed(contacts=[{"external_id": "a", "email": "same@x.io"}, {"external_id": "b", "email": "same@x.io"}])
    assert fake_intercom.state()["counts"]["users"] == 2


def test_seeded_companies_and_attachments(fake_intercom, fake_intercom_client):
    seeded = fake_intercom.seed(
        companies=[{"company_id": "acme", "name": "Acme"}], contacts=[{"external_id": "u1", "company_ids": ["acme"]}]
    )
    state = fake_intercom.state()
    assert state["attachments"] == [{"contact_id": seeded["contacts"][0], "company_id": seeded["companies"][0]}]
    upserted = fake_intercom_client.post("/companies", json={"company_id": "acme", "plan": "pro"}).json()
    assert upserted["id"] == seeded["companies"][0] and upserted["name"] == "Acme"


def test_search_pages_follow_the_next_cursor_to_the_last_contact(fake_intercom, fake_intercom_client):
    fake_intercom.seed(contacts=[{"role": "lead", "email": "many@x.io"} for _ in range(23)])
    seen, cursor, pages = [], None, 0
    while True:
        page = search_email(fake_intercom_client, "many@x.io", per_page=10, starting_after=cursor)
        seen += [c["id"] for c in page["data"]]
        pages += 1
        assert page["total_count"] == 23
        cursor = (page["pages"].get("next") or {}).get("starting_after")
        if not cursor:
            break
    assert pages == 3 and len(set(seen)) == 23


def test_post_data_attributes_answers_200_and_the_attribute_becomes_writable(fake_intercom_client):
    client = fake_intercom_client
    refused = client.post("/contacts", json={"external_id": "u1", "custom_attributes": {"seats": 3}})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "parameter_invalid"
    assert refused.json()["errors"][0]["field"] == "custom_attributes.seats"
    made = client.post("/data_attributes", json={"name": "seats", "model": "contact", "data_type": "integer"})
    assert made.status_code == 200
    assert made.json()["full_name"] == "custom_attributes.seats" and made.json()["custom"] is True
    assert client.post("/contacts", json={"external_id": "u1", "custom_attributes": {"seats": 3}}).status_code == 200
    listed = client.get("/data_attributes", params={"model": "contact"}).json()
    assert listed["type"] == "list"
    assert {"seats": "integer"}.items() <= {a["name"]: a["data_type"] for a in listed["data"] if a["custom"]}.items()
    assert any(a["name"] == "email" and not a["custom"] for a in listed["data"])


@pytest.mark.parametrize(
    ("data_type", "value"),
    [
        ("integer", "about 40"),
        ("integer", 1.5),
        ("string", 3),
        ("boolean", "yes"),
        ("float", True),
        ("string", ["a"]),
        ("string", {"a": 1}),
    ],
)
def test_a_value_of_the_wrong_type_is_400_parameter_invalid_naming_the_attribute(fake_intercom_client, data_type, value):
    client = fake_intercom_client
    client.post("/data_attributes", json={"name": "attr", "model": "company", "data_type": data_type})
    refused = client.post("/companies", json={"company_id": "c1", "custom_attributes": {"attr": value}})
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["code"] in ("parameter_invalid", "bad_request") and "attr" in error["message"] + error.get("field", "")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "email", "model": "contact", "data_type": "string"}, "is one of our standard attributes"),
        ({"name": "taken", "model": "company", "data_type": "string"}, "You already have 'taken'"),
        ({"name": "bad/name", "model": "contact", "data_type": "string"}, "must only contain alphanumeric"),
        ({"name": "x", "model": "contact", "data_type": "money"}, "Data Type isn't an option"),
    ],
)
def test_post_data_attributes_refusals_are_the_documented_400s(fake_intercom_client, body, message):
    fake_intercom_client.post("/data_attributes", json={"name": "taken", "model": "contact", "data_type": "string"})
    refused = fake_intercom_client.post("/data_attributes", json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "parameter_invalid"
    assert message in refused.json()["errors"][0]["message"]


def test_get_data_attributes_refuses_conversation_with_422(fake_intercom_client):
    assert fake_intercom_client.get("/data_attributes", params={"model": "conversation"}).status_code == 422


def test_an_admin_deletes_a_contact_then_it_answers_404(fake_intercom, fake_intercom_client):
    contact = fake_intercom.seed(contacts=[{"external_id": "u1", "email": "a@x.io"}])["contacts"][0]
    fake_intercom.admin_delete(contact=contact)
    assert fake_intercom_client.put(f"/contacts/{contact}", json={"name": "x"}).status_code == 404
    assert fake_intercom_client.post("/events", json={"event_name": "e", "created_at": 1, "user_id": "u1"}).status_code == 404
    # The external_id is free again: a create makes a new user.
    assert fake_intercom_client.post("/contacts", json={"external_id": "u1"}).status_code == 200
    assert fake_intercom.state()["counts"]["deleted"] == 1


def test_an_admin_merges_a_lead_into_a_user_and_the_lead_answers_410_with_its_link(fake_intercom, fake_intercom_client):
    lead, user = fake_intercom.seed(contacts=[{"role": "lead", "email": "l@x.io"}, {"external_id": "u1", "email": "u@x.io"}])["contacts"]
    fake_intercom.admin_merge(lead, user)
    gone = fake_intercom_client.put(f"/contacts/{lead}", json={"name": "x"})
    assert gone.status_code == 410 and gone.headers["link"] == f'</contacts/{user}>; rel="canonical"'
    assert fake_intercom.state()["merges"][0]["from"] == lead


def test_an_admin_deletes_a_company_then_attach_is_404_and_the_next_upsert_makes_it_again(fake_intercom, fake_intercom_client):
    seeded = fake_intercom.seed(companies=[{"company_id": "acme"}], contacts=[{"external_id": "u1", "company_ids": ["acme"]}])
    contact, company = seeded["contacts"][0], seeded["companies"][0]
    fake_intercom.admin_delete(company=company)
    attach = fake_intercom_client.post(f"/contacts/{contact}/companies", json={"id": company})
    assert attach.status_code == 404 and attach.json()["errors"][0]["code"] == "company_not_found"
    again = fake_intercom_client.post("/companies", json={"company_id": "acme"}).json()
    assert again["id"] != company
    assert fake_intercom.state()["attachments"] == []


def test_admin_endpoints_answer_404_for_an_unknown_id(fake_intercom):
    with pytest.raises(httpx.HTTPStatusError):
        fake_intercom.admin_delete(contact="nope")
