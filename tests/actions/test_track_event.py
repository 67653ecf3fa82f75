"""Track Event: the body (price, metadata rules) and how the contact is named."""

from __future__ import annotations

import logging

import pytest

from tests.actions.stubs import contact, error, found
from worker.actions import track_event
from worker.actions.common import load_fields
from worker.intercom.errors import ContactNotFound, InvalidPayload, RateLimited
from worker.store.contacts import CachedContact

perform = track_event.ACTION.run


def body_of(raw: dict) -> dict:
    return track_event.build_body(load_fields(track_event.Fields, raw))


# -- body ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("revenue", "cents"), [(19.99, 1999), (0.1 + 0.2, 30), (1.005, 101), ("12.5", 1250), (100, 10000), (-4.99, -499), (0.125, 13)]
)
def test_revenue_becomes_integer_cents(revenue, cents) -> None:
    body = body_of({"event_name": "Order Completed", "created_at": 1, "user_id": "u1", "revenue": revenue, "currency": "EUR"})
    assert body["metadata"]["price"] == {"amount": cents, "currency": "EUR"}
    assert isinstance(body["metadata"]["price"]["amount"], int)


def test_currency_defaults_to_usd_with_revenue_only() -> None:
    body = body_of({"event_name": "x", "created_at": 1, "user_id": "u1", "revenue": 5})
    assert body["metadata"] == {"price": {"amount": 500, "currency": "USD"}}
    assert "metadata" not in body_of({"event_name": "x", "created_at": 1, "user_id": "u1", "currency": "EUR"})


def test_email_revenue_and_currency_are_taken_out_of_metadata() -> None:
    body = body_of(
        {
            "event_name": "Order Completed",
            "created_at": "2024-01-02T03:04:05.678+02:00",
            "user_id": "u1",
            "revenue": 19.99,
            "metadata": {"email": "a@x.io", "revenue": 19.99, "currency": "USD", "order_id": "o1"},
        }
    )
    assert body == {
        "event_name": "Order Completed",
        "created_at": 1704157445,
        "user_id": "u1",
        "metadata": {"price": {"amount": 1999, "currency": "USD"}, "order_id": "o1"},
    }


def test_dots_and_dollars_in_names_are_sent_unchanged() -> None:
    body = body_of({"event_name": "cart.updated $total", "created_at": 1, "user_id": "u1", "metadata": {"a.b": 1, "$c": "d"}})
    assert body["event_name"] == "cart.updated $total"
    assert body["metadata"] == {"a.b": 1, "$c": "d"}


def test_nested_metadata_is_flattened_one_level_and_the_rest_reported() -> None:
    metadata = {
        "plan": {"name": "pro", "seats": 3, "features": ["a", "b"], "limits": {"api": 10}, "note": None},
        "tags": ["x"],
        "gone": None,
        "article": {"url": "https://example.com/a", "value": "An article"},
        "refund": {"amount": 500, "currency": "eur"},
        "nan": float("nan"),
        "paid": True,
        "empty": {},
    }
    kept, dropped = track_event.flatten_metadata(metadata)
    assert kept == {
        "plan_name": "pro",
        "plan_seats": 3,
        "article": metadata["article"],
        "refund": {"amount": 500, "currency": "eur"},
        "paid": True,
    }
    assert dropped == ["plan.features", "plan.limits", "plan.note", "tags", "gone", "nan", "empty"]


def test_at_most_ten_keys_price_first_then_event_order() -> None:
    metadata = {f"k{i:02d}": i for i in range(12)}
    kept, dropped = track_event.flatten_metadata(metadata, {"amount": 1, "currency": "USD"})
    assert list(kept) == ["price"] + [f"k{i:02d}" for i in range(9)]
    assert dropped == ["k09", "k10", "k11"]


def test_a_flattened_key_never_overwrites_an_earlier_one() -> None:
    kept, dropped = track_event.flatten_metadata({"plan_name": "a", "plan": {"name": "b"}})
    assert kept == {"plan_name": "a"}
    assert dropped == ["plan_name"]


def test_dropped_keys_are_logged_by_name(stub, make_ctx, caplog) -> None:
    stub.expect("POST", "/events", status=202)
    caplog.set_level(logging.WARNING)
    result = perform(
        make_ctx(user_id="u1"),
        {"event_name": "x", "created_at": 1, "user_id": "u1", "metadata": {f"k{i}": i for i in range(11)} | {"list": [1]}},
    )
    assert result["dropped_metadata"] == ["k10", "list"]
    assert "k10, list" in caplog.text


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"created_at": 1, "user_id": "u1"}, "event_name"),
        ({"event_name": "x", "user_id": "u1"}, "created_at"),
        ({"event_name": "x", "created_at": "yesterday", "user_id": "u1"}, "created_at"),
        ({"event_name": "x", "created_at": 1, "user_id": "u1", "revenue": "lots"}, "revenue"),
        ({"event_name": "x", "created_at": 1, "user_id": "u1", "metadata": ["a"]}, "metadata"),
        ({"event_name": "x", "created_at": 1}, "user_id"),
    ],
)
def test_invalid_fields_are_named(raw: dict, field: str, make_ctx) -> None:
    # With STRICT_FIELDS=true; without it an optional field that can't be converted is dropped
    # (tests/actions/test_dropped_fields.py).
    with pytest.raises(InvalidPayload) as info:
        perform(make_ctx(strict_fields=True), raw)
    assert info.value.field == field


