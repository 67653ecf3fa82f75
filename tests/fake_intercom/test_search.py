"""POST /contacts/search (docs/intercom-api.md, Search; the search lag)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures_fake import api_client

LAG = 0.3


def by(field, value, operator="="):
    return {"query": {"field": field, "operator": operator, "value": value}}


def ids(response):
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


@pytest.fixture
def lagging(fake_intercom_factory):
    fake = fake_intercom_factory(search_lag=LAG)
    with api_client(fake) as client:
        yield fake, client


def test_a_new_contact_is_invisible_to_search_until_the_lag_has_passed(lagging):
    fake, client = lagging
    contact = client.post("/contacts", json={"external_id": "u1"}).json()
    assert ids(client.post("/contacts/search", json=by("external_id", "u1"))) == []
    # …which is why create → 409 → search can miss (docs/intercom-api.md, Search): the 409 still comes at once.
    assert client.post("/contacts", json={"external_id": "u1"}).status_code == 409
    time.sleep(LAG + 0.05)
    assert ids(client.post("/contacts/search", json=by("external_id", "u1"))) == [contact["id"]]


def test_a_recent_change_is_not_yet_searchable_but_the_old_state_is(lagging):
    fake, client = lagging
    contact = client.post("/contacts", json={"external_id": "u1", "email": "old@example.com"}).json()
    time.sleep(LAG + 0.05)
    client.put(f"/contacts/{contact['id']}", json={"email": "new@example.com"})
    assert ids(client.post("/contacts/search", json=by("email", "new@example.com"))) == []
    stale = client.post("/contacts/search", json=by("email", "old@example.com")).json()["data"]
    assert [c["email"] for c in stale] == ["old@example.com"]
    time.sleep(LAG + 0.05)
    assert ids(client.post("/contacts/search", json=by("email", "new@example.com"))) == [contact["id"]]
    assert ids(client.post("/contacts/search", json=by("email", "old@example.com"))) == []


def test_contact_list_shape_and_default_page(fake_intercom_client):
    fake_intercom_client.post("/contacts", json={"external_id": "u1"})
    body = fake_intercom_client.post("/contacts/search", json=by("external_id", "u1")).json()
    assert body["type"] == "list" and body["total_count"] == 1
    assert body["pages"] == {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1}
    assert body["data"][0]["type"] == "contact"


def test_operators_on_string_fields(fake_intercom_client):
    made = {
        name: fake_intercom_client.post("/contacts", json={"external_id": name, "email": f"{name}@{domain}"}).json()["id"]
        for name, domain in (("ann", "acme.com"), ("bob", "acme.com"), ("cid", "other.org"))
    }
    search = lambda body: set(ids(fake_intercom_client.post("/contacts/search", json=body)))  # noqa: E731
    assert search(by("email_domain", "acme.com")) == {made["ann"], made["bob"]}
    assert search(by("email_domain", "acme.com", "!=")) == {made["cid"]}
    assert search(by("external_id", ["ann", "cid"], "IN")) == {made["ann"], made["cid"]}
    assert search(by("external_id", ["ann", "cid"], "NIN")) == {made["bob"]}
    assert search(by("email", "ob@", "~")) == {made["bob"]}
    assert search(by("email", "ob@", "!~")) == {made["ann"], made["cid"]}
    assert search(by("email", "ANN", "^")) == {made["ann"]}  # emails are case-insensitive
    assert search(by("email", ".org", "$")) == {made["cid"]}
    assert search(by("role", "user")) == set(made.values())
    assert search(by("id", made["bob"])) == {made["bob"]}
    assert search(by("email", ["ANN@acme.com", "cid@other.org"], "IN")) == {made["ann"], made["cid"]}


def test_and_or_groups_up_to_two_levels(fake_intercom_client):
    a = fake_intercom_client.post("/contacts", json={"external_id": "a", "name": "x"}).json()["id"]
    fake_intercom_client.post("/contacts", json={"external_id": "b", "name": "y"})
    c = fake_intercom_client.post("/contacts", json={"external_id": "c", "name": "y"}).json()["id"]
    query = {
        "operator": "OR",
        "value": [
            {
                "operator": "AND",
                "value": [{"field": "external_id", "operator": "=", "value": "a"}, {"field": "name", "operator": "=", "value": "x"}],
            },
            {
                "operator": "AND",
                "value": [{"field": "external_id", "operator": "=", "value": "c"}, {"field": "name", "operator": "=", "value": "y"}],
            },
        ],
    }
    assert set(ids(fake_intercom_client.post("/contacts/search", json={"query": query}))) == {a, c}


def test_three_levels_of_nesting_and_sixteen_filters_are_refused(fake_intercom_client):
    leaf = {"field": "role", "operator": "=", "value": "user"}
    deep = {"operator": "AND", "value": [{"operator": "OR", "value": [{"operator": "AND", "value": [leaf]}]}]}
    assert fake_intercom_client.post("/contacts/search", json={"query": deep}).status_code == 400
    wide = {"operator": "OR", "value": [leaf] * 16}
    assert fake_intercom_client.post("/contacts/search", json={"query": wide}).status_code == 400
    assert fake_intercom_client.post("/contacts/search", json={"query": {"operator": "OR", "value": [leaf] * 15}}).status_code == 200


def test_date_fields_match_by_calendar_day_and_refuse_other_operators(fake_intercom_client):
    contact = fake_intercom_client.post("/contacts", json={"external_id": "u1"}).json()
    day_start = contact["created_at"] - contact["created_at"] % 86400
    search = lambda op, value: ids(fake_intercom_client.post("/contacts/search", json=by("created_at", value, op)))  # noqa: E731
    assert search("=", day_start + 5) == [contact["id"]]
    assert search("=", str(day_start)) == [contact["id"]]  # the spec's example sends a string
    assert search(">", contact["created_at"]) == []  # ">" starts the next day
    assert search("<", day_start + 86400) == [contact["id"]]
    for op in ("!=", ">=", "<=", "IN"):
        value = [day_start] if op == "IN" else day_start
        assert fake_intercom_client.post("/contacts/search", json=by("created_at", value, op)).status_code == 400


def test_custom_attribute_fields_compare_numbers(fake_intercom_factory):
    fake = fake_intercom_factory(contact_attributes=("seats",))
    with api_client(fake) as client:
        small = client.post("/contacts", json={"external_id": "s", "custom_attributes": {"seats": 3}}).json()["id"]
        big = client.post("/contacts", json={"external_id": "b", "custom_attributes": {"seats": 30}}).json()["id"]
        assert ids(client.post("/contacts/search", json=by("custom_attributes.seats", 10, ">"))) == [big]
        assert ids(client.post("/contacts/search", json=by("custom_attributes.seats", 3))) == [small]


def test_pagination_with_starting_after_and_sort(fake_intercom_client):
    made = [fake_intercom_client.post("/contacts", json={"external_id": f"u{i}", "name": f"n{i}"}).json()["id"] for i in range(5)]
    body = {"query": by("role", "user")["query"], "pagination": {"per_page": 2}, "sort": {"field": "name", "order": "ascending"}}
    seen, pages = [], []
    while True:
        page = fake_intercom_client.post("/contacts/search", json=body).json()
        seen += [c["id"] for c in page["data"]]
        pages.append(page["pages"]["page"])
        nxt = page["pages"].get("next")
        if not nxt:
            break
        body["pagination"] = {"per_page": 2, "starting_after": nxt["starting_after"]}
    assert seen == made and pages == [1, 2, 3]
    assert page["pages"]["total_pages"] == 3 and page["total_count"] == 5
    body = {"query": by("role", "user")["query"], "sort": {"field": "name"}}  # default: descending
    assert ids(fake_intercom_client.post("/contacts/search", json=body)) == made[::-1]


def test_bad_sort_order_is_400_invalid_sort_order(fake_intercom_client):
    response = fake_intercom_client.post(
        "/contacts/search", json={"query": by("role", "user")["query"], "sort": {"field": "name", "order": "desc"}}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"code": "invalid_sort_order", "message": "Invalid sort order 'desc'. Must be one of: ascending, descending"}
    ]


def test_per_page_above_150_and_missing_query_are_refused(fake_intercom_client):
    too_big = {"query": by("role", "user")["query"], "pagination": {"per_page": 151}}
    assert fake_intercom_client.post("/contacts/search", json=too_big).status_code == 400
    assert fake_intercom_client.post("/contacts/search", json={}).status_code == 400
    assert fake_intercom_client.post("/contacts/search", json=by("favourite_colour", "blue")).status_code == 400
