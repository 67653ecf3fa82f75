"""POST /events (docs/intercom-api.md, Events: 202, 404, de-duplication, names, metadata)."""

from __future__ import annotations

import pytest


@pytest.fixture
def user(fake_intercom_client):
    return fake_intercom_client.post("/contacts", json={"external_id": "u1", "email": "ann@example.com"}).json()


def events(fake, contact_id):
    return fake.state()["events"].get(contact_id, [])


def test_event_for_a_known_user_is_202_with_an_empty_body(fake_intercom, fake_intercom_client, user):
    response = fake_intercom_client.post("/events", json={"event_name": "signed-up", "created_at": 1700000000, "user_id": "u1"})
    assert response.status_code == 202
    assert response.content == b""
    assert [e["event_name"] for e in events(fake_intercom, user["id"])] == ["signed-up"]


@pytest.mark.parametrize("who", [{"user_id": "nobody"}, {"email": "nobody@example.com"}, {"id": "0" * 24}])
def test_event_for_an_unknown_user_is_404_user_not_found(fake_intercom_client, who):
    response = fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, **who})
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error.list" and body["request_id"]
    assert body["errors"] == [{"code": "not_found", "message": "User Not Found"}]


def test_event_by_email_finds_the_user(fake_intercom, fake_intercom_client, user):
    assert fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "email": "ANN@example.com"}).status_code == 202
    assert len(events(fake_intercom, user["id"])) == 1


def test_lead_events_need_the_intercom_id(fake_intercom, fake_intercom_client):
    lead = fake_intercom_client.post("/contacts", json={"role": "lead", "email": "lead@example.com"}).json()
    by_email = fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "email": "lead@example.com"})
    assert by_email.status_code == 404  # "When submitting events for Leads, you will need to specify the Lead's id"
    by_id = fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "id": lead["id"]})
    assert by_id.status_code == 202
    assert len(events(fake_intercom, lead["id"])) == 1


def test_duplicates_on_contact_name_and_created_at_are_accepted_but_stored_once(fake_intercom, fake_intercom_client, user):
    body = {"event_name": "Order Completed", "created_at": 1700000000, "user_id": "u1"}
    statuses = [fake_intercom_client.post("/events", json=body).status_code for _ in range(3)]
    assert statuses == [202, 202, 202]
    fake_intercom_client.post("/events", json={**body, "event_name": "order completed"})  # same name, other case
    fake_intercom_client.post("/events", json={**body, "created_at": 1700000001})  # another second: new event
    assert [e["created_at"] for e in events(fake_intercom, user["id"])] == [1700000000, 1700000001]
    assert fake_intercom.state()["counts"]["duplicate_events"] == 3
    # "repeat requests will be counted against any rate limit"
    assert fake_intercom.stats()["windows"][-1]["accepted"] == 6


def test_event_names_are_case_insensitive_and_dots_and_dollars_become_dashes(fake_intercom, fake_intercom_client, user):
    fake_intercom_client.post("/events", json={"event_name": "Checkout.Step$Done", "created_at": 1, "user_id": "u1"})
    stored = events(fake_intercom, user["id"])[0]
    assert stored["event_name"] == "checkout-step-done"
    assert stored["original_name"] == "Checkout.Step$Done"


def test_only_the_first_ten_metadata_keys_in_send_order_are_kept(fake_intercom, fake_intercom_client, user):
    metadata = {f"k{i:02d}": i for i in range(12, 0, -1)}  # send order differs from sorted order
    fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "user_id": "u1", "metadata": metadata})
    stored = events(fake_intercom, user["id"])[0]
    assert list(stored["metadata"]) == list(metadata)[:10]
    assert stored["ignored_metadata_keys"] == ["k02", "k01"]


def test_metadata_accepts_numbers_booleans_money_and_rich_links_despite_the_2_16_schema(fake_intercom, fake_intercom_client, user):
    # 2.16 declares string values only; Intercom documents (and Preview fixed) the others.
    metadata = {
        "source": "desktop",
        "load": 3.67,
        "count": 2,
        "paid": True,
        "contact_date": 1392036272,
        "price": {"amount": 34999, "currency": "eur"},
        "article": {"url": "https://example.org/ab1de.html", "value": "the dude abides"},
    }
    response = fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "user_id": "u1", "metadata": metadata})
    assert response.status_code == 202
    assert events(fake_intercom, user["id"])[0]["metadata"] == metadata
    assert fake_intercom.requests()[-1]["schema_valid"] is True


@pytest.mark.parametrize("value", [{"nested": {"a": 1}}, {"a": 1}, [1, 2], {"amount": 1.5, "currency": "usd"}])
def test_other_nested_metadata_is_400(fake_intercom_client, user, value):
    response = fake_intercom_client.post("/events", json={"event_name": "x", "created_at": 1, "user_id": "u1", "metadata": {"bad": value}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"


@pytest.mark.parametrize(
    "body",
    [
        {"created_at": 1, "user_id": "u1"},  # no event_name
        {"event_name": "x", "user_id": "u1"},  # no created_at
        {"event_name": "x", "created_at": 1},  # no id, user_id or email
        {"event_name": "x", "created_at": "2024-01-01", "user_id": "u1"},  # created_at must be an integer
        {"event_name": "x", "created_at": 1, "user_id": "u1", "revenue": 10},  # unknown key
    ],
)
def test_bodies_outside_the_schema_are_400(fake_intercom, fake_intercom_client, user, body):
    assert fake_intercom_client.post("/events", json=body).status_code == 400
    assert fake_intercom.requests()[-1]["schema_valid"] is False
