from typing import Any

import pytest

from worker.mappings import Trigger, TriggerSyntaxError, parse_trigger
from worker.mappings.triggers import Compare

from . import make_event

TRACK = make_event(
    "track",
    event="Order Completed",
    userId="u1",
    properties={
        "total": 10,
        "ratio": 0.5,
        "paid": True,
        "coupon": None,
        "tags": ["vip", "beta", 3],
        "note": 'said "hi"\\',
        "items": [{"sku": "A-1"}],
    },
    context={"library": {"name": "analytics.js"}},
)


def matches(text, event=TRACK):
    return parse_trigger(text).matches(event)


def test_equality_on_the_event_type():
    assert matches('type = "track"')
    assert not matches('type = "identify"')
    assert matches('type != "identify"')


def test_and_binds_tighter_than_or():
    # Read as: identify or (track and Order Completed)
    assert matches('type = "identify" or type = "track" and event = "Order Completed"')
    # Read as: track or (identify and Signed Up).
    assert matches('type = "track" or type = "identify" and event = "Signed Up"')


def test_parentheses_override_precedence():
    assert not matches('(type = "track" or type = "identify") and event = "Signed Up"')


def test_not_binds_tighter_than_and():
    assert not matches('not type = "track" and event = "Order Completed"')
    assert matches('not (type = "identify" and event = "Order Completed")')
    assert matches('not not type = "track"')


def test_keywords_are_case_insensitive():
    assert matches('type = "track" AND NOT event = "x"')


def test_exists_means_present_and_not_null():
    assert matches("userId exists")
    assert matches("properties.total exists")
    assert not matches("properties.coupon exists")  # null
    assert not matches("groupId exists")
    assert not matches("traits.email exists")  # no traits at all


def test_equality_does_not_coerce_types():
    assert matches("properties.total = 10")
    assert matches("properties.total = 10.0")
    assert not matches('properties.total = "10"')
    assert matches("properties.paid = true")
    assert not matches("properties.paid = 1")
    assert not matches("properties.total = true")
    assert matches("properties.ratio = 0.5")


def test_null_equals_absent():
    assert matches("properties.coupon = null")
    assert matches("groupId = null")
    assert not matches("userId = null")
    assert matches("userId != null")


def test_not_equal_on_an_absent_field_is_true():
    assert matches('groupId != "g1"')


def test_contains_on_strings_and_lists():
    assert matches('event contains "Order"')
    assert not matches('event contains "order"')
    assert matches('properties.tags contains "vip"')
    assert matches("properties.tags contains 3")
    assert not matches('properties.tags contains "vi"')
    assert not matches('properties.total contains "1"')
    assert not matches('traits.missing contains "x"')


def test_dotted_and_indexed_paths():
    assert matches('context.library.name = "analytics.js"')
    assert matches('properties.items[0].sku = "A-1"')
    assert matches('properties.items.0.sku = "A-1"')
    assert not matches('properties.items[1].sku = "A-1"')


def test_string_escapes():
    assert matches(r'properties.note = "said \"hi\"\\"')
    tree = parse_trigger(r'event = "tab\there \u00e9"').tree
    assert isinstance(tree, Compare)
    assert tree.value == "tab\there \u00e9"


def test_negative_and_float_numbers():
    event = make_event("track", properties={"delta": -2.5})
    assert matches("properties.delta = -2.5", event)
    assert matches("properties.delta != 2.5", event)


def test_anonymous_and_group_fields():
    event = make_event("group", anonymousId="a1", groupId="g1", traits={"plan": "pro"})
    assert matches('anonymousId = "a1" and groupId = "g1" and traits.plan = "pro"', event)


def test_a_non_dict_event_matches_nothing():
    not_an_event: Any = None  # outside the declared type on purpose: matches() guards at run time
    assert not parse_trigger('type = "track"').matches(not_an_event)


def test_the_trigger_keeps_its_text():
    trigger = Trigger.parse('type = "track"')
    assert str(trigger) == 'type = "track"'


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("", 0, "empty trigger"),
        ("   ", 3, "empty trigger"),
        ("type = ", 7, "expected a value after '='"),
        ('type = "track', 7, "unterminated string"),
        ('type = "tr\\qack"', 10, "bad escape"),
        ('foo = "x"', 0, "unknown field 'foo'"),
        ('type.name = "x"', 0, "no sub-fields"),
        ('type == "x"', 6, "expected a value after '='"),
        ('type "x"', 5, "expected =, !=, <, <=, >, >=, exists, is, contains, starts_with or ends_with"),
        ('(type = "track"', 15, "expected ')'"),
        ('type = "track")', 14, "expected 'and', 'or' or the end"),
        ('type = "track" and', 18, "expected a field"),
        ('type = "track" & event = "x"', 15, "unexpected character '&'"),
        ("type = track", 7, "expected a value after '='"),
        ('and type = "x"', 0, "expected a field"),
        ('event = Order Completed"', 8, "expected a value after '=', found 'Order'"),
        ("userId exists exists", 14, "expected 'and', 'or' or the end"),
    ],
)
def test_syntax_errors_say_where(text, position, words):
    with pytest.raises(TriggerSyntaxError) as caught:
        parse_trigger(text)
    assert caught.value.position == position
    assert words in str(caught.value)
    assert f"at position {position}" in str(caught.value)


def test_a_trigger_must_be_a_string():
    not_a_string: Any = 42  # outside the declared type on purpose: a YAML file can hold anything
    with pytest.raises(TriggerSyntaxError):
        parse_trigger(not_a_string)
