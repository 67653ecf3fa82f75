"""Contacts: create, update, get, delete (docs/intercom-api.md, Contacts)."""

from __future__ import annotations

import re

import pytest


def test_create_returns_the_full_contact_object(fake_intercom_client):
    response = fake_intercom_client.post(
        "/contacts", json={"external_id": "u1", "email": "Ann@Example.com", "name": "Ann", "signed_up_at": 1700000000}
    )
    assert response.status_code == 200
    contact = response.json()
    assert contact["type"] == "contact"
    assert re.fullmatch(r"[0-9a-f]{24}", contact["id"])
    assert contact["role"] == "user"  # the default role
    assert contact["email_domain"] == "example.com"
    assert contact["signed_up_at"] == 1700000000
    assert contact["workspace_id"]
    assert contact["created_at"] == contact["updated_at"]
    for key in ("tags", "notes", "companies"):
        assert contact[key] == {
            "type": "list",
            "data": [],
            "url": f"/contacts/{contact['id']}/{key}",
            "total_count": 0,
            "has_more": False,
        }
    assert contact["location"]["type"] == "location"


def test_a_second_user_with_the_same_external_id_is_409_naming_the_existing_id(fake_intercom_client):
    first = fake_intercom_client.post("/contacts", json={"external_id": "u1"}).json()
    response = fake_intercom_client.post("/contacts", json={"external_id": "u1", "email": "x@example.com"})
    assert response.status_code == 409
    # The "Contact already exists" example of https://github.com/intercom/Intercom-OpenAPI/pull/543;
    # clients take the id from the message.
    assert response.json()["errors"] == [
        {"code": "conflict", "message": f"A contact matching those details already exists with id={first['id']}"}
    ]


def test_user_email_conflicts_when_one_side_has_no_external_id(fake_intercom_client):
    first = fake_intercom_client.post("/contacts", json={"email": "a@example.com"}).json()
    response = fake_intercom_client.post("/contacts", json={"external_id": "u2", "email": "A@example.com"})
    assert response.status_code == 409
    assert first["id"] in response.json()["errors"][0]["message"]


def test_users_with_different_external_ids_may_share_an_email(fake_intercom_client):
    assert fake_intercom_client.post("/contacts", json={"external_id": "u1", "email": "a@example.com"}).status_code == 200
    assert fake_intercom_client.post("/contacts", json={"external_id": "u2", "email": "a@example.com"}).status_code == 200


def test_leads_never_conflict_and_may_share_an_email(fake_intercom, fake_intercom_client):
    fake_intercom_client.post("/contacts", json={"email": "a@example.com"})
    for _ in range(2):
        response = fake_intercom_client.post("/contacts", json={"role": "lead", "email": "a@example.com"})
        assert response.status_code == 200
        assert response.json()["role"] == "lead"
    assert fake_intercom.state()["counts"]["leads"] == 2


