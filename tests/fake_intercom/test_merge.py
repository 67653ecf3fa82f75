"""POST /contacts/merge (docs/intercom-api.md, Contacts; 410 for merged contacts in 2.16)."""

from __future__ import annotations

import time

from tests.fixtures_fake import api_client


def make(client, **body):
    response = client.post("/contacts", json=body)
    assert response.status_code == 200, response.text
    return response.json()["id"]


def test_merging_duplicates_moves_events_and_companies_to_the_user(fake_intercom, fake_intercom_client):
    client = fake_intercom_client
    lead = make(client, role="lead", email="ann@example.com")
    user = make(client, external_id="u1", email="ann@example.com")
    client.post("/events", json={"event_name": "viewed", "created_at": 1, "id": lead})
    company = client.post("/companies", json={"company_id": "c1"}).json()["id"]
    client.post(f"/contacts/{lead}/companies", json={"id": company})

    response = client.post("/contacts/merge", json={"from": lead, "into": user})
    assert response.status_code == 200
    merged = response.json()
    assert merged["id"] == user and merged["role"] == "user"
    assert [c["id"] for c in merged["companies"]["data"]] == [company]

    state = fake_intercom.state()
    assert [e["event_name"] for e in state["events"][user]] == ["viewed"]
    assert lead not in state["events"]
    assert {"contact_id": user, "company_id": company} in state["attachments"]
    assert {c["id"]: c["merged"] for c in state["contacts"]} == {lead: True, user: False}
    assert state["merges"][0]["from"] == lead and state["merges"][0]["into"] == user


def test_merged_contact_is_410_with_a_canonical_link_on_get_and_put(fake_intercom_client):
    client = fake_intercom_client
    lead = make(client, role="lead", phone="+15550001")
    user = make(client, external_id="u1", phone="+15550001")  # a shared phone is enough
    assert client.post("/contacts/merge", json={"from": lead, "into": user}).status_code == 200
    for response in (client.get(f"/contacts/{lead}"), client.put(f"/contacts/{lead}", json={"name": "x"})):
        assert response.status_code == 410
        assert response.json()["errors"][0]["code"] == "contact_merged"
        assert response.headers["link"] == f'</contacts/{user}>; rel="canonical"'


def test_merging_non_duplicates_is_400_invalid_merge_unless_validation_is_skipped(fake_intercom_client):
    client = fake_intercom_client
    lead = make(client, role="lead", email="lead@example.com")
    user = make(client, external_id="u1", email="user@example.com")
    refused = client.post("/contacts/merge", json={"from": lead, "into": user})
    assert refused.status_code == 400
    error = refused.json()["errors"][0]
    assert error["code"] == "invalid_merge"
    assert error["message"].startswith(
        "Contacts can only be merged when they are duplicates (matching email or phone). Pass skip_duplicate_validation=true"
    )
    forced = client.post("/contacts/merge", json={"from": lead, "into": user, "skip_duplicate_validation": True})
    assert forced.status_code == 200


def test_from_must_be_a_lead_and_into_a_user(fake_intercom_client):
    client = fake_intercom_client
    user = make(client, external_id="u1", email="a@example.com")
    other = make(client, external_id="u2", email="a@example.com")
    lead = make(client, role="lead", email="a@example.com")
    assert client.post("/contacts/merge", json={"from": user, "into": other}).status_code == 400
    assert client.post("/contacts/merge", json={"from": lead, "into": lead}).status_code == 400
    assert client.post("/contacts/merge", json={"from": lead}).status_code == 400
    assert client.post("/contacts/merge", json={"from": lead, "into": "0" * 24}).status_code == 404


def test_merged_lead_drops_out_of_search_at_once(fake_intercom_factory):
    fake = fake_intercom_factory(search_lag=0.2)
    with api_client(fake) as client:
        lead = make(client, role="lead", email="ann@example.com")
        user = make(client, external_id="u1", email="ann@example.com")
        time.sleep(0.25)
        query = {"query": {"field": "email", "operator": "=", "value": "ann@example.com"}}
        assert len(client.post("/contacts/search", json=query).json()["data"]) == 2
        client.post("/contacts/merge", json={"from": lead, "into": user})
        found = [c["id"] for c in client.post("/contacts/search", json=query).json()["data"]]
    assert found == [user]


def test_merge_history_is_returned_on_request(fake_intercom_client):
    client = fake_intercom_client
    lead = make(client, role="lead", email="a@example.com")
    user = make(client, external_id="u1", email="a@example.com")
    merged = client.post("/contacts/merge?include_merge_history=true", json={"from": lead, "into": user}).json()
    assert merged["merge_history"][0]["source_contact_id"] == lead
    assert "merge_history" not in client.get(f"/contacts/{user}").json()
