"""The explicit table of actions: one typed definition each, and what is derived from them."""

from __future__ import annotations

import pytest
from marshmallow import Schema

from worker.actions import ACTIONS, IDENTIFY, LANE_CODES, action_of
from worker.mappings import ACTION_FIELDS, DEFAULT_MAPPINGS, REQUIRED_FIELDS


def test_the_table_names_the_four_actions() -> None:
    assert list(ACTIONS) == ["identify_contact", "track_event", "identify_company", "delete_person"]


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_is_one_definition(name: str) -> None:
    action = ACTIONS[name]
    assert action.name == name
    assert action.task_name == f"intercom.{name}"
    # A deletion runs whether Intercom knows the person or not (not found counts as done).
    assert action.needs_contact is (name not in ("identify_contact", "delete_person"))
    assert action.parks_on_404 is action.needs_contact
    assert issubclass(action.fields, Schema)
    assert callable(action.build_body) and callable(action.perform)


def test_identify_contact_is_the_action_a_lane_sends_first() -> None:
    assert IDENTIFY is ACTIONS["identify_contact"] and IDENTIFY.identifies
    assert [a.name for a in ACTIONS.values() if a.identifies] == ["identify_contact"]


def test_lane_codes_are_one_letter_each_and_name_their_action_back() -> None:
    assert LANE_CODES == {"identify_contact": "I", "track_event": "T", "identify_company": "G", "delete_person": "X"}
    for name, code in LANE_CODES.items():
        assert action_of(f"12:0{code}") is ACTIONS[name]


def test_the_mapping_tables_and_defaults_are_derived_from_the_schemas() -> None:
    assert ACTION_FIELDS["track_event"] == {
        "event_name", "created_at", "user_id", "email", "id", "revenue", "currency", "metadata"
    }  # fmt: skip
    assert REQUIRED_FIELDS == {
        "identify_contact": {"role"},
        "track_event": {"event_name", "created_at"},
        "identify_company": {"company_id"},
        "delete_person": {"deletion_id"},
    }
    assert [m.name for m in DEFAULT_MAPPINGS] == [spec["name"] for a in ACTIONS.values() for spec in a.default_mappings]
    assert {m.action for m in DEFAULT_MAPPINGS} == set(ACTIONS)
