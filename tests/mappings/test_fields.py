import pytest

from worker.mappings import MISSING, PathError, parse_path, parse_source
from worker.mappings.fields import SourceError

from . import make_event

EVENT = make_event(
    "track",
    userId="u1",
    event="Order Completed",
    properties={
        "id": 42,
        "plan": "pro",
        "price": 10.0,
        "paid": False,
        "coupon": None,
        "items": [{"sku": "A-1"}, {"sku": "B-2"}],
        "odd key": "yes",
        "empty": "",
    },
)


def pick(spec, event=EVENT):
    return parse_source(spec, "f").pick(event)


def test_a_path_picks_a_value():
    assert pick("$.userId") == "u1"
    assert pick("$.properties.plan") == "pro"
    assert pick("$.properties.paid") is False
    assert pick("$.properties.empty") == ""


def test_arrays_by_index():
    assert pick("$.properties.items[0].sku") == "A-1"
    assert pick("$.properties.items[1].sku") == "B-2"
    assert pick("$.properties.items[2].sku") is MISSING


def test_odd_keys_in_brackets():
    assert pick('$.properties["odd key"]') == "yes"
    assert pick("$.properties['odd key']") == "yes"


def test_a_path_that_finds_nothing_or_null_is_missing():
    assert pick("$.traits.email") is MISSING
    assert pick("$.properties.coupon") is MISSING
    assert pick("$.properties.plan.name") is MISSING  # through a string
    assert pick("$.properties.items.sku") is MISSING  # a key of a list


def test_the_root_path_is_the_whole_event():
    assert pick("$") == EVENT


def test_a_picked_object_is_a_copy():
    metadata = pick("$.properties")
    metadata.pop("plan")
    assert EVENT["properties"]["plan"] == "pro"


@pytest.mark.parametrize(
    "text, position",
    [
        ("traits.email", 0),
        ("$traits", 1),
        ("$.traits..email", 8),
        ("$.items[x]", 7),
        ("$.a b", 3),
        ("$.", 1),
    ],
)
def test_bad_paths_say_where(text, position):
    with pytest.raises(PathError) as caught:
        parse_path(text)
    assert caught.value.position == position


def test_a_bad_path_names_the_field():
    with pytest.raises(SourceError) as caught:
        parse_source("$traits.email", "email")
    assert caught.value.field == "email"
    assert "@literal" in str(caught.value)


def test_literals():
    assert pick("user") == "user"
    assert pick(7) == 7
    assert pick(True) is True
    assert pick(["a", "b"]) == ["a", "b"]
    assert pick({"@literal": "$5 off"}) == "$5 off"
    assert pick({"@literal": {"@path": "$.x"}}) == {"@path": "$.x"}


def test_null_maps_nothing():
    assert pick(None) is MISSING


def test_templates():
    assert pick("{{properties.plan}} plan") == "pro plan"
    assert pick("Order {{$.properties.id}}") == "Order 42"
    assert pick("{{ properties.items[0].sku }}/{{event}}") == "A-1/Order Completed"
    assert pick({"@template": "{{properties.paid}} {{properties.price}}"}) == "false 10"


def test_a_template_renders_missing_as_empty():
    assert pick("{{properties.plan}}/{{traits.tier}}") == "pro/"


def test_a_template_that_finds_nothing_at_all_is_missing():
    # Sending " " would overwrite the contact's real name.
    assert pick("{{traits.first}} {{traits.last}}") is MISSING
    assert pick("plan: {{traits.plan}}") is MISSING


def test_a_template_without_paths_is_its_text():
    assert pick({"@template": "just text"}) == "just text"


@pytest.mark.parametrize("text", ["{{properties.plan plan", "a }} b", "{{}}", "{{ bad path }}"])
def test_bad_templates_are_refused(text):
    with pytest.raises(SourceError):
        parse_source(text, "f")


def test_objects_leave_out_keys_that_find_nothing():
    assert pick({"plan": "$.properties.plan", "tier": "$.traits.tier", "source": "web"}) == {"plan": "pro", "source": "web"}


def test_an_object_that_finds_nothing_is_missing():
    assert pick({"tier": "$.traits.tier"}) is MISSING


def test_a_bad_source_inside_an_object_names_the_key():
    with pytest.raises(SourceError) as caught:
        parse_source({"plan": "$traits.plan"}, "custom_attributes")
    assert caught.value.field == "custom_attributes.plan"


def test_first_is_a_fallback_chain():
    spec = {"@first": ["$.traits.email", "$.context.traits.email", "nobody@example.com"]}
    assert pick(spec, {"traits": {"email": "a@x"}, "context": {"traits": {"email": "b@x"}}}) == "a@x"
    assert pick(spec, {"traits": {}, "context": {"traits": {"email": "b@x"}}}) == "b@x"
    assert pick(spec, {"traits": {"email": None}, "context": {"traits": {"email": "b@x"}}}) == "b@x"
    assert pick(spec, {}) == "nobody@example.com"


def test_if_exists_then_else():
    spec = {"@if": {"exists": "$.userId", "then": "user", "else": "lead"}}
    assert pick(spec, {"userId": "u1"}) == "user"
    assert pick(spec, {"anonymousId": "a1"}) == "lead"
    assert pick({"@if": {"exists": "$.userId", "then": "$.userId"}}, {}) is MISSING


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"@path": "$.a", "x": 1}, "stands alone"),
        ({"@path": 3}, "@path takes a path"),
        ({"@template": 3}, "@template takes a string"),
        ({"@first": []}, "non-empty list"),
        ({"@if": "userId"}, "'exists'"),
        ({"@if": {"exists": "$.a", "than": 1}}, "unknown keys ['than']"),
        ({"@where": "$.a"}, "unknown directive '@where'"),
    ],
)
def test_bad_directives_are_refused(spec, words):
    with pytest.raises(SourceError) as caught:
        parse_source(spec, "f")
    assert words in str(caught.value)
