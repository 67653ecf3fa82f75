import json
from typing import Any

import pytest

from worker.mappings import DEFAULT_MAPPINGS, MappingError, load_mappings, select

from . import make_event

#: A mapping as read from a YAML or JSON file.
ORDER_COMPLETED: dict[str, Any] = {
    "name": "Order Completed",
    "action": "track_event",
    "trigger": 'type = "track" and event = "Order Completed"',
    "fields": {
        "event_name": "$.event",
        "created_at": "$.timestamp",
        "user_id": "$.userId",
        "metadata": {"order": "Order {{properties.id}}", "sku": "$.properties.items[0].sku"},
    },
}

YAML_FILE = """
# Only completed orders, and contacts with a plan.
mappings:
  - name: Order Completed
    action: track_event
    trigger: type = "track" and event = "Order Completed"
    fields:
      event_name: $.event
      created_at: $.timestamp
      user_id: $.userId
      metadata:
        order: "Order {{properties.id}}"
        sku: $.properties.items[0].sku
  - name: Contacts
    action: identify_contact
    trigger: 'type = "identify"'
    fields:
      role: {"@if": {exists: $.userId, then: user, else: lead}}
      external_id: $.userId
      email: {"@first": [$.traits.email, $.context.traits.email]}
      owner_id: null
      custom_attributes:
        plan: $.traits.plan
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load_json(tmp_path, document):
    return load_mappings(write(tmp_path, "mappings.json", json.dumps(document)))


def load_error(tmp_path, document) -> MappingError:
    with pytest.raises(MappingError) as caught:
        load_json(tmp_path, document)
    return caught.value


def test_a_yaml_file_replaces_the_defaults(tmp_path):
    mappings = load_mappings(write(tmp_path, "mappings.yaml", YAML_FILE))
    assert [(m.name, m.action) for m in mappings] == [("Order Completed", "track_event"), ("Contacts", "identify_contact")]
    order = make_event("track", userId="u1", event="Order Completed", properties={"id": 7, "items": [{"sku": "A-1"}]})
    assert select(mappings, make_event("track", userId="u1", event="Viewed")) == []
    assert select(mappings, order)[0].apply(order) == {
        "event_name": "Order Completed",
        "created_at": "2024-03-01T12:00:00Z",
        "user_id": "u1",
        "metadata": {"order": "Order 7", "sku": "A-1"},
    }
    identify = make_event("identify", anonymousId="a1", context={"traits": {"email": "c@x"}}, traits={"plan": "pro"})
    assert select(mappings, identify)[0].apply(identify) == {"role": "lead", "email": "c@x", "custom_attributes": {"plan": "pro"}}


def test_a_json_file(tmp_path):
    mappings = load_json(tmp_path, {"mappings": [ORDER_COMPLETED]})
    assert [m.name for m in mappings] == ["Order Completed"]


def test_include_defaults_adds_to_the_built_in_mappings(tmp_path):
    mappings = load_json(tmp_path, {"include_defaults": True, "mappings": [ORDER_COMPLETED]})
    assert [m.name for m in mappings] == [*(m.name for m in DEFAULT_MAPPINGS), "Order Completed"]
    event = make_event("track", userId="u1", event="Order Completed")
    assert [m.name for m in select(mappings, event)] == ["Track Event", "Order Completed"]


def test_a_mapping_named_like_a_default_replaces_it_in_place(tmp_path):
    mine = dict(ORDER_COMPLETED, name="Track Event")
    mappings = load_json(tmp_path, {"include_defaults": True, "mappings": [mine]})
    assert [m.name for m in mappings] == [m.name for m in DEFAULT_MAPPINGS]
    assert select(mappings, make_event("track", userId="u1", event="Viewed")) == []


def test_extends_keeps_the_default_and_changes_some_fields(tmp_path):
    mappings = load_json(
        tmp_path,
        {
            "include_defaults": True,
            "mappings": [
                {
                    "name": "Identify Contact",
                    "extends": "Identify Contact",
                    "fields": {"custom_attributes": {"plan": "$.traits.plan"}, "avatar": None},
                }
            ],
        },
    )
    event = make_event("identify", userId="u1", traits={"plan": "pro", "avatar": "https://x", "email": "e@x"})
    fields = select(mappings, event)[0].apply(event)
    assert fields["custom_attributes"] == {"plan": "pro"}
    assert fields["email"] == "e@x"
    assert "avatar" not in fields
    assert len(mappings) == len(DEFAULT_MAPPINGS)


def test_extends_may_change_the_trigger(tmp_path):
    mappings = load_json(
        tmp_path, {"mappings": [{"name": "Known users", "extends": "Identify Contact", "trigger": 'type = "identify" and userId exists'}]}
    )
    assert select(mappings, make_event("identify", anonymousId="a1")) == []
    assert len(select(mappings, make_event("identify", userId="u1"))) == 1


def test_load_none_gives_the_defaults():
    assert load_mappings(None) == DEFAULT_MAPPINGS


# -- every validation error names the mapping and the field


def test_unknown_action(tmp_path):
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, action="send_email")]})
    assert (error.mapping, error.field) == ("Order Completed", "action")
    assert "unknown action 'send_email'" in str(error)
    assert "mapping 'Order Completed', field 'action'" in str(error)


def test_unknown_field_for_the_action(tmp_path):
    fields = dict(ORDER_COMPLETED["fields"], role="user")
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, fields=fields)]})
    assert (error.mapping, error.field) == ("Order Completed", "role")
    assert "track_event has no field 'role'" in str(error)


def test_bad_trigger_syntax_with_position(tmp_path):
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, trigger='type = "track" and')]})
    assert (error.mapping, error.field) == ("Order Completed", "trigger")
    assert "at position 18" in str(error)


def test_bad_path(tmp_path):
    fields = dict(ORDER_COMPLETED["fields"], user_id="$.user Id")
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, fields=fields)]})
    assert (error.mapping, error.field) == ("Order Completed", "user_id")
    assert "bad path '$.user Id'" in str(error)


def test_bad_path_inside_an_object_field(tmp_path):
    fields = dict(ORDER_COMPLETED["fields"], metadata={"sku": "$.properties.items[x]"})
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, fields=fields)]})
    assert (error.mapping, error.field) == ("Order Completed", "metadata.sku")


def test_bad_template(tmp_path):
    fields = dict(ORDER_COMPLETED["fields"], event_name="Order {{properties.id")
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, fields=fields)]})
    assert (error.mapping, error.field) == ("Order Completed", "event_name")


def test_required_field_left_unmapped(tmp_path):
    fields = dict(ORDER_COMPLETED["fields"], created_at=None)
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, fields=fields)]})
    assert (error.mapping, error.field) == ("Order Completed", "created_at")
    assert "requires" in str(error)


def test_unknown_key_in_a_mapping(tmp_path):
    error = load_error(tmp_path, {"mappings": [dict(ORDER_COMPLETED, feilds={})]})
    assert (error.mapping, error.field) == ("Order Completed", "feilds")


@pytest.mark.parametrize("key", ["action", "trigger", "fields"])
def test_missing_key_in_a_mapping(tmp_path, key):
    entry = {k: v for k, v in ORDER_COMPLETED.items() if k != key}
    error = load_error(tmp_path, {"mappings": [entry]})
    assert (error.mapping, error.field) == ("Order Completed", key)


def test_a_mapping_without_a_name_is_named_by_position(tmp_path):
    entry = {k: v for k, v in ORDER_COMPLETED.items() if k != "name"}
    error = load_error(tmp_path, {"mappings": [ORDER_COMPLETED, entry]})
    assert (error.mapping, error.field) == ("#2", "name")


def test_duplicate_names(tmp_path):
    error = load_error(tmp_path, {"mappings": [ORDER_COMPLETED, ORDER_COMPLETED]})
    assert (error.mapping, error.field) == ("Order Completed", "name")


def test_extends_an_unknown_mapping(tmp_path):
    error = load_error(tmp_path, {"mappings": [{"name": "Mine", "extends": "Identify User"}]})
    assert (error.mapping, error.field) == ("Mine", "extends")
    assert "'Identify Contact'" in str(error)


def test_extends_can_not_change_the_action(tmp_path):
    error = load_error(tmp_path, {"mappings": [{"name": "Mine", "extends": "Identify Contact", "action": "track_event"}]})
    assert (error.mapping, error.field) == ("Mine", "action")


def test_extends_with_an_unknown_field(tmp_path):
    error = load_error(tmp_path, {"mappings": [{"name": "Mine", "extends": "Identify Contact", "fields": {"event_name": "$.event"}}]})
    assert (error.mapping, error.field) == ("Mine", "event_name")


@pytest.mark.parametrize(
    "document, words",
    [
        ([ORDER_COMPLETED], "an object with a 'mappings' list"),
        ({"mapping": [ORDER_COMPLETED]}, "unknown top-level key 'mapping'"),
        ({"mappings": ORDER_COMPLETED}, "'mappings' must be a list"),
        ({"include_defaults": "yes", "mappings": []}, "include_defaults must be true or false"),
        ({"mappings": []}, "defines no mappings"),
        ({"mappings": ["Order Completed"]}, "a mapping is an object"),
    ],
)
def test_malformed_files(tmp_path, document, words):
    error = load_error(tmp_path, document)
    assert words in str(error)
    assert str(tmp_path / "mappings.json") in str(error)


def test_invalid_yaml_says_where(tmp_path):
    with pytest.raises(MappingError) as caught:
        load_mappings(write(tmp_path, "bad.yml", "mappings:\n  - name: [unclosed\n"))
    assert "not valid YAML" in str(caught.value)
    assert "line" in str(caught.value)


def test_invalid_json_says_where(tmp_path):
    with pytest.raises(MappingError) as caught:
        load_mappings(write(tmp_path, "bad.json", '{"mappings": [}'))
    assert "not valid JSON" in str(caught.value)
    assert "line 1 column 15" in str(caught.value)


def test_a_missing_file(tmp_path):
    with pytest.raises(MappingError) as caught:
        load_mappings(str(tmp_path / "nope.yaml"))
    assert "can't read" in str(caught.value)


def test_an_empty_yaml_file(tmp_path):
    with pytest.raises(MappingError):
        load_mappings(write(tmp_path, "empty.yaml", ""))
