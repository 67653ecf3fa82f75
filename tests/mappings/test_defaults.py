from worker.actions import ACTIONS
from worker.mappings import ACTION_FIELDS, DEFAULT_MAPPINGS, Mapping, load_mappings, select

from . import make_event

BY_NAME = {mapping.name: mapping for mapping in DEFAULT_MAPPINGS}


def apply(name, event):
    return BY_NAME[name].apply(event)


def test_each_action_has_its_default_and_alias_is_an_identify():
    """The built-in mappings are the actions' own, in the table's order: each action's default, then its others."""
    assert [(m.name, m.action) for m in DEFAULT_MAPPINGS] == [
        (spec["name"], action.name) for action in ACTIONS.values() for spec in action.default_mappings
    ]
    assert [m.name for m in DEFAULT_MAPPINGS if m.action == "identify_contact"] == ["Identify Contact", "Alias"]
    assert {m.action for m in DEFAULT_MAPPINGS} == set(ACTION_FIELDS) == set(ACTIONS)
    assert load_mappings(None) == DEFAULT_MAPPINGS
    assert load_mappings(None) is not DEFAULT_MAPPINGS


def test_each_default_triggers_on_its_event_type():
    for type_, name in [("identify", "Identify Contact"), ("track", "Track Event"), ("group", "Identify Company")]:
        assert [m.name for m in select(DEFAULT_MAPPINGS, make_event(type_, userId="u1"))] == [name]


def test_page_and_screen_are_filtered():
    for type_ in ("page", "screen"):
        assert select(DEFAULT_MAPPINGS, make_event(type_, userId="u1")) == []


def test_alias_makes_the_user_an_identify_would():
    event = make_event("alias", userId="u1", previousId="anon-1")
    assert [m.name for m in select(DEFAULT_MAPPINGS, event)] == ["Alias"]
    assert apply("Alias", event) == {"role": "user", "external_id": "u1"}


def test_identify_of_a_user():
    event = make_event(
        "identify",
        userId="u1",
        anonymousId="a1",
        traits={
            "email": "ann@example.com",
            "phone": "+33 1",
            "name": "Ann",
            "avatar": "https://x/a.png",
            "createdAt": "2024-01-01T00:00:00Z",
            "plan": "pro",
        },
    )
    assert apply("Identify Contact", event) == {
        "role": "user",
        "external_id": "u1",
        "email": "ann@example.com",
        "phone": "+33 1",
        "name": "Ann",
        "avatar": "https://x/a.png",
        "signed_up_at": "2024-01-01T00:00:00Z",
        "last_seen_at": "2024-03-01T12:00:00Z",
    }


def test_identify_without_user_id_is_a_lead_without_external_id():
    fields = apply("Identify Contact", make_event("identify", anonymousId="a1", traits={"email": "x@y.z"}))
    assert fields["role"] == "lead"
    assert "external_id" not in fields


def test_a_null_user_id_is_a_lead_too():
    fields = apply("Identify Contact", make_event("identify", userId=None, anonymousId="a1"))
    assert fields["role"] == "lead"
    assert "external_id" not in fields


def test_traits_only_in_context_traits_are_used():
    event = make_event("identify", userId="u1", context={"traits": {"email": "c@x", "name": "Ctx"}})
    fields = apply("Identify Contact", event)
    assert fields["email"] == "c@x"
    assert fields["name"] == "Ctx"


def test_traits_win_over_context_traits_key_by_key():
    event = make_event("identify", userId="u1", traits={"email": "t@x"}, context={"traits": {"email": "c@x", "phone": "123"}})
    fields = apply("Identify Contact", event)
    assert (fields["email"], fields["phone"]) == ("t@x", "123")


def test_missing_traits_are_left_out_not_null():
    fields = apply("Identify Contact", make_event("identify", userId="u1"))
    assert fields == {"role": "user", "external_id": "u1", "last_seen_at": "2024-03-01T12:00:00Z"}


def test_track_event_fields():
    event = make_event(
        "track", userId="u1", event="Order Completed", properties={"email": "a@x", "revenue": 19.99, "currency": "EUR", "sku": "A"}
    )
    assert apply("Track Event", event) == {
        "event_name": "Order Completed",
        "created_at": "2024-03-01T12:00:00Z",
        "user_id": "u1",
        "email": "a@x",
        "revenue": 19.99,
        "currency": "EUR",
        "metadata": {"email": "a@x", "revenue": 19.99, "currency": "EUR", "sku": "A"},
    }


def test_track_metadata_is_a_copy_the_action_may_change():
    event = make_event("track", userId="u1", event="E", properties={"email": "a@x"})
    apply("Track Event", event)["metadata"].pop("email")
    assert event["properties"] == {"email": "a@x"}


def test_identify_company_fields():
    event = make_event(
        "group",
        userId="u1",
        groupId="g1",
        traits={
            "name": "Acme",
            "monthly_spend": 99.5,
            "plan": "pro",
            "employees": 40,
            "website": "https://acme.io",
            "industry": "Tools",
            "createdAt": "2020-01-01",
            "email": "boss@acme.io",
        },
    )
    assert apply("Identify Company", event) == {
        "company_id": "g1",
        "name": "Acme",
        "monthly_spend": 99.5,
        "plan": "pro",
        "size": 40,
        "website": "https://acme.io",
        "industry": "Tools",
        "remote_created_at": "2020-01-01",
        "external_id": "u1",
        "email": "boss@acme.io",
    }


def test_default_fields_belong_to_their_action():
    for mapping in DEFAULT_MAPPINGS:
        event = make_event("x", userId="u", groupId="g", event="e", traits={"email": "e", "name": "n"}, properties={"email": "e"})
        assert set(mapping.apply(event)) <= ACTION_FIELDS[mapping.action]


def test_one_event_can_trigger_several_mappings():
    order = Mapping.from_spec(
        name="Order Completed",
        action="track_event",
        trigger='type = "track" and event = "Order Completed"',
        fields={"event_name": "order-completed", "created_at": "$.timestamp", "user_id": "$.userId"},
    )
    mappings = [*DEFAULT_MAPPINGS, order]
    chosen = select(mappings, make_event("track", userId="u1", event="Order Completed"))
    assert [m.name for m in chosen] == ["Track Event", "Order Completed"]
    assert chosen[1].apply(make_event("track", userId="u1"))["event_name"] == "order-completed"
    assert [m.name for m in select(mappings, make_event("track", userId="u1", event="Viewed"))] == ["Track Event"]


def test_an_event_no_trigger_matches_is_filtered():
    only_orders = [
        Mapping.from_spec(
            name="Orders",
            action="track_event",
            trigger='event = "Order Completed"',
            fields={"event_name": "$.event", "created_at": "$.timestamp"},
        )
    ]
    assert select(only_orders, make_event("track", event="Viewed")) == []
    assert select(only_orders, make_event("identify")) == []
