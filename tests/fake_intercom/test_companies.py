"""POST /companies and POST /contacts/{id}/companies (docs/intercom-api.md, Companies)."""

from __future__ import annotations

import pytest


@pytest.fixture
def contact(fake_intercom_client):
    return fake_intercom_client.post("/contacts", json={"external_id": "u1"}).json()


def test_company_upsert_creates_then_updates_by_company_id(fake_intercom, fake_intercom_client):
    created = fake_intercom_client.post(
        "/companies", json={"company_id": "c1", "name": "Acme", "plan": "pro", "size": 10, "monthly_spend": 155.98}
    )
    assert created.status_code == 200
    company = created.json()
    assert company["type"] == "company" and company["company_id"] == "c1" and company["name"] == "Acme"
    assert company["plan"]["name"] == "pro"
    assert company["monthly_spend"] == 155  # "this will truncate floats"
    for key in ("app_id", "created_at", "updated_at", "user_count", "session_count", "custom_attributes", "tags", "segments"):
        assert key in company
    updated = fake_intercom_client.post("/companies", json={"company_id": "c1", "industry": "Software"}).json()
    assert updated["id"] == company["id"]
    assert (updated["name"], updated["industry"]) == ("Acme", "Software")
    assert len(fake_intercom.state()["companies"]) == 1


def test_unknown_company_key_is_400_bad_request_bad_parameter(fake_intercom_client):
    response = fake_intercom_client.post("/companies", json={"test": "invalid"})  # the spec's own example
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"code": "bad_request", "message": "bad 'test' parameter", "field": "test"}


def test_company_custom_attributes_must_exist(fake_intercom, fake_intercom_client):
    body = {"company_id": "c1", "custom_attributes": {"tier": "gold"}}
    assert fake_intercom_client.post("/companies", json=body).status_code == 400
    fake_intercom.add_custom_attributes(companies=["tier"])
    assert fake_intercom_client.post("/companies", json=body).json()["custom_attributes"] == {"tier": "gold"}


def test_attach_returns_the_company_and_is_idempotent(fake_intercom, fake_intercom_client, contact):
    company = fake_intercom_client.post("/companies", json={"company_id": "c1"}).json()
    for _ in range(2):
        response = fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json={"id": company["id"]})
        assert response.status_code == 200
        assert response.json()["id"] == company["id"] and response.json()["user_count"] == 1
    assert fake_intercom.state()["attachments"] == [{"contact_id": contact["id"], "company_id": company["id"]}]
    listed = fake_intercom_client.get(f"/contacts/{contact['id']}").json()["companies"]
    assert listed["total_count"] == 1 and listed["data"][0]["id"] == company["id"]


@pytest.mark.parametrize("body", [{}, None])
def test_attach_without_an_id_is_400_company_not_specified(fake_intercom_client, contact, body):
    response = fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_not_found"
    assert response.json()["errors"][0]["message"] == "company not specified"


def test_attach_by_company_id_instead_of_intercom_id_is_404_company_not_found(fake_intercom_client, contact):
    fake_intercom_client.post("/companies", json={"company_id": "c1"})
    response = fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json={"id": "c1"})
    assert response.status_code == 404
    assert response.json()["errors"] == [{"code": "company_not_found", "message": "Company Not Found"}]


def test_attach_to_an_unknown_contact_is_404_user_not_found(fake_intercom_client):
    company = fake_intercom_client.post("/companies", json={"company_id": "c1"}).json()
    response = fake_intercom_client.post(f"/contacts/{'0' * 24}/companies", json={"id": company["id"]})
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_attachment_limit_is_400_contact_company_limit_exceeded(fake_intercom, fake_intercom_client, contact):
    fake_intercom.configure(company_attachment_limit=2)  # 1000 in Intercom; small here to stay fast
    ids = [fake_intercom_client.post("/companies", json={"company_id": f"c{i}"}).json()["id"] for i in range(3)]
    for company_id in ids[:2]:
        assert fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json={"id": company_id}).status_code == 200
    response = fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json={"id": ids[2]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "contact_company_limit_exceeded"
    # Re-attaching one it already has is still fine.
    assert fake_intercom_client.post(f"/contacts/{contact['id']}/companies", json={"id": ids[0]}).status_code == 200