def test_lead_with_external_id_is_refused(fake_intercom_client):
    # Undocumented (docs/intercom-api.md, Undocumented behaviour); Segment says "External IDs
    # cannot be set if the role is lead".
    response = fake_intercom_client.post("/contacts", json={"role": "lead", "external_id": "u1"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"


def test_unknown_role_is_refused(fake_intercom_client):
    assert fake_intercom_client.post("/contacts", json={"role": "admin", "email": "a@b.c"}).status_code == 400


def test_unknown_custom_attribute_is_400_until_the_attribute_exists(fake_intercom, fake_intercom_client):
    body = {"external_id": "u1", "custom_attributes": {"plan": "pro"}}
    refused = fake_intercom_client.post("/contacts", json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["code"] == "parameter_invalid"
    assert refused.json()["errors"][0]["message"] == "Custom attribute 'plan' does not exist"
    fake_intercom.add_custom_attributes(contacts=["plan"])
    replayed = fake_intercom_client.post("/contacts", json=body)
    assert replayed.status_code == 200
    assert replayed.json()["custom_attributes"] == {"plan": "pro"}


def test_email_verified_without_email_is_400(fake_intercom_client):
    assert fake_intercom_client.post("/contacts", json={"external_id": "u1", "email_verified": True}).status_code == 400


@pytest.mark.parametrize(
    "body, message",
    [
        ({"email": "a@b.c", "favourite_colour": "blue"}, "bad 'favourite_colour' parameter"),
        ({"email": 42}, "bad 'email' parameter"),
        ({"external_id": "u1", "signed_up_at": "yesterday"}, "bad 'signed_up_at' parameter"),
        ({"external_id": "u1", "custom_attributes": {"deep": {"x": 1}}}, "bad 'custom_attributes.deep' parameter"),
    ],
)
def test_unknown_keys_and_wrong_types_are_400_bad_request(fake_intercom, fake_intercom_client, body, message):
    response = fake_intercom_client.post("/contacts", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "bad_request"
    assert response.json()["errors"][0]["message"] == message
    assert fake_intercom.requests()[-1]["schema_valid"] is False


def test_create_needs_one_of_email_external_id_or_role(fake_intercom_client):
    response = fake_intercom_client.post("/contacts", json={"name": "Nobody"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_not_found"


def test_invalid_json_is_400_parameter_invalid_and_logged_as_schema_invalid(fake_intercom, fake_intercom_client):
    response = fake_intercom_client.post("/contacts", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "parameter_invalid"
    entry = fake_intercom.requests()[-1]
    assert entry["schema_valid"] is False and entry["body"] == "{not json"


def test_valid_bodies_are_logged_as_schema_valid(fake_intercom, fake_intercom_client):
    fake_intercom_client.post("/contacts", json={"email": "a@b.c"})
    entry = fake_intercom.requests()[-1]
    assert entry["schema_valid"] is True
    assert entry["body"] == {"email": "a@b.c"}
    assert entry["route"] == "POST /contacts"


def test_update_changes_fields_and_may_turn_a_lead_into_a_user(fake_intercom_client):
    lead = fake_intercom_client.post("/contacts", json={"role": "lead", "email": "a@b.c"}).json()
    response = fake_intercom_client.put(f"/contacts/{lead['id']}", json={"role": "user", "external_id": "u1", "name": "Ann"})
    assert response.status_code == 200
    updated = response.json()
    assert (updated["role"], updated["external_id"], updated["name"], updated["email"]) == ("user", "u1", "Ann", "a@b.c")
    assert fake_intercom_client.get(f"/contacts/{lead['id']}").json()["name"] == "Ann"


def test_update_to_another_users_external_id_is_409(fake_intercom_client):
    first = fake_intercom_client.post("/contacts", json={"external_id": "u1"}).json()
    second = fake_intercom_client.post("/contacts", json={"external_id": "u2"}).json()
    response = fake_intercom_client.put(f"/contacts/{second['id']}", json={"external_id": "u1"})
    assert response.status_code == 409
    assert first["id"] in response.json()["errors"][0]["message"]


def test_unknown_contact_is_404_user_not_found(fake_intercom_client):
    for response in (
        fake_intercom_client.put("/contacts/0123456789abcdef01234567", json={"name": "x"}),
        fake_intercom_client.get("/contacts/0123456789abcdef01234567"),
        fake_intercom_client.delete("/contacts/0123456789abcdef01234567"),
    ):
        assert response.status_code == 404
        assert response.json()["errors"] == [{"code": "not_found", "message": "User Not Found"}]


def test_delete_answers_contact_deleted_and_frees_the_external_id(fake_intercom, fake_intercom_client):
    contact = fake_intercom_client.post("/contacts", json={"external_id": "u1"}).json()
    response = fake_intercom_client.delete(f"/contacts/{contact['id']}")
    assert response.status_code == 200
    assert response.json() == {"type": "contact", "id": contact["id"], "external_id": "u1", "deleted": True}
    assert fake_intercom_client.get(f"/contacts/{contact['id']}").status_code == 404
    assert fake_intercom_client.post("/contacts", json={"external_id": "u1"}).status_code == 200
    assert [c["deleted"] for c in fake_intercom.state()["contacts"]] == [True, False]