# -- identity -------------------------------------------------------------------


def test_by_user_id_costs_one_call(stub, make_ctx) -> None:
    stub.expect(
        "POST",
        "/events",
        status=202,
        body={"event_name": "Signed Up", "created_at": 1700000000, "user_id": "u1", "metadata": {"plan": "pro"}},
    )
    result = perform(
        make_ctx(user_id="u1"),
        {"event_name": "Signed Up", "created_at": "2023-11-14T22:13:20Z", "user_id": "u1", "email": "a@x.io", "metadata": {"plan": "pro"}},
    )
    assert result == {"contact_id": None, "user_id": "u1", "dropped_metadata": [], "calls": 1}


def test_by_email_of_a_lead_searches_then_sends_by_intercom_id(stub, make_ctx, contacts) -> None:
    stub.expect(
        "POST",
        "/contacts/search",
        answer=found(contact("lead1", "lead")),
        body={"query": {"field": "email", "operator": "=", "value": "ann@example.com"}, "pagination": {"per_page": 50}},
    )
    stub.expect("POST", "/events", status=202, body={"event_name": "Viewed", "created_at": 5, "id": "lead1"})
    result = perform(make_ctx(anonymous_id="anon1"), {"event_name": "Viewed", "created_at": 5, "email": "ann@example.com"})
    assert (result["contact_id"], result["calls"]) == ("lead1", 2)
    assert contacts.get(email="ann@example.com") == CachedContact("lead1", "lead")


def test_by_email_prefers_the_user_over_a_lead(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts/search", answer=found(contact("lead1", "lead"), contact("user1", "user")))
    stub.expect("POST", "/events", status=202, body={"event_name": "Viewed", "created_at": 5, "id": "user1"})
    perform(make_ctx(), {"event_name": "Viewed", "created_at": 5, "email": "ann@example.com"})


def test_by_email_cached_costs_one_call(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", email="ann@example.com")
    stub.expect("POST", "/events", status=202, body={"event_name": "Viewed", "created_at": 5, "id": "c1"})
    assert perform(make_ctx(), {"event_name": "Viewed", "created_at": 5, "email": "ann@example.com"})["calls"] == 1


def test_by_email_nobody_has_is_contact_not_found(stub, make_ctx) -> None:
    stub.expect("POST", "/contacts/search", answer=found())
    with pytest.raises(ContactNotFound):
        perform(make_ctx(), {"event_name": "Viewed", "created_at": 5, "email": "nobody@example.com"})


def test_by_intercom_id_costs_one_call(stub, make_ctx) -> None:
    stub.expect("POST", "/events", status=202, body={"event_name": "Viewed", "created_at": 5, "id": "c7"})
    perform(make_ctx(), {"event_name": "Viewed", "created_at": 5, "id": "c7", "email": "a@x.io"})


def test_by_anonymous_id_through_the_cache(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/events", status=202, body={"event_name": "Viewed", "created_at": 5, "id": "lead1"})
    result = perform(make_ctx(anonymous_id="anon1"), {"event_name": "Viewed", "created_at": 5})
    assert (result["contact_id"], result["calls"]) == ("lead1", 1)


def test_by_anonymous_id_not_cached_is_contact_not_found_without_a_call(stub, make_ctx) -> None:
    with pytest.raises(ContactNotFound):
        perform(make_ctx(anonymous_id="anon1"), {"event_name": "Viewed", "created_at": 5})


def test_a_404_is_contact_not_found_and_forgets_the_cached_id(stub, make_ctx, contacts) -> None:
    contacts.remember("lead1", "lead", anonymous_id="anon1")
    stub.expect("POST", "/events", status=404, answer=error("not_found", "User Not Found"))
    stub.expect("GET", "/contacts/lead1", status=404, answer=error("not_found", "User Not Found"))  # deleted, not merged
    with pytest.raises(ContactNotFound) as info:
        perform(make_ctx(anonymous_id="anon1"), {"event_name": "Viewed", "created_at": 5})
    assert info.value.status == 404 and info.value.code == "not_found"
    assert contacts.get(anonymous_id="anon1") is None


def test_a_404_by_user_id_forgets_the_cached_user(stub, make_ctx, contacts) -> None:
    contacts.remember("c1", "user", external_id="u1")
    stub.expect("POST", "/events", status=404, answer=error("not_found", "User Not Found"))
    with pytest.raises(ContactNotFound):
        perform(make_ctx(user_id="u1"), {"event_name": "Viewed", "created_at": 5, "user_id": "u1"})
    assert contacts.get(external_id="u1") is None


def test_a_429_is_rate_limited_not_contact_not_found(stub, make_ctx) -> None:
    stub.expect("POST", "/events", status=429, answer=error("rate_limit_exceeded"))
    with pytest.raises(RateLimited):
        perform(make_ctx(user_id="u1"), {"event_name": "Viewed", "created_at": 5, "user_id": "u1"})
